"""The TOML declaration: discovery, merging, and values that know their file:line."""

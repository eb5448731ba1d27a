"""freshroot: a root file system wiped at every boot, and one declaration of what survives."""

__version__ = "0.1.0"

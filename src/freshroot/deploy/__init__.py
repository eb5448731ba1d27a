"""Fleets: ``freshroot deploy`` runs plan, apply, install or rollback on many hosts through
pyinfra and merges one report per host (docs/fleet.md). ``fleet`` (the fleet.toml model) is
standard library; ``engine`` imports pyinfra, only when a deploy runs."""

"""Generations: every applied declaration kept in storage with a number; ``generations``,
``rollback`` and ``confirm`` (docs/fleet.md)."""

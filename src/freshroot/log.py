"""Logging set-up: plain messages for people, more under --debug."""

from __future__ import annotations

import logging
import sys

logger = logging.getLogger("freshroot")


def setup(*, debug: bool = False, quiet: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers[:] = [handler]
    logger.propagate = False
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logger.setLevel(level)


def debug_enabled() -> bool:
    return logger.isEnabledFor(logging.DEBUG)

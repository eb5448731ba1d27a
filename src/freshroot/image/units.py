"""Which unit files systemd's portable service logic will attach: its rule, not a looser one.

systemd (src/portable/portable.c, ``unit_match`` and ``prefix_match``) attaches a unit
from an image only if its type is service, socket, target, timer or path, and its name
starts with one of the match prefixes followed by ``-``, ``.`` or ``@`` (or is exactly
the prefix). The prefixes are the image's PORTABLE_PREFIXES, or the image name when it
has none; ``portablectl attach`` refuses matches outside PORTABLE_PREFIXES. A plain
"starts with" test, as nixpkgs uses, lets ``demo2.service`` into image ``demo``, and
systemd then never attaches it.
"""

from __future__ import annotations

import re

# The unit types portable.c's unit_match accepts, in its order.
PORTABLE_UNIT_SUFFIXES = (".service", ".socket", ".target", ".timer", ".path")

# systemd's unit_name_is_valid: the characters of VALID_CHARS plus '@' once, at most 255 bytes.
_VALID_NAME = re.compile(r"[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?\.[a-z]+")
UNIT_NAME_MAX = 255


def prefix_match(unit: str, prefix: str) -> bool:
    """portable.c's prefix_match: the prefix, then '-', '.', '@' or the end of the name."""
    if not unit.startswith(prefix):
        return False
    rest = unit[len(prefix):]
    return rest == "" or rest[0] in "-.@"


def unit_match(unit: str, prefixes: tuple[str, ...]) -> bool:
    """portable.c's unit_match: an attachable type, and (given prefixes) one of them matches."""
    dot = unit.rfind(".")
    if dot < 0 or unit[dot:] not in PORTABLE_UNIT_SUFFIXES:
        return False
    return not prefixes or any(prefix_match(unit, p) for p in prefixes)


def unit_problem(unit: str, prefixes: tuple[str, ...]) -> str | None:
    """Why systemd would not attach ``unit`` from an image with ``prefixes``; None if it would."""
    if len(unit) > UNIT_NAME_MAX or not _VALID_NAME.fullmatch(unit):
        return f"{unit!r} is not a valid unit file name"
    suffix = unit[unit.rfind("."):]
    if suffix not in PORTABLE_UNIT_SUFFIXES:
        kinds = ", ".join(s[1:] for s in PORTABLE_UNIT_SUFFIXES)
        return f"unit {unit!r} has type {suffix[1:]!r}; portable images attach only {kinds} units"
    if not unit_match(unit, prefixes):
        allowed = " or ".join(f"{p}.TYPE, {p}-*.TYPE, {p}@*.TYPE" for p in prefixes)
        return (f"unit {unit!r} does not match the image's prefixes ({', '.join(prefixes)}): "
                f"systemd attaches only units named {allowed}")
    return None

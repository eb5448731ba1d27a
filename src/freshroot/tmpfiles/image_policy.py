"""``--image-policy=``: checked as systemd-tmpfiles checks it while reading its arguments
(image_policy_from_string), with or without ``--image``: a policy it refuses ends the run
with exit 1 before anything is read. The policy itself is only used by systemd-dissect
(freshroot.tmpfiles.image).

The grammar: ``*``, ``-``, ``~`` or empty; otherwise rules ``DESIGNATOR=FLAGS`` separated
by ``:`` (an empty designator is the default rule), each designator once, FLAGS joined by
``+``, blanks around names ignored.
"""

from __future__ import annotations

DESIGNATORS = frozenset({
    "", "root", "usr", "home", "srv", "esp", "xbootldr", "swap", "root-verity", "root-verity-sig",
    "usr-verity", "usr-verity-sig", "tmp", "var",
})
FLAGS = frozenset({
    "verity", "signed", "encrypted", "encryptedwithintegrity", "unprotected", "unused", "absent", "open",
    "ignore", "read-only-on", "read-only-off", "growfs-on", "growfs-off",
})


def problem(policy: str) -> str | None:
    """systemd's message for a policy it refuses, None for one it takes."""
    if policy.strip() in ("", "*", "-", "~"):
        return None
    seen: set[str] = set()
    for rule in policy.split(":"):
        designator, sep, flags = rule.partition("=")
        if not sep:
            return f"Failed to parse image policy: {policy}"
        designator = designator.strip()
        if designator not in DESIGNATORS:
            return f"Unknown partition type in image policy: {policy}"
        if designator in seen:
            return f"Duplicate rule in image policy: {policy}"
        seen.add(designator)
        if flags.strip() and any(f.strip() not in FLAGS for f in flags.split("+")):
            return f"Unknown partition policy flag in image policy: {policy}"
    return None

"""Where freshroot-tmpfiles differs from systemd-tmpfiles 262 on purpose (create, remove, and reading the files).

One table, read by docs (docs/tmpfiles.md) and by the tests: every entry names the test that
shows the difference (tests/tmpfiles/test_differences.py), and a test checks that each named
test exists. Everything not listed here is meant to match systemd exactly and is checked by
the differential tests.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Difference:
    name: str
    systemd: str  # what systemd does
    freshroot: str  # what freshroot does instead
    reason: str
    test: str  # the test function in tests/tmpfiles/test_differences.py


DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        "glob-symlinks-inside-root",
        "globs --root + pattern with glob(3): an absolute symlink met in a directory of the "
        "pattern resolves against the host's /",
        "walks the pattern from the root fd: every symlink resolves inside --root",
        "under --root, a line must never read or change the host; the match set inside the "
        "root is what the line means",
        "test_glob_through_absolute_symlink_stays_in_root",
    ),
    Difference(
        "w-follows-inside-root",
        "'w' opens the file with openat() following a symlink in the last component; an "
        "absolute target is the host's file, even under --root",
        "the symlink is followed, but its target is resolved inside --root",
        "a tmpfiles line applied to an offline root must not write into the machine running it",
        "test_w_through_absolute_symlink_writes_inside_root",
    ),
    Difference(
        "acl-names-in-root",
        "a/A resolve user and group names in ACL entries with the host's NSS, even under "
        "--root (an unknown name makes the line a warning and nothing is set)",
        "names are resolved in the target root's /etc/passwd and /etc/group, as the owner fields are",
        "the ids must be the target system's; the host's may not exist or mean someone else",
        "test_acl_names_resolve_in_target_root",
    ),
    Difference(
        "safe-symlink-owner",
        "the SAFE walk judges a relative symlink by the directory holding it: a symlink owned "
        "by a user inside a root-owned directory may lead to root's entries",
        "freshroot.fs.chase judges by the symlink itself: a user-owned symlink that leads to an "
        "entry owned by someone else is refused, wherever it is (the line fails, exit 73)",
        "a symlink owned by a user is one that user made or was given; following it into "
        "someone else's files is the pattern the SAFE rule exists to stop",
        "test_user_owned_symlink_is_not_followed",
    ),
    Difference(
        "copy-into-itself",
        "C with a target inside its source copies the growing copy into itself until it runs "
        "out of file descriptors (thousands of nested directories, exit 73)",
        "the copy's own top directory is never descended into: one level is copied",
        "an unbounded copy fills the disk and leaves a tree nobody can use",
        "test_copy_into_itself_stops",
    ),
    Difference(
        "conf-files-inside-root",
        "lists the tmpfiles.d files inside --root (chaseat() from the root's fd), but then opens "
        "each by its root-joined path on the host: a file that is an absolute symlink, or climbs "
        "with '..', is read from the host's target, or silently skipped (--cat-config: 'Failed to "
        "chase', exit 1) when the host has none; a bare file name on the command line likewise",
        "reads each file through the same chase below the root fd: an offline NixOS root's "
        "/etc/tmpfiles.d links into /nix/store or /etc/static are that root's files",
        "under --root, the configuration is the target root's; the host's files may not exist or "
        "say something else",
        "test_config_files_resolve_inside_root",
    ),
)


def by_name(name: str) -> Difference:
    for d in DIFFERENCES:
        if d.name == name:
            return d
    raise KeyError(name)

"""Where freshroot-tmpfiles differs from systemd-tmpfiles 262 on purpose: the single list.

Every deliberate difference, in any phase (create, remove, clean, purge), is one entry here:
what systemd does, what freshroot does instead, why, and the test in
tests/tmpfiles/test_differences.py that runs both tools and shows it (a test checks that each
named test exists). docs/tmpfiles.md and docs/tmpfiles-clean.md point here and keep no list
of their own; ``python -m freshroot.tmpfiles.differences`` prints this one as a table.
Everything not listed here is meant to match systemd exactly and is checked by the
differential tests.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Difference:
    """One listed difference from systemd-tmpfiles, with its reason and test."""
    name: str
    systemd: str  # what systemd does
    freshroot: str  # what freshroot does instead
    reason: str
    test: str  # the test function in tests/tmpfiles/test_differences.py


# The starting path of the remove, clean and purge walks. systemd opens it by name (glob(3),
# then open/opendir of the match), so any symlink in it is followed; freshroot walks it with
# chase(SAFE) below the root. The attacks are tests/tmpfiles/attacks.py's: uid 1000 owns
# /home/mallory and the symlink /home/mallory/link -> ../../secret, and /secret is root's.
_BY_NAME = ("resolves the path by name: a symlink a user planted in the middle of it (a link "
            "in the user's own directory to root's files) is followed, and ")
_SAFE = ("walks the path with chase(SAFE) below the root: the step from the user's symlink "
         "to root's directory is refused, nothing behind it is touched, and the line fails "
         "with a message naming the link (exit 73)")
_SAFE_REASON = ("the path names the user's directory; acting on root's files because the user "
                "put a symlink there is the attack the SAFE rule exists to stop (the attack "
                "suite, tests/tmpfiles/test_symlink_attacks.py)")

# The starting path of the recursive create-phase lines. systemd chases it with CHASE_SAFE,
# so the planted link above is refused by both tools; but systemd judges a symlink by the
# directory holding it, so a user's symlink in a root-owned directory leads the recursive
# walk into root's tree (the safe-symlink-owner rule, with the whole tree at stake).
_REC_SYSTEMD = ("chases the path with CHASE_SAFE, which judges a symlink by the directory "
                "holding it: a symlink owned by uid 1000 in a root-owned directory (/srv/link "
                "-> ../secret) is followed, and ")
_REC_OURS = ("the symlink is judged by its own owner (freshroot.fs.chase, as in "
             "safe-symlink-owner): refused, nothing below it is changed, the line fails (exit 73)")
_REC_REASON = ("a recursive line applies to everything below its path: following a user's "
               "symlink would hand root's whole tree behind it to the line, ")


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
        "eq-parents-follow-inside-root",
        "'=' checks each parent's type following symlinks with fstatat(); an absolute target "
        "is looked up on the host, even under --root (missing there: the link itself is "
        "reported as the wrong type and removed as dangling)",
        "parents are followed inside --root: the type reported is that of the root's target",
        "a tmpfiles line applied to an offline root must not read the machine running it",
        "test_eq_parents_follow_absolute_symlink_inside_root",
    ),
    Difference(
        "w-last-component-safe",
        "'w' opens its path with openat() following a symlink in the last component whoever "
        "owns it: a symlink uid 1000 made in its own directory (/home/mallory/link -> "
        "../../secret) has root's file written (in a sticky directory only the kernel's "
        "fs.protected_symlinks stops it)",
        "the last component is followed with chase(SAFE), as every other path: a user's symlink "
        "leading to an entry someone else owns is refused, nothing is written, the line fails "
        "(exit 73); a symlink to the user's own file, or one root made, is followed",
        "'w' writes as root into whatever the path names: following a user's symlink hands that "
        "user a write into any of root's files (the safe-symlink-owner rule, applied to the last "
        "component too)",
        "test_w_does_not_follow_a_users_symlink_to_roots_file",
    ),
    Difference(
        "unsafe-transition-message",
        "refuses an unsafe step of a path with 'Detected unsafe path transition A (owned by U) "
        "\u2192 B (owned by V) during canonicalization of P.', U and V looked up in the host's "
        "user database even under --root",
        "refuses the same steps (and those of safe-symlink-owner) with a message of its own: "
        "'P: refusing to follow B: the entry before it is owned by an unprivileged user (uid U) "
        "and it by someone else (uid V); that user could have planted a symlink there'; the "
        "exit status and what is left untouched are the same",
        "the message names the rule freshroot applies, which is wider than systemd's, in uids "
        "of the target root rather than names from the machine running it; every other message "
        "is systemd's word for word",
        "test_unsafe_transition_message",
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
        "caps-plus-existing",
        "'k+' on a file that has file capabilities already writes them back as revision 3 with "
        "an uninitialised namespace root uid (0x5f786900 with the 262 build tested), so they "
        "only apply inside a user namespace whose root is that uid, not on the machine",
        "the line's capabilities are merged into the file's and written as revision 2 (no "
        "namespace root), as 'k+' does on a file without capabilities",
        "capabilities no process outside some user namespace can use are not what the line asks "
        "for, and the uid is whatever was in memory",
        "test_caps_plus_over_existing_capabilities",
    ),
    Difference(
        "safe-start-r",
        _BY_NAME + "'r' (--remove) removes root's file behind it",
        _SAFE,
        _SAFE_REASON,
        "test_remove_path_start_is_walked_safely",
    ),
    Difference(
        "safe-start-R",
        _BY_NAME + "'R' (--remove) removes root's directory behind it with its contents",
        _SAFE,
        _SAFE_REASON,
        "test_recursive_remove_start_is_walked_safely",
    ),
    Difference(
        "safe-start-D",
        _BY_NAME + "'D' (--remove) empties root's directory behind it",
        _SAFE,
        _SAFE_REASON,
        "test_truncate_directory_start_is_walked_safely",
    ),
    Difference(
        "safe-start-e",
        _BY_NAME + "'e' (--clean) cleans root's directory behind it",
        _SAFE,
        _SAFE_REASON,
        "test_empty_directory_start_is_walked_safely",
    ),
    Difference(
        "safe-start-clean",
        _BY_NAME + "the clean walk of 'd D v q Q C' lines with an age (--clean) cleans root's "
        "directory behind it",
        _SAFE,
        _SAFE_REASON,
        "test_clean_walk_start_is_walked_safely",
    ),
    Difference(
        "safe-start-purge",
        _BY_NAME + "--purge removes root's entries behind it ('$' lines)",
        _SAFE,
        _SAFE_REASON,
        "test_purge_start_is_walked_safely",
    ),
    Difference(
        "clean-workers",
        "walks a --clean tree in one process, in readdir order, and says what goes wrong in "
        "that order",
        "once a --clean walk has met 20,000 entries, the directories left below the line's path "
        "go to worker processes (one per CPU, at most 4; FRESHROOT_CLEAN_WORKERS=1 keeps one "
        "process), in a real run only (no --dry-run, --explain or debug notes). The same "
        "entries go; a file with links in two of those directories keeps one link, as in "
        "systemd (the workers take turns on such files), though which link can differ; "
        "error messages from different directories can come in another order",
        "the walk costs the interpreter about 2 us per entry above systemd's C; with several "
        "CPUs, sharing it out makes a big clean faster than systemd's rather than 1.2 to 1.3 "
        "times slower (docs/tmpfiles-clean.md, Performance)",
        "test_clean_workers_remove_what_systemd_removes",
    ),
    Difference(
        "recursive-Z-user-symlink",
        _REC_SYSTEMD + "'Z' gives every entry of root's tree behind it the line's mode and owner",
        _REC_OURS,
        _REC_REASON + "and with an owner in the line, the user would own all of it",
        "test_recursive_relabel_start_user_symlink",
    ),
    Difference(
        "recursive-T-user-symlink",
        _REC_SYSTEMD + "'T' sets the line's extended attributes on every entry of root's tree behind it",
        _REC_OURS,
        _REC_REASON + "here the attributes the line names",
        "test_recursive_xattr_start_user_symlink",
    ),
    Difference(
        "recursive-A-user-symlink",
        _REC_SYSTEMD + "'A' adds the line's ACL entries to every entry of root's tree behind it",
        _REC_OURS,
        _REC_REASON + "and an ACL entry for the user is access to all of it",
        "test_recursive_acl_start_user_symlink",
    ),
    Difference(
        "recursive-H-user-symlink",
        _REC_SYSTEMD + "'H' sets the line's file attributes (chattr) on every entry of root's tree behind it",
        _REC_OURS,
        _REC_REASON + "here the file attributes the line names (+i would freeze root's files)",
        "test_recursive_attribute_start_user_symlink",
    ),
    Difference(
        "recursive-K-user-symlink",
        _REC_SYSTEMD + "'K' sets the line's file capabilities on every file of root's tree behind it",
        _REC_OURS,
        _REC_REASON + "here capabilities on root's programs",
        "test_recursive_capability_start_user_symlink",
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


def as_markdown() -> str:
    """The list as a Markdown table (what ``python -m freshroot.tmpfiles.differences`` prints)."""
    rows = ["| name | systemd 262 | freshroot | why | test |", "|---|---|---|---|---|"]
    for d in DIFFERENCES:
        cells = (d.name, d.systemd, d.freshroot, d.reason, f"`{d.test}`")
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(as_markdown())

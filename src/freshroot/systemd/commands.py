"""The systemd integration's subcommands (argparse only; handlers in freshroot.systemd.handlers)."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing costs start-up time; see freshroot.cli
if TYPE_CHECKING:
    from typing import Any

H = "freshroot.systemd.handlers"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    from freshroot.cli import add_command, add_common

    p = add_command(subparsers, "render", handler=f"{H}:render",
                    help="write the units freshroot-generator writes at boot into a directory")
    add_common(p, json=True)
    p.add_argument("--units", metavar="DIR", required=True, help="write the units and their symlinks into DIR")
    p.add_argument("--initrd", action="store_true", help="the units of the initrd (early paths under /sysroot)")
    p.add_argument("--python", metavar="PATH", help="the Python the units run freshroot with (default: this one)")
    p = add_command(subparsers, "install", handler=f"{H}:install",
                    help="prepare a fresh disk before its first boot: storage directories, declaration, generator")
    add_common(p, dry_run=True)
    p.add_argument("--extra-files", metavar="DIR",
                   help="write a tree for nixos-anywhere --extra-files into DIR instead (--root: whose "
                        "passwd and group name the owners)")
    p.add_argument("--copy-self", action="store_true",
                   help="also copy this freshroot into the site directory of the target's /usr/bin/python3 "
                        "(its sysconfig), with its commands in /usr/bin")
    p.add_argument("--machine-id", metavar="ID",
                   help="the machine id to keep in storage (32 lowercase hex digits; default: the root's, else a "
                        "new one); /etc/machine-id must be persisted; also written to the root's "
                        "/etc/machine-id")
    p.add_argument("--host-keys", metavar="DIR",
                   help="copy the SSH host keys in DIR (ssh_host_TYPE_key and its .pub, regular files only, "
                        "every one checked first) into storage, private keys 0600; each must be persisted")
    p = add_command(subparsers, "persist-prepare", handler=f"{H}:prepare",
                    help="(boot) create storage directories and mount points; run by freshroot-prepare.service")
    add_common(p, dry_run=True)
    p = add_command(subparsers, "persist-files", handler=f"{H}:files",
                    help="(boot) bind or link the persisted files, or undo exactly that; "
                         "run by freshroot-persist-files.service")
    add_common(p, dry_run=True)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--start", action="store_true", help="bind or link every persisted file")
    group.add_argument("--stop", action="store_true", help="undo what --start did, newest first")

"""POSIX ACLs for a and A lines (placeholder until implemented)."""

from __future__ import annotations

import os

from freshroot.tmpfiles.context import Context, Creation
from freshroot.tmpfiles.model import Item


def path_set_acls(ctx: Context, item: Item, path: str, creation: Creation) -> None:
    ctx.warn(f"{ctx.shown(path)}: ACLs are not supported yet, ignoring.")


def fd_set_acls(ctx: Context, item: Item, fd: int, path: str, st: os.stat_result | None, creation: Creation) -> None:
    ctx.warn(f"{ctx.shown(path)}: ACLs are not supported yet, ignoring.")

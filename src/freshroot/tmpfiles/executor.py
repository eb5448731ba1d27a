"""Running the phases over a parsed configuration, in systemd's order.

- Phases: purge, then remove and clean, then create ("first clean out the platform we then
  build on"). Each phase visits the plain paths first, then the globs, each in the order
  their path was first seen in the configuration.
- Per path (an ItemGroup, systemd's ItemArray): with create, the closest configured parent
  path is processed first; with remove/clean/purge, the configured children first.
- Per item, each operation runs at most once (systemd's ``done`` mask), so a parent reached
  through a child is not processed again.
- A failed create is forgiven for lines with '-'. Any other failure makes the exit status
  73; bad configuration (reported by the reader) makes it 65, and the rest is still applied.

Clean (freshroot.tmpfiles.clean) and purge run per item through ``Context.extra``, in the
slot systemd's process_item gives them: after remove, within the same phase.
"""

from __future__ import annotations

from collections.abc import Callable

from freshroot.errors import EXIT_CANTCREAT, EXIT_DATAERR, FreshrootError
from freshroot.tmpfiles.context import Context, ItemFailed, Operation
from freshroot.tmpfiles.create import create_item
from freshroot.tmpfiles.model import Item, ItemGroup

PHASES = (Operation.PURGE, Operation.REMOVE | Operation.CLEAN, Operation.CREATE)
TEARDOWN = Operation.REMOVE | Operation.CLEAN | Operation.PURGE
# Read once: in Python 3.11 reading an enum member off its class is slow (EnumType has a
# __getattr__, so every Operation.CREATE goes through it), and these run per line.
CREATE = Operation.CREATE


class Links:
    """Parent and children of every group: the closest configured path above it."""

    def __init__(self, ctx: Context) -> None:
        self.parent: dict[int, ItemGroup] = {}
        self.children: dict[int, list[ItemGroup]] = {}
        for group in (*ctx.config.groups, *ctx.config.globs):
            if not group.items:
                continue
            prefix = group.path
            while True:
                # Paths are simplified (absolute, no "//", no trailing "/"): cut the last name.
                prefix = prefix.rpartition("/")[0]
                if prefix in ("", "/"):
                    break  # systemd's PATH_FOREACH_PREFIX never yields "/" itself
                found = ctx.items_by_path.get(prefix) or ctx.globs_by_path.get(prefix)
                if found is not None:
                    self.parent[id(group)] = found
                    self.children.setdefault(id(found), []).append(group)
                    break


def process_item(ctx: Context, item: Item, operation: Operation) -> bool:
    # Identity tests before Flag arithmetic: enum.Flag's operators run Python code, and the
    # create phase (operation is exactly CREATE) passes here once per line and per parent.
    done = ctx.done.get(id(item))
    if done is None:
        ctx.done[id(item)] = operation
    elif done is operation or not operation & ~done:
        return True
    else:
        ctx.done[id(item)] = done | operation
    if ctx.visit is not None:
        return ctx.visit(item, operation)
    if operation is CREATE:
        return _create(ctx, item)
    return _process_all(ctx, item, operation)


def _process_all(ctx: Context, item: Item, operation: Operation) -> bool:
    """process_item for phases other than create: the operations in systemd's order."""
    ok = _create(ctx, item) if Operation.CREATE in operation else True
    if Operation.REMOVE in operation:
        from freshroot.tmpfiles.remove import remove_item  # see run_phases

        ctx.forget_dirs()
        ok = _run(ctx, item, remove_item) and ok
    for op in (Operation.CLEAN, Operation.PURGE):
        if op in operation and op in ctx.extra:
            ctx.forget_dirs()
            ok = _run(ctx, item, ctx.extra[op]) and ok
    return ok


def _create(ctx: Context, item: Item) -> bool:
    try:
        create_item(ctx, item)
    except ItemFailed:
        return item.allow_failure  # failure can only be tolerated for create
    except (OSError, FreshrootError) as e:
        # Not expected (every action reports its own failures), but one line never stops the run.
        ctx.error(f"{ctx.shown(item.path)}: {e.strerror if isinstance(e, OSError) else e}")
        return item.allow_failure
    return True


def _run(ctx: Context, item: Item, fn: Callable[[Context, Item], None]) -> bool:
    try:
        fn(ctx, item)
    except ItemFailed:
        return False
    except (OSError, FreshrootError) as e:
        ctx.error(f"{ctx.shown(item.path)}: {e.strerror if isinstance(e, OSError) else e}")
        return False
    return True


def process_group(ctx: Context, links: Links, group: ItemGroup, operation: Operation) -> bool:
    ok = True
    create_only = operation is CREATE  # identity first: see process_item
    if create_only or CREATE in operation:
        parent = links.parent.get(id(group))
        if parent is not None:
            ok = process_group(ctx, links, parent, CREATE)
    if not create_only and operation & TEARDOWN:
        for child in links.children.get(id(group), ()):
            ok = process_group(ctx, links, child, operation & TEARDOWN) and ok
    for item in group.items:
        ok = process_item(ctx, item, operation) and ok
    return ok


def run_phases(ctx: Context, operations: Operation) -> int:
    """Run the requested operations; return systemd's exit status."""
    ok = True
    links = Links(ctx)
    if operations & TEARDOWN:
        # Imported only for these phases: the cleaner (and statx) is start-up time that a
        # plain --create does not need.
        from freshroot.tmpfiles.remove import clean_item, purge_item

        ctx.extra.setdefault(Operation.CLEAN, clean_item)
        ctx.extra.setdefault(Operation.PURGE, purge_item)
    for phase in PHASES:
        op = operations & phase
        if not op:
            continue
        ctx.forget_dirs()
        for group in ctx.config.groups:
            ok = process_group(ctx, links, group, op) and ok
        for group in ctx.config.globs:
            ok = process_group(ctx, links, group, op) and ok
    ctx.forget_dirs()
    if ctx.config.invalid:
        return EXIT_DATAERR
    if not ok or ctx.failed:
        return EXIT_CANTCREAT
    return 0

"""btrfs subvolumes and quota groups, through the btrfs ioctls (systemd's btrfs-util.c).

Every function takes an fd (``O_PATH`` ones are reopened read-only) and checks that it is on
btrfs before the first btrfs ioctl: the ioctl numbers are reused by device drivers, so they
must never reach a device node. Not on btrfs: ``OSError(ENOTTY)``, as systemd returns.

Quota groups: a qgroup id is ``level << 48 | id``; a subvolume's own (leaf) qgroup is
``0/subvolume id``. :func:`auto_qgroup` is systemd's ``btrfs_subvol_auto_qgroup_fd``, which
tmpfiles' ``q`` and ``Q`` lines run on the subvolume they just created.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import struct
from collections.abc import Iterator

from freshroot.fs import _libc
from freshroot.fs.ops import _check_name, reopen

BTRFS_SUPER_MAGIC = 0x9123683E
FIRST_FREE_OBJECTID = 256  # the inode number of every subvolume's top directory
ROOT_TREE_OBJECTID = 1
QUOTA_TREE_OBJECTID = 8
ROOT_BACKREF_KEY = 144
QGROUP_RELATION_KEY = 246
QGROUP_LEVEL_SHIFT = 48
U64_MAX = (1 << 64) - 1
VOL_NAME_MAX = 4087  # struct btrfs_ioctl_vol_args: __s64 fd; char name[4088]


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (0x94 << 8) | nr


_W, _R = 1, 2
IOC_SUBVOL_CREATE = _ioc(_W, 14, 4096)  # struct btrfs_ioctl_vol_args
IOC_TREE_SEARCH = _ioc(_W | _R, 17, 4096)  # struct btrfs_ioctl_search_args
IOC_INO_LOOKUP = _ioc(_W | _R, 18, 4096)  # struct btrfs_ioctl_ino_lookup_args
IOC_QGROUP_ASSIGN = _ioc(_W, 41, 24)  # struct btrfs_ioctl_qgroup_assign_args
IOC_QGROUP_CREATE = _ioc(_W, 42, 16)  # struct btrfs_ioctl_qgroup_create_args
IOC_QUOTA_RESCAN = _ioc(_W, 44, 64)  # struct btrfs_ioctl_quota_rescan_args
IOC_QUOTA_RESCAN_WAIT = _ioc(0, 46, 0)

# struct btrfs_ioctl_search_key: tree_id, min/max objectid, min/max offset, min/max transid,
# min/max type, nr_items, unused, unused1..4; then the search headers and items.
_SEARCH_KEY = struct.Struct("=7Q4I4Q")
_SEARCH_HEADER = struct.Struct("=3Q2I")  # transid, objectid, offset, type, len
_EBUSY_RETRIES = 10


def _ioctl(fd: int, request: int, args: bytearray) -> int:
    """The ioctl with ``args`` passed as the buffer the kernel reads and fills in."""
    return int(fcntl.ioctl(fd, request, args, True))  # noqa: FBT003 - fcntl's mutate_flag


def _real(fd: int) -> int:
    """A readable fd for ``fd`` (reopened: ``fd`` may be O_PATH). The caller closes it."""
    st = os.fstat(fd)
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        raise OSError(errno.ENOTTY, os.strerror(errno.ENOTTY))
    real = reopen(fd, os.O_RDONLY | (os.O_DIRECTORY if stat.S_ISDIR(st.st_mode) else 0))
    try:
        if _libc.statfs_type(real) != BTRFS_SUPER_MAGIC:
            raise OSError(errno.ENOTTY, os.strerror(errno.ENOTTY))
    except BaseException:
        os.close(real)
        raise
    return real


def is_subvolume(fd: int) -> bool:
    """Whether the directory ``fd`` is the top of a btrfs subvolume (inode 256 on btrfs)."""
    st = os.fstat(fd)
    if not stat.S_ISDIR(st.st_mode) or st.st_ino != FIRST_FREE_OBJECTID:
        return False
    real = reopen(fd, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return _libc.statfs_type(real) == BTRFS_SUPER_MAGIC
    finally:
        os.close(real)


def make_subvolume(dir_fd: int, name: str) -> None:
    """BTRFS_IOC_SUBVOL_CREATE of ``name`` in the directory ``dir_fd`` (ENOTTY when that is
    not on btrfs). The new top directory's mode is 0777 less the umask."""
    _check_name(name)
    raw = os.fsencode(name)
    if len(raw) > VOL_NAME_MAX:
        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), name)
    real = _real(dir_fd)
    try:
        args = bytearray(4096)
        args[8 : 8 + len(raw)] = raw
        _ioctl(real, IOC_SUBVOL_CREATE, args)
    finally:
        os.close(real)


def _subvolume_id(real: int) -> int:
    args = bytearray(4096)
    struct.pack_into("=QQ", args, 0, 0, FIRST_FREE_OBJECTID)
    _ioctl(real, IOC_INO_LOOKUP, args)
    return int(struct.unpack_from("=Q", args, 0)[0])


def _search(real: int, tree_id: int, objectid: int, key_type: int) -> Iterator[tuple[int, int, int]]:
    """BTRFS_IOC_TREE_SEARCH of the items ``(objectid, key_type, any offset)`` in a tree:
    yields (objectid, type, offset) of each. ENOENT when the tree does not exist (the quota
    tree while quotas are off)."""
    min_key = [objectid, key_type, 0]
    while True:
        args = bytearray(4096)
        _SEARCH_KEY.pack_into(args, 0, tree_id, min_key[0], objectid, min_key[2], U64_MAX, 0, U64_MAX,
                              min_key[1], key_type, 256, 0, 0, 0, 0, 0)
        _ioctl(real, IOC_TREE_SEARCH, args)
        count = int(_SEARCH_KEY.unpack_from(args, 0)[9])
        if count == 0:
            return
        pos = _SEARCH_KEY.size
        for _ in range(count):
            _, obj, offset, typ, length = _SEARCH_HEADER.unpack_from(args, pos)
            pos += _SEARCH_HEADER.size + length
            min_key = [obj, typ, offset]
            yield obj, typ, offset
        # The next search starts just after the last item found (the key is one 136-bit number).
        if min_key[2] < U64_MAX:
            min_key[2] += 1
        elif min_key[1] < 255:
            min_key = [min_key[0], min_key[1] + 1, 0]
        elif min_key[0] < U64_MAX:
            min_key = [min_key[0] + 1, 0, 0]
        else:
            return
        if (min_key[0], min_key[1], min_key[2]) > (objectid, key_type, U64_MAX):
            return


def _parent_subvolume(real: int, subvol: int) -> int | None:
    """The subvolume ``subvol`` sits in (its ROOT_BACKREF), None for the top level."""
    for obj, typ, offset in _search(real, ROOT_TREE_OBJECTID, subvol, ROOT_BACKREF_KEY):
        if typ == ROOT_BACKREF_KEY and obj == subvol:
            return offset
    return None


def _qgroup_parents(real: int, qgroupid: int) -> list[int]:
    """The qgroups ``qgroupid`` is a member of (none while quotas are off)."""
    try:
        return [offset for obj, typ, offset in _search(real, QUOTA_TREE_OBJECTID, qgroupid, QGROUP_RELATION_KEY)
                if typ == QGROUP_RELATION_KEY and obj == qgroupid and offset >= obj]
    except OSError as e:
        if e.errno == errno.ENOENT:  # no quota tree: quotas are off
            return []
        raise


def _rescan_wait(real: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.ioctl(real, IOC_QUOTA_RESCAN_WAIT)


def _retrying(real: int, request: int, args: bytes) -> int:
    """An ioctl that answers EBUSY while a quota rescan runs: wait for it, up to 10 times."""
    for attempt in range(_EBUSY_RETRIES + 1):
        try:
            return _ioctl(real, request, bytearray(args))
        except OSError as e:
            if e.errno != errno.EBUSY or attempt == _EBUSY_RETRIES:
                raise
            _rescan_wait(real)
    raise AssertionError("unreachable")


def _qgroup_create(real: int, qgroupid: int, *, create: bool = True) -> None:
    """Create (or destroy) a qgroup. Quotas off: ENOTCONN (old kernels say EINVAL)."""
    try:
        _retrying(real, IOC_QGROUP_CREATE, struct.pack("=QQ", int(create), qgroupid))
    except OSError as e:
        if e.errno in (errno.EINVAL, errno.ENOTCONN):
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN)) from e
        raise


def _qgroup_assign(real: int, child: int, parent: int, *, assign: bool = True) -> None:
    if _retrying(real, IOC_QGROUP_ASSIGN, struct.pack("=QQQ", int(assign), child, parent)) > 0:
        # The accounting is inconsistent now: the kernel asks for a rescan.
        with contextlib.suppress(OSError):
            _ioctl(real, IOC_QUOTA_RESCAN, bytearray(64))


def _assign_new(real: int, child: int, parent: int) -> bool:
    """Assign, and say whether that changed anything (False: it was assigned already)."""
    try:
        _qgroup_assign(real, child, parent)
    except FileExistsError:
        return False
    return True


def _qgroup_destroy_recursive(real: int, qgroupid: int) -> None:
    """Unassign ``qgroupid`` from its parents, destroy the parents sharing its id part (and
    theirs), then ``qgroupid`` itself."""
    own = qgroupid & ((1 << QGROUP_LEVEL_SHIFT) - 1)
    for parent in _qgroup_parents(real, qgroupid):
        _qgroup_assign(real, qgroupid, parent, assign=False)
        if parent & ((1 << QGROUP_LEVEL_SHIFT) - 1) == own:
            with contextlib.suppress(OSError):
                _qgroup_destroy_recursive(real, parent)
    _qgroup_create(real, qgroupid, create=False)


def auto_qgroup(fd: int, *, insert_intermediary: bool) -> bool:
    """systemd's btrfs_subvol_auto_qgroup_fd on the subvolume ``fd`` is the top of: if its
    leaf qgroup is in no higher-level qgroup yet, put it in the qgroups its parent
    subvolume's leaf qgroup is in. With ``insert_intermediary`` (tmpfiles' ``Q``) a new
    qgroup (level one below the lowest of the parent's, 255 when the parent has none; id
    the subvolume's) goes in between. Returns whether anything changed.

    Errors as systemd's: ENOTTY (not a subvolume on btrfs), ENOTCONN (quotas are off, when
    a qgroup had to be created), EBUSY (no level left below the parent's lowest qgroup)."""
    if not is_subvolume(fd):
        raise OSError(errno.ENOTTY, os.strerror(errno.ENOTTY))
    real = _real(fd)
    try:
        subvol = _subvolume_id(real)
        if _qgroup_parents(real, subvol):
            return False  # already set up
        parent = _parent_subvolume(real, subvol)
        groups = [] if parent is None else _qgroup_parents(real, parent)
        if not insert_intermediary:
            changed = False
            for group in groups:
                changed |= _assign_new(real, subvol, group)
            return changed
        lowest = min((g >> QGROUP_LEVEL_SHIFT for g in groups), default=256)
        if lowest <= 1:  # no level left for an intermediary qgroup
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        middle = ((lowest - 1) << QGROUP_LEVEL_SHIFT) | subvol
        created = False
        try:
            _qgroup_create(real, middle)
            created = True
        except FileExistsError:
            pass
        changed = created
        try:
            for group in groups:  # the new qgroup goes where the parent's leaf qgroup is
                changed |= _assign_new(real, middle, group)
            changed |= _assign_new(real, subvol, middle)
        except OSError:
            if created:
                with contextlib.suppress(OSError):
                    _qgroup_destroy_recursive(real, middle)
            raise
        return changed
    finally:
        os.close(real)

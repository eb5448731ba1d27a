"""Bring passwd/group/shadow/gshadow (as DbFile objects) to the declared users and groups.

Pure: takes the files and the recorded ids, changes the files in memory, and says what it
did. The caller holds the locks and writes the files. Kept apart from the step so the id
rules can be tested (and compared with systemd-sysusers) without a root.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from freshroot.activation.shadowdb import DbFile, is_number
from freshroot.errors import Location


# What this module reads of a declared user or group (freshroot.activation.users' UserDecl and
# GroupDecl): described here, not imported, so the users step can import this module without
# a cycle.
class UserDecl(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def uid(self) -> int | None: ...
    @property
    def group(self) -> str | None: ...
    @property
    def extra_groups(self) -> tuple[str, ...]: ...
    @property
    def description(self) -> str | None: ...
    @property
    def home(self) -> str | None: ...
    @property
    def shell(self) -> str | None: ...
    @property
    def system(self) -> bool: ...
    @property
    def create_home(self) -> bool | None: ...
    @property
    def hashed_password(self) -> str | None: ...
    @property
    def location(self) -> Location | None: ...


class GroupDecl(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def gid(self) -> int | None: ...
    @property
    def members(self) -> tuple[str, ...]: ...
    @property
    def system(self) -> bool: ...
    @property
    def location(self) -> Location | None: ...

SYSTEM_IDS = (100, 999)  # allocated from the top down, as sysusers and useradd -r
NORMAL_IDS = (1000, 60000)  # from the bottom up
NOLOGIN = "/usr/sbin/nologin"


@dataclass
class Allocation:
    """What allocating the declared accounts gives: the changes to the account files, the ids to remember,
    the homes to create, and what could not be allocated."""
    changes: list[str] = field(default_factory=list)
    ids: dict[str, Any] = field(default_factory=dict)
    homes: list[tuple[str, int, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _ids_of(db: DbFile) -> dict[int, str]:
    out: dict[int, str] = {}
    for name in db.names():
        fields = db.get(name)
        if fields and len(fields) > 2 and is_number(fields[2]):
            out.setdefault(int(fields[2]), name)
    return out


def _pick(span: tuple[int, int], downward: bool, ok: Callable[[int], bool]) -> int | None:
    lo, hi = span
    for candidate in (range(hi, lo - 1, -1) if downward else range(lo, hi + 1)):
        if ok(candidate):
            return candidate
    return None


@dataclass
class _State:
    """The account files being planned, the ids they already use, the remembered ids, and the allocation so
    far."""
    files: Mapping[str, DbFile]
    uids: dict[int, str]  # in use in passwd
    gids: dict[int, str]  # in use in group
    rec_users: dict[str, int]  # remembered ids
    rec_groups: dict[str, int]
    out: Allocation

    def __post_init__(self) -> None:
        self.res_uids = {v: k for k, v in self.rec_users.items()}
        self.res_gids = {v: k for k, v in self.rec_groups.items()}

    def uid_free(self, uid: int, name: str) -> bool:
        return self.uids.get(uid, name) == name and self.res_uids.get(uid, name) == name

    def gid_free(self, gid: int, name: str) -> bool:
        return self.gids.get(gid, name) == name and self.res_gids.get(gid, name) == name


def _want_group(st: _State, name: str, fixed: int | None, *, system: bool, pair: int | None, where: str) -> int | None:
    """The gid of group ``name``, adding it when missing. ``pair``: the uid of its same-named user."""
    group = st.files["group"]
    existing = group.get(name)
    if existing is not None:
        have = int(existing[2]) if len(existing) > 2 and is_number(existing[2]) else -1
        if fixed is not None and fixed != have:
            st.out.errors.append(f"{where}group {name} has gid {have} in /etc/group, not the declared {fixed}")
        return have
    gid: int | None
    if fixed is not None:
        if not st.gid_free(fixed, name):
            holder = st.gids.get(fixed) or st.res_gids[fixed]
            st.out.errors.append(f"{where}gid {fixed} of group {name} is taken by {holder}")
            return None
        gid = fixed
    else:
        candidates = [st.rec_groups.get(name), pair]
        gid = next((c for c in candidates if c is not None and st.gid_free(c, name)), None)
        if gid is None:
            gid = _pick(SYSTEM_IDS if system else NORMAL_IDS, system,
                        lambda c: st.gid_free(c, name) and st.uid_free(c, name))
        if gid is None:
            st.out.errors.append(f"{where}no free gid left for group {name}")
            return None
    group.put(name, [name, "x", str(gid), ""])
    st.files["gshadow"].put(name, [name, "!*", "", ""])  # created if missing, as systemd-sysusers does
    st.gids[gid] = name
    st.out.changes.append(f"add group {name} (gid {gid})")
    st.out.ids.setdefault("managed-groups", []).append(name)
    return gid


def _add_members(st: _State, name: str, members: Sequence[str]) -> None:
    for db_name in ("group", "gshadow"):
        db, column = st.files[db_name], 3
        fields = db.get(name)
        if fields is None or len(fields) <= column:
            continue
        have = [m for m in fields[column].split(",") if m]
        missing = [m for m in members if m not in have]
        if missing:
            fields[column] = ",".join(have + missing)
            db.put(name, fields)
            if db_name == "group":
                st.out.changes.append(f"add {', '.join(missing)} to group {name}")


def plan_accounts(
    users: Sequence[UserDecl],
    groups: Sequence[GroupDecl],
    files: Mapping[str, DbFile],
    ids: Mapping[str, Any],
    days: int,
) -> Allocation:
    out = Allocation()
    rec_users = {k: v for k, v in dict(ids.get("users", {})).items() if isinstance(v, int)}
    rec_groups = {k: v for k, v in dict(ids.get("groups", {})).items() if isinstance(v, int)}
    st = _State(files, _ids_of(files["passwd"]), _ids_of(files["group"]), rec_users, rec_groups, out)
    old_managed_users = set(ids.get("managed-users", ()))
    old_managed_groups = set(ids.get("managed-groups", ()))
    declared_groups = {g.name for g in groups}
    passwd = files["passwd"]

    # Groups first (a user needs its primary group's gid), as systemd-sysusers does.
    gid_of: dict[str, int] = {}
    for g in groups:
        gid = _want_group(st, g.name, g.gid, system=g.system, pair=None, where=f"{g.location}: " if g.location else "")
        if gid is not None:
            gid_of[g.name] = gid
    for u in users:
        if u.group is None and u.name not in declared_groups:
            existing = passwd.get(u.name)
            pair = int(existing[2]) if existing and is_number(existing[2]) else u.uid
            if pair is None:
                pair = rec_users.get(u.name)
            where = f"{u.location}: " if u.location else ""
            gid = _want_group(st, u.name, None, system=u.system, pair=pair, where=where)
            if gid is not None:
                gid_of[u.name] = gid
    for u in users:
        _want_user(st, u, gid_of, days)
    members: dict[str, list[str]] = {g.name: list(g.members) for g in groups}
    for u in users:
        for extra in u.extra_groups:
            members.setdefault(extra, []).append(u.name)
    for name, wanted in members.items():
        if files["group"].get(name) is None:
            out.errors.append(f"group {name} (for its members {', '.join(wanted)}) does not exist and is not declared")
        else:
            _add_members(st, name, wanted)

    declared_users = {u.name for u in users}
    implicit = {u.name for u in users if u.group is None}
    for name in sorted(old_managed_users - declared_users):
        if passwd.remove(name):
            files["shadow"].remove(name)
            out.changes.append(f"remove user {name} (no longer declared; its home and uid are kept)")
    for name in sorted(old_managed_groups - declared_groups - implicit):
        if files["group"].remove(name):
            files["gshadow"].remove(name)
            out.changes.append(f"remove group {name} (no longer declared; its gid is kept)")

    managed_users = (old_managed_users & declared_users) | set(out.ids.pop("managed-users", ()))
    managed_groups = (old_managed_groups & (declared_groups | implicit)) | set(out.ids.pop("managed-groups", ()))
    out.ids = {
        "version": 1,
        "users": {**dict(ids.get("users", {})), **{u.name: st_uid for u in users
                                                    if (st_uid := _uid(passwd, u.name)) is not None}},
        "groups": {**dict(ids.get("groups", {})), **gid_of},
        "managed-users": sorted(managed_users),
        "managed-groups": sorted(managed_groups),
    }
    return out


def _uid(passwd: DbFile, name: str) -> int | None:
    fields = passwd.get(name)
    return int(fields[2]) if fields and len(fields) > 2 and is_number(fields[2]) else None


def _want_user(st: _State, u: UserDecl, gid_of: Mapping[str, int], days: int) -> None:
    where = f"{u.location}: " if u.location else ""
    passwd, shadow = st.files["passwd"], st.files["shadow"]
    group_name = u.group or u.name
    gid = gid_of.get(group_name)
    if gid is None:
        fields = st.files["group"].get(group_name)
        if fields is None or len(fields) < 3 or not is_number(fields[2]):
            st.out.errors.append(f"{where}user {u.name}: group {group_name} does not exist and is not declared")
            return
        gid = int(fields[2])
    home = u.home or ("/" if u.system else f"/home/{u.name}")
    shell = u.shell or (NOLOGIN if u.system else "/bin/bash")
    existing = passwd.get(u.name)
    created = False
    if existing is not None and len(existing) >= 7:
        uid = int(existing[2]) if is_number(existing[2]) else -1
        if u.uid is not None and u.uid != uid:
            st.out.errors.append(f"{where}user {u.name} has uid {uid} in /etc/passwd, not the declared {u.uid}")
            return
        fields = list(existing)
        fields[3] = str(gid)
        if u.description is not None:
            fields[4] = u.description
        if u.home is not None:
            fields[5] = home
        if u.shell is not None:
            fields[6] = shell
        if passwd.put(u.name, fields):
            st.out.changes.append(f"update user {u.name}")
    else:
        if u.uid is not None:
            if not st.uid_free(u.uid, u.name):
                st.out.errors.append(f"{where}uid {u.uid} of user {u.name} is taken by "
                                     f"{st.uids.get(u.uid) or st.res_uids[u.uid]}")
                return
            uid = u.uid
        else:
            candidates = [st.rec_users.get(u.name), gid if gid_of.get(u.name) == gid else None]
            found = next((c for c in candidates if c is not None and st.uid_free(c, u.name)), None)
            if found is None:
                found = _pick(SYSTEM_IDS if u.system else NORMAL_IDS, u.system,
                              lambda c: st.uid_free(c, u.name) and st.gid_free(c, u.name))
            if found is None:
                st.out.errors.append(f"{where}no free uid left for user {u.name}")
                return
            uid = found
        passwd.put(u.name, [u.name, "x", str(uid), str(gid), u.description or "", home, shell])
        st.uids[uid] = u.name
        st.out.ids.setdefault("managed-users", []).append(u.name)
        st.out.changes.append(f"add user {u.name} (uid {uid}, group {group_name})")
        created = True
    if shadow.get(u.name) is None and (created or u.hashed_password is not None):
        # An existing user without a shadow entry is left so, as systemd-sysusers leaves it.
        locked = "!*" if u.system else "!"
        shadow.put(u.name, [u.name, u.hashed_password or locked, str(days), "", "", "", "", "", ""])
    elif u.hashed_password is not None:
        fields = shadow.get(u.name) or []
        if len(fields) >= 2 and fields[1] != u.hashed_password:
            fields[1] = u.hashed_password
            shadow.put(u.name, fields)
            st.out.changes.append(f"set the password of {u.name}")
    create = u.create_home if u.create_home is not None else not u.system
    if create and home != "/":
        st.out.homes.append((home, uid, gid))

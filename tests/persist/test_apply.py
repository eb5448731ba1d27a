"""Apply on scratch roots in a private mount namespace: parents, owners, preflight, drift."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from freshroot.errors import OperationError
from freshroot.fs import bindmount
from freshroot.fs.chase import chase
from freshroot.persist.actions import FixPerms
from freshroot.persist.facts import State, look_entry
from freshroot.persist.status import status
from tests.fs.helpers import in_child
from tests.persist.helpers import is_mounted, make_root, setup

pytestmark = [pytest.mark.root, pytest.mark.netns]


def _mode(p: Path) -> tuple[int, int, int]:
    st = os.lstat(p)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def test_parents_owners_and_modes(scratch: Path) -> None:
    def body() -> None:
        bindmount.unshare_mounts()
        root = make_root(scratch)
        (root / "var" / "lib" / "private").mkdir(parents=True)
        os.chmod(root / "var" / "lib" / "private", 0o700)
        os.chmod(root, 0o751)
        a = setup(root, """
[persist."/persist"]
directories = [
    "/var/lib/private/svc",
    { path = "/srv/www/data", user = "alice", mode = "0750", parent = { group = "alice", mode = "0710" } },
]
users.alice.directories = [".local/share/app"]
""")
        assert a.apply().ok
        # Storage parents copy the root's directory where it exists: /var/lib/private stays 0700.
        assert _mode(root / "persist/var/lib/private") == (0, 0, 0o700)
        assert _mode(root / "persist/var/lib") == (0, 0, 0o755)
        # Declared parent owner/mode, the rest defaulted.
        assert _mode(root / "persist/srv/www") == (0, 1000, 0o710)
        assert _mode(root / "persist/srv/www/data") == (1000, 0, 0o750)
        # The root side copies storage (impermanence's rule) where it creates parents.
        assert _mode(root / "srv/www") == (0, 1000, 0o710)
        # A user's home: the home 0700 and theirs, inside it theirs, above it root's.
        assert _mode(root / "persist/home") == (0, 0, 0o755)
        assert _mode(root / "persist/home/alice") == (1000, 1000, 0o700)
        assert _mode(root / "persist/home/alice/.local") == (1000, 1000, 0o755)
        assert _mode(root / "home/alice") == (1000, 1000, 0o700)
        # Existing directories are never changed, / included.
        assert _mode(root) == (0, 0, 0o751)
        assert _mode(root / "var/lib/private") == (0, 0, 0o700)
        assert a.plan() == []
    in_child(body)


def test_auto_files_bind_when_storage_has_them_else_symlink(scratch: Path) -> None:
    def body() -> None:
        bindmount.unshare_mounts()
        root = make_root(scratch)
        (root / "persist/etc").mkdir()
        (root / "persist/etc/kept").write_text("kept")
        a = setup(root, '[persist."/persist"]\nfiles = ["/etc/kept", "/etc/new"]\n')
        assert a.apply().ok
        assert (root / "etc/kept").read_text() == "kept"
        assert not os.path.islink(root / "etc/kept")
        assert os.readlink(root / "etc/new") == "/persist/etc/new"
        assert a.plan() == []
    in_child(body)


def test_create_false_waits_for_data_then_moves_it(scratch: Path) -> None:
    def body() -> None:
        bindmount.unshare_mounts()
        root = make_root(scratch)
        a = setup(root, '[persist."/persist"]\ninclude = ["machine-id"]\n')
        assert a.plan() == []  # nothing to persist yet; an empty machine-id is not created
        assert [s.state for s in status(a.p, a.ctx()).entries] == ["waiting"]
        (root / "etc/machine-id").write_text("0123456789abcdef\n")
        assert a.apply().ok
        assert (root / "persist/etc/machine-id").read_text() == "0123456789abcdef\n"
        _, t = look_entry(a.fd, a.p.entries()[0])
        assert t.state is State.OURS_MOUNT
    in_child(body)


def test_preflight(scratch: Path) -> None:
    def body() -> None:
        bindmount.unshare_mounts()
        root = make_root(scratch)
        decl = '[persist."/missing"]\n{}directories = ["/a"]\n[persist."/persist"]\ndirectories = ["/b"]\n'
        a = setup(root, decl.format(""))
        with pytest.raises(OperationError, match=r"storage .*/missing does not exist"):
            a.plan()
        a = setup(root, decl.format("degraded = true\n"))
        assert a.apply().ok
        assert is_mounted(root / "b")
        assert not (root / "a").exists()
        assert not (root / "missing").exists()
        (root / "file").write_text("")
        a = setup(root, '[persist."/file"]\ndirectories = ["/c"]\n')
        with pytest.raises(OperationError, match="is not a directory"):
            a.plan()
        a = setup(root, '[persist."/persist"]\nrequire-mount = true\ndirectories = ["/c"]\n')
        with pytest.raises(OperationError, match="is not mounted"):
            a.plan()
        fd = os.open(str(root), os.O_PATH)
        with chase("/persist", root_fd=fd) as p, chase("/", root_fd=fd) as top:
            bindmount.bind_at(p.fd, top.fd, "persist")
        os.close(fd)
        assert a.apply().ok
    in_child(body)


def test_drift_is_reported_and_fixed(scratch: Path) -> None:
    def body() -> None:
        bindmount.unshare_mounts()
        root = make_root(scratch)
        a = setup(root, '[persist."/persist"]\ndirectories = [{ path = "/v", mode = "0700", user = "alice" }]\n')
        assert a.apply().ok
        os.chmod(root / "persist/v", 0o755)
        (s,) = status(a.p, a.ctx()).entries
        assert s.state == "ok"
        assert s.drift == ("mode 0755, declared 0700",)
        assert a.plan() == []  # plain apply leaves drift alone
        fixes = a.plan(fix=True)
        assert [type(x) for x in fixes] == [FixPerms]
        assert a.apply(fix=True).ok
        assert _mode(root / "persist/v") == (1000, 0, 0o700)
        assert status(a.p, a.ctx()).in_sync
    in_child(body)


def test_nested_storages_bind_inside_the_outer_mount(scratch: Path) -> None:
    def body() -> None:
        bindmount.unshare_mounts()
        root = make_root(scratch)
        (root / "bulk").mkdir()
        a = setup(root, '[persist."/persist"]\ndirectories = ["/var/lib"]\n'
                        '[persist."/bulk"]\ndirectories = ["/var/lib/big"]\n')
        outcome = a.apply()
        assert outcome.ok, outcome.failed
        (root / "var/lib/big/x").write_text("big")
        (root / "var/lib/small").write_text("small")
        assert (root / "bulk/var/lib/big/x").read_text() == "big"
        assert (root / "persist/var/lib/small").read_text() == "small"
        assert a.plan() == []
    in_child(body)


def test_dry_run_changes_nothing(scratch: Path) -> None:
    def body() -> None:
        from tests.persist.helpers import snapshot

        bindmount.unshare_mounts()
        root = make_root(scratch)
        a = setup(root, '[persist."/persist"]\ndirectories = ["/var/log"]\nfiles = ["/etc/x"]\n')
        before = snapshot(root)
        outcome = a.apply(dry_run=True)
        assert len(outcome.applied) > 3
        assert snapshot(root) == before
    in_child(body)


def test_mount_options_reach_the_kernel(scratch: Path) -> None:
    def body() -> None:
        from freshroot.fs.mount import mountinfo

        bindmount.unshare_mounts()
        root = make_root(scratch)
        a = setup(root, '[persist."/persist"]\nmount-options = ["nosuid", "nodev"]\nhide-mounts = true\n'
                        'directories = [{ path = "/ro", options = ["ro", "noexec"] }, "/rw"]\n')
        assert a.apply().ok
        opts = {m.mount_point: set(m.options) for m in mountinfo()}
        assert {"ro", "nosuid", "nodev", "noexec"} <= opts[str(root / "ro")]
        assert {"rw", "nosuid", "nodev"} <= opts[str(root / "rw")]
        assert "noexec" not in opts[str(root / "rw")]
        assert all("x-gvfs-hide" in e.options for e in a.p.entries())
        assert a.plan() == []
    in_child(body)


def test_a_link_a_user_could_plant_refuses_that_entry_only(scratch: Path) -> None:
    def body() -> None:
        bindmount.unshare_mounts()
        root = make_root(scratch)
        (root / "home/alice").mkdir(parents=True)
        os.chown(root / "home/alice", 1000, 1000)
        (root / "home/alice/.ssh").symlink_to("/etc")  # alice's link to a root-owned place
        os.lchown(root / "home/alice/.ssh", 1000, 1000)
        a = setup(root, '[persist."/persist"]\ndirectories = ["/var/log", "/home/alice/.ssh/keys"]\n')
        outcome = a.apply()
        assert [m for _, m in outcome.failed] == [m for _, m in outcome.failed if "refusing to follow" in m]
        assert len(outcome.failed) == 1
        assert is_mounted(root / "var/log")
        assert not (root / "etc/keys").exists()
    in_child(body)

"""``freshroot install --host-keys DIR --machine-id ID``: the first boot's identity in storage,
keys root's 0600 (private) and 0644 (public); every refusal exits 65 (bad arguments) or 73
(storage already holds another key or id) before install changed anything."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.hostkeys import KEYGEN
from tests.systemd.helpers import GROUP, PASSWD, freshroot

pytestmark = pytest.mark.root  # keys written root's

ID = "0123456789abcdef0123456789abcdef"
DECL = '[persist."/persist"]\ninclude = ["ssh-host-keys", "machine-id"]\ndirectories = ["/var/lib/app"]\n'


@pytest.fixture
def target(tmp_path: Path) -> Path:
    root = tmp_path / "mnt"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    (tmp_path / "decl.toml").write_text(DECL)
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes | None]]:
    """Every path below ``root`` with its mode, owner and content: to show nothing changed."""
    out: dict[str, tuple[int, int, bytes | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_mode, st.st_uid, p.read_bytes() if p.is_file() else None)
    return out


def install(target: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return freshroot("install", "--root", str(target), "--config", str(target.parent / "decl.toml"), *args)


def test_keys_and_id_go_into_storage(target: Path, keys: Path) -> None:
    result = install(target, "--host-keys", str(keys), "--machine-id", ID)
    assert result.returncode == 0, result.stderr
    stored = target / "persist" / "etc" / "ssh"
    assert sorted(p.name for p in stored.iterdir()) == sorted(p.name for p in keys.iterdir())
    for key in keys.iterdir():
        st = (stored / key.name).lstat()
        assert (stored / key.name).read_bytes() == key.read_bytes()
        assert (st.st_uid, st.st_gid) == (0, 0)
        assert stat.S_IMODE(st.st_mode) == (0o644 if key.name.endswith(".pub") else 0o600)
        assert f"host key {key.name} -> /persist/etc/ssh/{key.name}" in result.stdout  # as the target sees it
    assert (target / "persist" / "etc" / "machine-id").read_text() == ID + "\n"
    assert (target / "etc" / "machine-id").read_text() == ID + "\n"
    assert not (target / "etc" / "ssh").exists()  # the root gets them by persistence, at boot
    # Again: the same keys and id are there, nothing is written.
    before = snapshot(target / "persist")
    again = install(target, "--host-keys", str(keys), "--machine-id", ID)
    assert again.returncode == 0, again.stderr
    assert "kept /persist/etc/ssh/ssh_host_ed25519_key (the same key)" in again.stdout
    assert again.stdout.startswith(f"install to {target}\n")  # the target named once, first
    assert snapshot(target / "persist") == before


def test_a_persisted_etc_ssh_directory_keeps_the_keys_too(target: Path, keys: Path) -> None:
    (target.parent / "decl.toml").write_text('[persist."/persist"]\ndirectories = ["/etc/ssh"]\n')
    result = install(target, "--host-keys", str(keys))
    assert result.returncode == 0, result.stderr
    assert (target / "persist" / "etc" / "ssh" / "ssh_host_rsa_key").read_bytes() == \
        (keys / "ssh_host_rsa_key").read_bytes()


def test_dry_run_says_what_it_would_copy(target: Path, keys: Path) -> None:
    before = snapshot(target)
    result = install(target, "--host-keys", str(keys), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would copy host key ssh_host_rsa_key -> /persist/etc/ssh/ssh_host_rsa_key" in result.stdout
    assert snapshot(target) == before


@pytest.mark.parametrize(("spoil", "code", "message"), [
    (lambda d: (d / "ssh_host_rsa_key.pub").unlink(), 65, "ssh_host_rsa_key has no ssh_host_rsa_key.pub beside it"),
    (lambda d: os.mkfifo(d / "ssh_host_dsa_key"), 65, "ssh_host_dsa_key is a FIFO"),
    (lambda d: (d / "notes.txt").write_text("x"), 65, "notes.txt is not a host key name"),
    # A valid dsa key the declaration does not persist: gone at the first boot.
    (lambda d: [shutil.copy(d / "ssh_host_ed25519_key", d / "ssh_host_ed25519_key.bak"),
                subprocess.run([KEYGEN, "-q", "-t", "dsa", "-N", "", "-C", "", "-f", str(d / "ssh_host_dsa_key")],
                               check=True), (d / "ssh_host_ed25519_key.bak").unlink()],
     65, "the declaration does not persist /etc/ssh/ssh_host_dsa_key"),
])
def test_refusals_change_nothing(target: Path, keys: Path, spoil: object, code: int, message: str) -> None:
    assert callable(spoil)
    spoil(keys)
    before = snapshot(target)
    result = install(target, "--host-keys", str(keys), "--machine-id", ID)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(target) == before


def test_storage_holding_another_key_is_not_replaced(target: Path, keys: Path, tmp_path: Path) -> None:
    stored = target / "persist" / "etc" / "ssh"
    stored.mkdir(parents=True)
    other = tmp_path / "other" / "ssh_host_ed25519_key"
    other.parent.mkdir()
    subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(other)], check=True)
    shutil.copy(other, stored / "ssh_host_ed25519_key")
    before = snapshot(target)
    result = install(target, "--host-keys", str(keys))
    assert result.returncode == 73, result.stderr
    assert "/persist/etc/ssh/ssh_host_ed25519_key already holds another key than --host-keys' ssh_host_ed25519_key" \
        in result.stderr
    assert snapshot(target) == before


@pytest.mark.parametrize("bad", [ID.upper(), ID[:-1], ID + "0", "0" * 32, "01234567-89ab-cdef-0123-456789abcdef",
                                 "g" * 32, ""])
def test_a_bad_machine_id_is_refused(target: Path, bad: str) -> None:
    before = snapshot(target)
    result = install(target, "--machine-id", bad)
    assert result.returncode == 65, result.stderr
    assert f"--machine-id {bad!r}: not a machine id (32 lowercase hex digits, not all zeros)" in result.stderr
    assert snapshot(target) == before


def test_machine_id_refusals_change_nothing(target: Path) -> None:
    (target.parent / "decl.toml").write_text('[persist."/persist"]\ndirectories = ["/var/lib/app"]\n')
    before = snapshot(target)
    result = install(target, "--machine-id", ID)
    assert result.returncode == 65, result.stderr
    assert "--machine-id: the declaration does not persist /etc/machine-id" in result.stderr
    assert snapshot(target) == before
    (target.parent / "decl.toml").write_text(DECL)
    (target / "persist" / "etc").mkdir(parents=True)
    (target / "persist" / "etc" / "machine-id").write_text("fedcba9876543210fedcba9876543210\n")
    before = snapshot(target)
    result = install(target, "--machine-id", ID)
    assert result.returncode == 73, result.stderr
    assert "already holds machine id 'fedcba9876543210fedcba9876543210', not " + ID in result.stderr
    assert snapshot(target) == before
    (target / "persist" / "etc" / "machine-id").write_text("not an id\n")
    result = install(target)
    assert result.returncode == 73, result.stderr
    assert "persist/etc/machine-id holds no machine id; not replacing it" in result.stderr
    assert not (target / "etc" / "machine-id").exists()


def test_the_given_id_replaces_the_one_a_bootstrapper_left(target: Path) -> None:
    # debootstrap's systemd postinst writes an id into the new root; the first boot must
    # already run under the given one (and the machine-id step would refuse two).
    (target / "etc" / "machine-id").write_text("fedcba9876543210fedcba9876543210\n")
    result = install(target, "--machine-id", ID)
    assert result.returncode == 0, result.stderr
    assert (target / "persist" / "etc" / "machine-id").read_text() == ID + "\n"
    assert (target / "etc" / "machine-id").read_text() == ID + "\n"
    # Without --machine-id, the root's id is the one kept.
    (target / "persist" / "etc" / "machine-id").unlink()
    (target / "etc" / "machine-id").write_text("fedcba9876543210fedcba9876543210\n")
    result = install(target)
    assert result.returncode == 0, result.stderr
    assert (target / "persist" / "etc" / "machine-id").read_text() == "fedcba9876543210fedcba9876543210\n"


def test_the_running_systems_id_is_never_changed(tmp_path: Path) -> None:
    # install --root / (live): called directly on a scratch root standing in for "/", so
    # that a broken check could never change this machine.
    from freshroot.activation.identity import install_checks
    from freshroot.config.parse import parse_text
    from freshroot.errors import OperationError
    from freshroot.fs.ops import open_root

    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "machine-id").write_text("fedcba9876543210fedcba9876543210\n")
    table = parse_text(DECL, "decl.toml").table()
    fd = open_root(str(tmp_path))
    try:
        with pytest.raises(OperationError, match="install does not change the id of the system it runs on"):
            install_checks(fd, table, machine_id=ID, host_keys=[], live=True)
        assert install_checks(fd, table, machine_id="fedcba9876543210fedcba9876543210", host_keys=[],
                              live=True) == []
        assert install_checks(fd, table, machine_id=ID, host_keys=[], live=False) == []
    finally:
        os.close(fd)

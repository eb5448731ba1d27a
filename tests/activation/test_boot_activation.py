"""`freshroot apply --boot` and its builtins (issue 19): the whole activation in one process,
failures logged at priority err while the rest goes on, persist before etc, the machine id
and the SSH host keys kept in storage from the first boot, the modprobe builtin."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from freshroot.activation import identity, modprobe
from freshroot.fs.ops import open_root
from freshroot.persist import image
from freshroot.plan.action import Context
from tests.nsutil import in_mount_namespace
from tests.persist.helpers import declaration
from tests.systemd.helpers import as_service, env, freshroot

pytestmark = pytest.mark.root

ID_A = "0123456789abcdef0123456789abcdef"
ID_B = "fedcba9876543210fedcba9876543210"
DECL = """\
[persist."/persist"]
include = ["machine-id", "ids"]
directories = ["/etc/ssh", { path = "/var/lib/app", user = "app", group = "app", mode = "0750" }]

[users.app]
system = true

[etc."ssh/sshd_config.d/10-local.conf"]
text = "PasswordAuthentication no\\n"

[activation.fails]
text = "echo about to fail; exit 3"

[activation.after]
deps = ["etc"]
text = "echo ran > $FRESHROOT_ROOT/var/after-ran"
"""


def _root(tmp_path: Path, decl: str = DECL) -> Path:
    root = tmp_path / "root"
    for d in ("etc/freshroot", "persist", "run", "var"):
        (root / d).mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    (root / "etc" / "freshroot" / "freshroot.toml").write_text(decl)
    return root


def _boot(root: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-m", "freshroot",
                           "apply", "--boot", "--root", str(root)], env=env(**extra), capture_output=True, text=True,
                          check=False)


def _boot_as_service(root: Path) -> subprocess.CompletedProcess[str]:
    """As freshroot-activate.service runs it: the output is the journal (JOURNAL_STREAM)."""
    return as_service(["unshare", "--mount", "--propagation", "private", sys.executable, "-m", "freshroot",
                       "apply", "--boot", "--root", str(root)], root.parent / "journal")


def test_boot_runs_everything_logs_the_failure_and_goes_on(tmp_path: Path) -> None:
    root = _root(tmp_path)
    result = _boot_as_service(root)
    assert result.returncode == 1, result.stdout + result.stderr  # the unit fails: systemctl --failed names it
    out = result.stdout
    assert "<3>freshroot: step fails failed" in out, out
    assert "exit status 3" in out or "status 3" in out, out
    assert "<3>freshroot: activation done" in out, out
    assert "failed: fails" in out, out
    assert (root / "var" / "after-ran").read_text() == "ran\n"  # the other steps ran
    assert "app:x:999:999:" in (root / "etc" / "passwd").read_text()
    # persist before etc: the [etc] file inside the persisted /etc/ssh landed in storage
    assert (root / "persist" / "etc" / "ssh" / "sshd_config.d" / "10-local.conf").read_text() == \
        "PasswordAuthentication no\n"
    assert (root / "persist" / "var" / "lib" / "app").stat().st_uid == 999
    # the machine id: written in storage and on the root as a plain file, never bound
    stored = (root / "persist" / "etc" / "machine-id").read_text().strip()
    assert identity.valid_id(stored)
    assert (root / "etc" / "machine-id").read_text().strip() == stored


def test_boot_without_journal_writes_plain_lines(tmp_path: Path) -> None:
    root = _root(tmp_path, DECL.replace("exit 3", "exit 0"))
    result = _boot(root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "<3>" not in result.stdout
    assert "<6>" not in result.stdout
    assert "freshroot: activation done, " in result.stdout


def test_plan_predicts_what_apply_refuses(tmp_path: Path) -> None:
    root = _root(tmp_path, DECL.replace("[activation.fails]", "[activation.fails]\ndeps = []"))
    (root / "var" / "lib" / "app").mkdir(parents=True)
    (root / "var" / "lib" / "app" / "data").write_text("user data\n")
    (root / "persist" / "var" / "lib" / "app").mkdir(parents=True)
    (root / "persist" / "var" / "lib" / "app" / "other").write_text("other\n")
    planned = freshroot("plan", "--root", str(root))
    # A plan changes nothing; it says what apply will do, and exits 1 for a predicted
    # refusal (docs/exit-codes.md).
    assert planned.returncode == 1, planned.stdout
    assert "refuse /var/lib/app: both /var/lib/app and /persist/var/lib/app hold data" in \
        planned.stdout.replace(str(root), ""), planned.stdout


# --- the machine id -------------------------------------------------------------------------


def _machine_id_plan(root: Path, *, fresh: bool | None) -> list[str]:
    time.sleep(2 * image.SLACK)  # what _ids wrote is older than the boot's mark
    fd = open_root(str(root))
    try:
        if fresh is not None:
            if not fresh:
                image.mark_boot(fd)  # a previous boot's mark: the root was kept
            image.mark_boot(fd)
        ctx = Context(fd, str(root), dry_run=True)
        e = identity.machine_id_entry(declaration('[persist."/persist"]\ninclude = ["machine-id"]\n'))
        assert e is not None
        return [a.describe() for a in identity._machine_id_actions(ctx, e)]
    finally:
        os.close(fd)


def _ids(root: Path, on_root: str | None, stored: str | None) -> None:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "persist" / "etc").mkdir(parents=True, exist_ok=True)
    if on_root is not None:
        (root / "etc" / "machine-id").write_text(on_root)
    if stored is not None:
        (root / "persist" / "etc" / "machine-id").write_text(stored + "\n")


@pytest.mark.parametrize("on_root", [None, "", "uninitialized\n"])
def test_no_id_on_the_root_a_new_one_in_both(tmp_path: Path, on_root: str | None) -> None:
    _ids(tmp_path, on_root, None)
    actions = _machine_id_plan(tmp_path, fresh=True)
    assert len(actions) == 2
    assert "(a new id)" in actions[0]
    assert actions[0].split()[3] == actions[1].split()[3]


def test_storage_id_wins_over_the_image_s(tmp_path: Path) -> None:
    _ids(tmp_path, ID_A + "\n", ID_B)
    assert _machine_id_plan(tmp_path, fresh=True) == [
        f"write machine id {ID_B} to /etc/machine-id (the id in storage)"]


def test_root_id_is_kept_in_empty_storage(tmp_path: Path) -> None:
    _ids(tmp_path, ID_A + "\n", None)
    assert _machine_id_plan(tmp_path, fresh=False) == [
        f"write machine id {ID_A} to /persist/etc/machine-id (the root's id, kept in storage)"]


def test_two_different_ids_on_a_kept_root_are_refused(tmp_path: Path) -> None:
    _ids(tmp_path, ID_A + "\n", ID_B)
    with pytest.raises(Exception, match="hold different machine ids"):
        _machine_id_plan(tmp_path, fresh=False)


def test_same_id_nothing_to_do(tmp_path: Path) -> None:
    _ids(tmp_path, ID_A + "\n", ID_A)
    assert _machine_id_plan(tmp_path, fresh=False) == []


# --- install: the identity before the first boot --------------------------------------------

INSTALL_DECL = """\
[persist."/persist"]
include = ["machine-id", "ssh-host-keys"]
"""


def test_install_writes_machine_id_and_host_keys_into_storage(tmp_path: Path) -> None:
    root = _root(tmp_path, INSTALL_DECL)
    (root / "etc" / "machine-id").write_text("")  # as Debian's cloud images ship it
    keys = tmp_path / "keys"
    keys.mkdir()
    # A real key: install checks what it copies (tests/activation/test_hostkeys.py).
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(keys / "ssh_host_ed25519_key")],
                   check=True)
    result = freshroot("install", "--root", str(root), "--machine-id", ID_A, "--host-keys", str(keys))
    assert result.returncode == 0, result.stderr
    assert (root / "persist" / "etc" / "machine-id").read_text() == ID_A + "\n"
    assert (root / "etc" / "machine-id").read_text() == ID_A + "\n"  # PID 1 reads it at the first boot
    key = root / "persist" / "etc" / "ssh" / "ssh_host_ed25519_key"
    assert key.read_bytes() == (keys / "ssh_host_ed25519_key").read_bytes()
    assert key.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in key.parent.iterdir()) == ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"]
    # again with another id: refused, nothing changed
    again = freshroot("install", "--root", str(root), "--machine-id", ID_B)
    assert again.returncode == 73, again.stderr
    assert "already holds machine id" in again.stderr


def test_install_rejects_a_bad_machine_id_before_changing_anything(tmp_path: Path) -> None:
    root = _root(tmp_path, INSTALL_DECL)
    result = freshroot("install", "--root", str(root), "--machine-id", "not-an-id")
    assert result.returncode == 65, result.stderr
    assert "not a machine id" in result.stderr
    assert not (root / "persist" / "etc").exists()


def test_host_keys_are_generated_into_storage_at_boot(tmp_path: Path) -> None:
    root = _root(tmp_path, '[persist."/persist"]\nfiles = [{ path = "/etc/ssh/ssh_host_ed25519_key", '
                 'how = "bind", mode = "0600", create = false }, { path = "/etc/ssh/ssh_host_ed25519_key.pub", '
                 'how = "bind", create = false }]\n')
    result = _boot(root)
    assert result.returncode == 0, result.stdout + result.stderr
    stored = root / "persist" / "etc" / "ssh" / "ssh_host_ed25519_key.pub"
    assert stored.read_text().startswith("ssh-ed25519 ")
    first = stored.read_text()
    again = _boot(root)  # the next boot (the root keeps its mount point file; storage its key)
    assert again.returncode == 0, again.stdout
    assert stored.read_text() == first
    assert "generate the SSH host key" not in again.stdout


# --- modprobe ------------------------------------------------------------------------------


def test_modprobe_does_nothing_when_the_default_resolves() -> None:
    assert modprobe.planned("/sbin/modprobe", lambda p: p == "/sbin/modprobe") is None


def test_modprobe_points_at_the_root_s_binary() -> None:
    assert modprobe.planned("/sbin/modprobe", lambda p: p == "/usr/bin/modprobe") == "/usr/bin/modprobe"
    assert modprobe.planned("", lambda p: p == "/usr/sbin/modprobe") == "/usr/sbin/modprobe"


def test_modprobe_nothing_to_point_at() -> None:
    assert modprobe.planned("/sbin/modprobe", lambda p: False) is None


def test_a_transient_machine_id_is_replaced_by_storage_s(tmp_path: Path) -> None:
    """systemd's transient id (a mount on /etc/machine-id when the image had none): unmounted
    and the root's file written with storage's id, so systemd-machine-id-commit has nothing
    to commit (its ConditionPathIsMountPoint fails) instead of failing on a bound file."""
    _ids(tmp_path, "", ID_B)
    transient = tmp_path / "transient-id"
    transient.write_text(ID_A + "\n")

    def body() -> None:
        from freshroot.fs.mount import MS, mount

        mount(str(transient), str(tmp_path / "etc" / "machine-id"), None, MS.BIND)
        fd = open_root(str(tmp_path))
        try:
            ctx = Context(fd, str(tmp_path))
            e = identity.machine_id_entry(declaration('[persist."/persist"]\ninclude = ["machine-id"]\n'))
            assert e is not None
            actions = identity._machine_id_actions(ctx, e)
            want = (f"unmount the transient machine id, then write machine id {ID_B} to /etc/machine-id "
                    "(the id in storage)")
            assert [a.describe() for a in actions] == [want]
            for a in actions:
                a.apply(ctx)
            assert not identity._is_mount_point(fd, identity.MACHINE_ID)
        finally:
            os.close(fd)
        assert (tmp_path / "etc" / "machine-id").read_text() == ID_B + "\n"

    in_mount_namespace(body)
    assert (tmp_path / "etc" / "machine-id").read_text() == ID_B + "\n"


def test_extra_files_storage_gets_the_root_s_machine_id(tmp_path: Path) -> None:
    """install --root, then install --extra-files for the persist disk: one id, not two."""
    root = _root(tmp_path, INSTALL_DECL)
    (root / "etc" / "machine-id").write_text("")
    first = freshroot("install", "--root", str(root))
    assert first.returncode == 0, first.stderr
    machine_id = (root / "etc" / "machine-id").read_text()
    extra = tmp_path / "extra"
    second = freshroot("install", "--extra-files", str(extra), "--root", str(root), "--config",
                       str(root / "etc" / "freshroot" / "freshroot.toml"))
    assert second.returncode == 0, second.stderr
    assert (extra / "persist" / "etc" / "machine-id").read_text() == machine_id


def test_boot_names_an_unknown_section_and_activates_the_rest(tmp_path: Path) -> None:
    """The generator checks nothing since it replays install's units; the activation says
    what config check would refuse (priority err) and does the rest."""
    root = _root(tmp_path, DECL.replace("exit 3", "exit 0") + '\n[persits."/persist"]\ndirectories = ["/x"]\n')
    result = _boot_as_service(root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "<3>freshroot: " in result.stdout
    assert "freshroot.toml:" in result.stdout, result.stdout
    assert "unknown section [persits]" in result.stdout, result.stdout
    assert (root / "var" / "after-ran").read_text() == "ran\n"


# What the unit's process must not load: the command line's parser and logging (the boot has
# its own small logger), runpy (`-m`), and OpenSSL (freshroot.digest): each paid at every boot.
NOT_AT_BOOT = {"argparse", "logging", "runpy", "_hashlib", "freshroot.cli"}
DUMP_MODULES = """
import atexit, sys
sys.path.insert(0, {src!r})
atexit.register(lambda: open({out!r}, "w").write("\\n".join(sorted(sys.modules))))
from freshroot.bootstart import main
sys.exit(main({root!r}))
"""


def test_the_unit_command_loads_only_what_the_boot_needs(tmp_path: Path) -> None:
    """freshroot-activate.service runs ``python3 -I -c units.BOOT_COMMAND`` (tests/systemd/
    test_generator.py); here the same entry point on a scratch root, as a service."""
    root = _root(tmp_path)
    out = tmp_path / "modules"
    code = DUMP_MODULES.format(src=str(Path(__file__).parents[2] / "src"), out=str(out), root=str(root))
    result = as_service(["unshare", "--mount", "--propagation", "private", sys.executable, "-I", "-c", code],
                        tmp_path / "journal")
    assert result.returncode == 1, result.stdout  # the declaration's failing snippet
    assert "<3>freshroot: activation done" in result.stdout, result.stdout
    assert "app:x:999:999:" in (root / "etc" / "passwd").read_text()
    loaded = set(out.read_text().split())
    assert "freshroot.systemd.activate" in loaded
    assert loaded & NOT_AT_BOOT == set()


def test_a_wrong_section_at_boot_costs_only_its_own_steps(tmp_path: Path) -> None:
    """A declaration that went wrong since install (edited in the image, or refused by a newer
    freshroot): the wrong [etc] entry fails the etc step, said at priority err with its line;
    users and persistence still happen, and the snippet after etc is skipped, not run."""
    root = _root(tmp_path, DECL + '\n[etc."../shadow"]\ntext = "x"\n')
    result = _boot_as_service(root)
    out = result.stdout
    assert result.returncode == 1, out
    assert "<3>freshroot: step etc failed" in out, out
    assert 'etc."../shadow": not a canonical path below /etc' in out, out
    assert "app:x:999:999:" in (root / "etc" / "passwd").read_text()  # users ran
    assert (root / "persist" / "var" / "lib" / "app").is_dir()  # persistence ran
    assert not (root / "var" / "after-ran").exists()  # deps = ["etc"]: skipped
    assert not (root / "etc" / "ssh" / "sshd_config.d" / "10-local.conf").exists()

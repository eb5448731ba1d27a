"""The initrd builders besides initramfs-tools: dracut and mkinitcpio, and wipe = "tmpfs".

`freshroot install --root` on a scratch root whose builder is a stub (a /bin/sh script that
leaves its arguments in /boot, run by `chroot`): the builder is detected, its files written,
its rebuild run. The dracut wrapper runs with stub wipe scripts that record what they were
given. mkinitcpio's hook is only syntax-checked: no Arch boots here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from freshroot.root.initrd import BUILDERS, DRACUT, DRACUT_MODULE, MKINITCPIO, asset

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT_PKG = SRC / "freshroot/root"
pytestmark = pytest.mark.root
needs = pytest.mark.skipif(any(shutil.which(t) is None for t in ("dash", "bash", "unshare", "ldd")),
                           reason="needs dash, bash, unshare and ldd")

DECLARATION = """\
[root]
wipe = "{wipe}"

[persist."/persist"]
directories = ["/var/lib/kept"]
"""
FSTAB = "/dev/vda / ext4 rw 0 0\nLABEL=persist /persist ext4 defaults 0 2\n"


def fake_root(root: Path, program: str, fstab: str = FSTAB) -> None:
    """A root with the host's dash as /bin/sh and a stub ``program`` that writes its arguments
    to /boot/initrd-rebuilt."""
    libs = subprocess.run(["ldd", "/bin/dash"], capture_output=True, text=True, check=True).stdout
    for path in [p for p in libs.split() if p.startswith("/")]:
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / path.lstrip("/"))
    for d in ("bin", "boot", "proc", "sys", "dev", "etc", "persist"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/dash", root / "bin/sh")
    stub = root / program.lstrip("/")
    stub.parent.mkdir(parents=True, exist_ok=True)
    stub.write_text('#!/bin/sh\necho "$0 $*" > /boot/initrd-rebuilt\n')
    stub.chmod(0o755)
    (root / "etc/fstab").write_text(fstab)


def install(root: Path, wipe: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    decl = tmp_path / "freshroot.toml"
    decl.write_text(DECLARATION.format(wipe=wipe))
    return subprocess.run([sys.executable, "-m", "freshroot", "install", "--root", str(root), "--config", str(decl)],
                          env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True, check=False,
                          timeout=120)


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@needs
def test_dracut_is_detected_its_module_installed_and_the_initrds_rebuilt(tmp_path: Path) -> None:
    root = tmp_path / "root"
    fake_root(root, "/usr/bin/dracut")
    proc = install(root, "overlay", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (root / "boot/initrd-rebuilt").read_text() == "/usr/bin/dracut --regenerate-all --force\n"
    assert "rebuilt (dracut --regenerate-all --force in a chroot)" in proc.stdout
    for f in DRACUT.files:
        written = root / f.path.lstrip("/")
        assert written.read_bytes() == asset(f.asset), f.path
        assert written.stat().st_mode & 0o777 == f.mode, f.path
    # The very scripts initramfs-tools runs, not a copy of their logic.
    assert (root / DRACUT_MODULE.lstrip("/") / "wipe-btrfs").read_bytes() == \
        (ROOT_PKG / "initramfs-tools/local-premount").read_bytes()
    assert (root / DRACUT_MODULE.lstrip("/") / "wipe-volatile").read_bytes() == \
        (ROOT_PKG / "initramfs-tools/local-bottom").read_bytes()
    assert not (root / "etc/initramfs-tools").exists()
    assert "wipe=overlay\n" in (root / "etc/freshroot/root-wipe.conf").read_text()


@needs
def test_mkinitcpio_gets_its_hook_and_a_conf_adding_it(tmp_path: Path) -> None:
    root = tmp_path / "root"
    fake_root(root, "/usr/bin/mkinitcpio")
    proc = install(root, "tmpfs", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (root / "boot/initrd-rebuilt").read_text() == "/usr/bin/mkinitcpio -P\n"
    for f in MKINITCPIO.files:
        assert (root / f.path.lstrip("/")).read_bytes() == asset(f.asset), f.path
    assert "HOOKS+=(freshroot-root)" in (root / "etc/mkinitcpio.conf.d/freshroot-root.conf").read_text()


@needs
def test_no_known_builder_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    root = tmp_path / "root"
    fake_root(root, "/usr/bin/genkernel")
    before = listing(root)
    proc = install(root, "overlay", tmp_path)
    assert proc.returncode == 73, proc.stdout + proc.stderr
    assert "no initrd builder freshroot's wipe works with; looked for initramfs-tools" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert listing(root) == before


@needs
def test_tmpfs_with_a_separate_usr_is_refused_at_the_wipe_line(tmp_path: Path) -> None:
    root = tmp_path / "root"
    fake_root(root, "/usr/bin/dracut", fstab=FSTAB + "LABEL=usr /usr ext4 ro 0 2\n")
    before = listing(root)
    proc = install(root, "tmpfs", tmp_path)
    assert proc.returncode == 65, proc.stdout + proc.stderr
    assert ('freshroot.toml:2: [root] wipe = "tmpfs" binds /usr from the root file system, but /usr is a file '
            "system of its own") in proc.stderr
    assert 'use wipe = "overlay"' in proc.stderr
    assert listing(root) == before


@needs
def test_tmpfs_too_big_for_ram_is_refused_at_the_wipe_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from freshroot.config.parse import parse_text
    from freshroot.errors import ConfigError
    from freshroot.fs import ops
    from freshroot.root import setup

    root = tmp_path / "root"
    fake_root(root, "/usr/bin/dracut")
    (root / "var").mkdir()
    fd = ops.open_root(str(root))
    try:
        before = setup.tmpfs_copy_size(fd, FSTAB)
        (root / "var/big").write_bytes(b"x" * 400_000)
        (root / "usr/big").write_bytes(b"x" * 4_000_000)  # /usr is bound, not copied
        (root / "persist/big").write_bytes(b"x" * 4_000_000)  # a mount point: mounted over
        assert setup.tmpfs_copy_size(fd, FSTAB) - before == 400_000
        monkeypatch.setattr(setup, "_memory", lambda: before)
        table = parse_text(DECLARATION.format(wipe="tmpfs"), "freshroot.toml").table()
        with pytest.raises(ConfigError, match=r"would copy [0-9]+ MiB of .* into RAM at every boot") as e:
            setup.declared_for_install(table, fd, str(root), tree=False)
        assert str(e.value).startswith("freshroot.toml:2: ")
        monkeypatch.setattr(setup, "_memory", lambda: 5 * (before + 400_000))
        wipe = setup.declared_for_install(table, fd, str(root), tree=False)
        assert wipe is not None
        assert wipe.builder is DRACUT
    finally:
        os.close(fd)


WRAPPER = r"""
set -eu
cd "$WORK"
mkdir -p lib units
cat > stub <<'EOF'
#!/bin/sh
echo "$NAME ROOT=$ROOT ROOTFLAGS=${ROOTFLAGS:-} rootmnt=${rootmnt:-} PARAM=${FRESHROOT_PARAM:-}" >> "$WORK/calls"
[ -z "${FAIL:-}" ] || echo "ROOTFLAGS='-o subvol=old_roots/D,compress=zstd'" >> "$FRESHROOT_PARAM"
EOF
for s in btrfs volatile; do
  { echo '#!/bin/sh'; echo "NAME=$s"; tail -n +2 stub; } > lib/wipe-$s
done
cp "$WRAPPER" lib/freshroot-root
printf '#!/bin/sh\necho "$@" >> "$WORK/systemctl.log"\n' > systemctl; chmod +x systemctl
export FRESHROOT_LIB="$WORK/lib" FRESHROOT_CMDLINE="$WORK/cmdline" FRESHROOT_UNITS="$WORK/units" \
  FRESHROOT_SYSTEMCTL="$WORK/systemctl" FRESHROOT_PARAM_FILE="$WORK/param"
dash lib/freshroot-root btrfs
dash lib/freshroot-root volatile
FAIL=1 dash lib/freshroot-root btrfs
dash lib/freshroot-root bogus 2>/dev/null || echo "usage $?" >> calls
"""


@needs
def test_the_dracut_wrapper_gives_the_scripts_initramfs_tools_variables(tmp_path: Path) -> None:
    (tmp_path / "cmdline").write_text("quiet root=LABEL=root rootflags=subvol=root,compress=zstd rw\n")
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", WRAPPER],
                          env={"WORK": str(tmp_path), "WRAPPER": str(ROOT_PKG / "dracut/freshroot-root"),
                               "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0] == ("btrfs ROOT=/dev/disk/by-label/root ROOTFLAGS=-o subvol=root,compress=zstd rootmnt= "
                        f"PARAM={tmp_path}/param")
    assert calls[1] == "volatile ROOT=/dev/disk/by-label/root ROOTFLAGS= rootmnt=/sysroot PARAM="
    assert calls[3] == "usage 2"
    # The way back failed: sysroot.mount is told to mount yesterday's root where it is now.
    assert (tmp_path / "units/sysroot.mount.d/freshroot-root.conf").read_text() == \
        "[Mount]\nOptions=subvol=old_roots/D,compress=zstd\n"
    assert (tmp_path / "systemctl.log").read_text() == "daemon-reload\n"


SKIP = r"""
set -eu
cd "$WORK"
mkdir -p lib
printf '#!/bin/sh\necho "btrfs ROOT=$ROOT" >> "$WORK/calls"\n' > lib/wipe-btrfs
cp "$WRAPPER" lib/freshroot-root
printf '#!/bin/sh\necho "$@" >> "$WORK/udevadm.log"\n[ -z "$FSTYPE" ] || echo "ID_FS_TYPE=$FSTYPE"\n' > udevadm
chmod +x udevadm
export FRESHROOT_LIB="$WORK/lib" FRESHROOT_CMDLINE="$WORK/cmdline" FRESHROOT_UDEVADM="$WORK/udevadm" \
  FRESHROOT_PARAM_FILE="$WORK/param" FRESHROOT_SYSTEMCTL=false
dash lib/freshroot-root btrfs
"""


@needs
@pytest.mark.parametrize(("cmdline", "fstype", "runs"), [
    ("root=/dev/vda rw", "ext4", False),  # no btrfs: the module is not even loaded
    ("root=/dev/vda rw", "btrfs", True),
    ("root=/dev/vda rw", "", True),  # udev does not know: the script finds out
    ("root=/dev/vda rootflags=subvol=root", "ext4", True),  # it says the subvolume is not there
    ("root=/dev/vda rootflags=subvolid=5", "xfs", False),
])
def test_the_dracut_wrapper_skips_the_btrfs_script_on_another_file_system(
        tmp_path: Path, cmdline: str, fstype: str, runs: bool) -> None:
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    proc = subprocess.run(["bash", "-c", SKIP], capture_output=True, text=True, check=False, timeout=60,
                          env={"WORK": str(tmp_path), "WRAPPER": str(ROOT_PKG / "dracut/freshroot-root"),
                               "FSTYPE": fstype, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert proc.returncode == 0, proc.stderr
    calls = tmp_path / "calls"
    assert (calls.read_text() if calls.exists() else "") == ("btrfs ROOT=/dev/vda\n" if runs else "")
    if "subvol=" not in cmdline:
        assert (tmp_path / "udevadm.log").read_text() == "info --query=property --name=/dev/vda\n"


@pytest.mark.parametrize("name", sorted({f.asset for b in BUILDERS for f in b.files}))
def test_every_shipped_shell_file_parses(name: str) -> None:
    text = asset(name).decode()
    if name.endswith(".service"):
        assert "ExecStart=/usr/lib/freshroot/freshroot-root " in text
        return
    shell = "bash" if text.startswith("#!/bin/bash") or name.endswith(".conf") else "sh"
    if shutil.which(shell) is None:
        pytest.skip(f"no {shell}")
    proc = subprocess.run([shell, "-n"], input=text, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    if shell == "sh" and shutil.which("dash"):  # POSIX: what klibc's, busybox's and dash's sh read
        proc = subprocess.run(["dash", "-n"], input=text, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr

"""The Debian package, built from this tree as a distribution builds it, installed into a
scratch root that has a Python: its commands, man pages and generator work there; and the
RPM spec passes rpmlint."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from freshroot import __version__
from freshroot.manpages import PAGES
from tests.pyroot import copy_host_python
from tests.systemd.helpers import make_root

REPO = Path(__file__).resolve().parents[1]
BUILD_TOOLS = ("dpkg-buildpackage", "dh", "dh_python3", "lintian", "dpkg-deb", "chroot", "unshare", "ldd", "man")


def source_tree(dest: Path) -> None:
    """The files of this tree a checkout has (no caches, venv or build output)."""
    if (REPO / ".git").exists():
        names = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "-co", "--exclude-standard"],
                               capture_output=True, check=True).stdout.decode().split("\0")
        for name in filter(None, names):
            if (REPO / name).is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, dest / name)
    else:
        shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
            ".venv", ".cache", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis", "build", "dist"))


@pytest.fixture(scope="module")
def deb(tmp_path_factory) -> Path:
    missing = [t for t in BUILD_TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (dev.sh's APT_PACKAGES)")
    work: Path = tmp_path_factory.mktemp("deb")
    source_tree(work / "freshroot")
    result = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=work / "freshroot",
                            capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work / f"freshroot_{__version__}_all.deb"


@pytest.fixture(scope="module")
def installed(deb, tmp_path_factory) -> Path:
    """A root with a Python (the host's) and the package unpacked into it, and a declaration."""
    root = make_root(tmp_path_factory.mktemp("pkgroot") / "root")
    copy_host_python(root)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def chroot(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run argv in root with /proc mounted there (freshroot reopens fds through it), in a
    private mount namespace so the mount goes away with the command."""
    (root / "proc").mkdir(exist_ok=True)
    script = 'mount --make-rprivate / && mount -t proc proc "$0/proc" && exec chroot "$0" "$@"'
    return subprocess.run(["unshare", "--mount", "sh", "-c", script, str(root), *argv], capture_output=True,
                          text=True, check=False, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"})


pytestmark = [pytest.mark.root, pytest.mark.slow]  # chroot; a package build


def test_lintian_finds_no_errors(deb):
    result = subprocess.run(["lintian", "--fail-on", "error", str(deb)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout


def test_package_contents(deb):
    names = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    for path in ("./usr/bin/freshroot", "./usr/bin/freshroot-tmpfiles",
                 "./usr/lib/systemd/system-generators/freshroot-generator",
                 "./usr/lib/python3/dist-packages/freshroot/cli.py",
                 "./usr/share/bash-completion/completions/freshroot",
                 "./usr/share/zsh/vendor-completions/_freshroot",
                 "./usr/share/fish/vendor_completions.d/freshroot.fish",
                 "./usr/share/doc/freshroot/copyright",
                 *(f"./usr/share/man/man{page[-1]}/{page}.gz" for page in PAGES)):
        assert f" {path}" in names, path


def test_commands_run_from_the_package(installed):
    version = chroot(installed, "/usr/bin/freshroot", "--version")
    assert (version.returncode, version.stdout) == (0, f"freshroot {__version__}\n"), version.stderr
    tmpfiles = chroot(installed, "/usr/bin/freshroot-tmpfiles", "--version")
    assert tmpfiles.stdout.splitlines()[0] == "systemd 262 (262)", tmpfiles.stderr
    check = chroot(installed, "/usr/bin/freshroot", "config", "check")
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("page", PAGES)
def test_installed_man_pages_render_without_warnings(installed, page):
    path = installed / "usr" / "share" / "man" / f"man{page[-1]}" / f"{page}.gz"
    result = subprocess.run(["man", "-l", "--warnings=w", str(path)], capture_output=True, text=True, check=False,
                            env={**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8"})
    assert (result.returncode, result.stderr) == (0, "")
    assert page.split(".")[0].upper() in result.stdout


@pytest.fixture(scope="module")
def generated(installed) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The packaged generator run in the root as systemd runs it: an executable whose
    `#!/usr/bin/python3 -I` finds the installed freshroot, nothing of the build tree."""
    result = chroot(installed, "/usr/lib/systemd/system-generators/freshroot-generator", "/gen", "/gen", "/gen")
    return result, installed / "gen"


def test_generator_runs_from_the_package(installed, generated):
    script = (installed / "usr/lib/systemd/system-generators/freshroot-generator").read_text()
    assert script.startswith("#!/usr/bin/python3 -I\n")
    result, normal = generated
    assert (result.returncode, result.stderr) == (0, "")
    units = sorted(p.name for p in normal.iterdir() if p.is_file())
    # The whole declaration at boot, in one unit (docs/systemd.md); with [tmpfiles], its resetup.
    assert "freshroot-activate.service" in units
    assert "freshroot-tmpfiles-resetup.service" in units


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_analyze_verify_finds_the_documentation(installed, generated):
    """Without --man=no, verify looks up every Documentation=man: page (it fails when one is
    missing): those of freshroot come from the package (MANPATH names where it was unpacked),
    systemd's from the host."""
    _result, normal = generated
    names = sorted(p.name for p in normal.iterdir() if p.is_file())
    assert names
    manpath = f"{installed}/usr/share/man:/usr/share/man"
    result = subprocess.run(["systemd-analyze", "verify", *names], cwd=normal, capture_output=True, text=True,
                            check=False, env={**os.environ, "SYSTEMD_UNIT_PATH": f"{normal}:", "MANPATH": manpath,
                                              "SYSTEMD_LOG_LEVEL": "notice"})
    assert (result.returncode, result.stderr.strip()) == (0, "")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_analyze_verify_accepts_every_unit(installed):
    """Issue 20: every unit freshroot writes, not only the boot's two: the initrd's mount
    units and dependency links too (the declaration's early entries), rendered by the
    packaged freshroot in the root, verified with their man pages looked up (no --man=no)."""
    for out, extra in (("/units", ()), ("/units-initrd", ("--initrd",))):
        result = chroot(installed, "/usr/bin/freshroot", "render", "--units", out, *extra)
        assert result.returncode == 0, result.stderr
    names: list[tuple[Path, str]] = []
    for out in ("units", "units-initrd"):
        directory = installed / out
        names += [(directory, p.name) for p in directory.iterdir()
                  if p.is_file() and not p.name.startswith(".")]
    kinds = {name.rsplit(".", 1)[1] for _, name in names}
    assert {"service", "mount"} <= kinds, names  # RICH's early /var/log is an initrd mount unit
    manpath = f"{installed}/usr/share/man:/usr/share/man"
    for directory in {d for d, _ in names}:
        batch = sorted(n for d, n in names if d == directory)
        result = subprocess.run(["systemd-analyze", "verify", *batch], cwd=directory, capture_output=True,
                                text=True, check=False,
                                env={**os.environ, "SYSTEMD_UNIT_PATH": f"{directory}:", "MANPATH": manpath,
                                     "SYSTEMD_LOG_LEVEL": "notice"})
        assert (result.returncode, result.stderr.strip()) == (0, ""), (directory, batch)


@pytest.mark.skipif(shutil.which("rpmlint") is None, reason="needs rpmlint")
def test_rpm_spec_passes_rpmlint():
    result = subprocess.run(["rpmlint", str(REPO / "freshroot.spec")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 errors" in result.stdout, result.stdout


def test_rpm_spec_and_debian_changelog_carry_the_version():
    spec = (REPO / "freshroot.spec").read_text()
    assert f"\nVersion:        {__version__}\n" in spec
    changelog = (REPO / "debian" / "changelog").read_text()
    assert changelog.startswith(f"freshroot ({__version__}) ")


@pytest.mark.skipif(shutil.which("rpmbuild") is None or shutil.which("git") is None or not (REPO / ".git").exists(),
                    reason="needs rpmbuild (rpm) and a git checkout")
def test_rpm_spec_builds(tmp_path):
    """rpmbuild -bb on this tree's tarball, with Fedora's python3 macros (Debian's rpm has
    none) standing in: the package holds what the spec says, in the system Python's site path."""
    (tmp_path / "SOURCES").mkdir()
    tarball = tmp_path / "SOURCES" / f"freshroot-{__version__}.tar.gz"
    with tarball.open("wb") as out:  # the working tree as it is, not only what is committed
        files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard"],
                               capture_output=True, text=True, check=True).stdout.split()
        subprocess.run(["tar", "-cz", f"--transform=s,^,freshroot-{__version__}/,", "-C", str(REPO), *files],
                       stdout=out, check=True)
    site = "/usr/lib/python3.11/site-packages"
    result = subprocess.run(
        ["rpmbuild", "-bb", "--nodeps", "--define", f"_topdir {tmp_path}", "--define", f"python3_sitelib {site}",
         "--define", "python3 /usr/bin/python3", "--define", "py_byte_compile() /usr/bin/python3 -m compileall -q %2",
         str(REPO / "freshroot.spec")], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    rpm = tmp_path / "RPMS" / "noarch" / f"freshroot-{__version__}-1.noarch.rpm"
    packaged = set(subprocess.run(["rpm", "-qlp", str(rpm)], capture_output=True, text=True, check=True).stdout.split())
    for path in (f"{site}/freshroot/cli.py", "/usr/bin/freshroot", "/usr/bin/freshroot-tmpfiles",
                 "/usr/lib/systemd/system-generators/freshroot-generator",
                 "/usr/share/bash-completion/completions/freshroot", "/usr/share/zsh/site-functions/_freshroot",
                 "/usr/share/fish/vendor_completions.d/freshroot.fish",
                 f"/usr/share/licenses/freshroot-{__version__}/LICENSE",
                 *(f"/usr/share/man/man{page[-1]}/{page}" for page in PAGES)):
        assert path in packaged, path

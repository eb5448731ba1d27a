"""freshroot-generator's cache (freshroot.systemd.gencache): ``install`` stores the units of
the declaration it installs; the generator replays them only while the declaration, the
interpreter and freshroot are the very ones they were made from, and builds them otherwise."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from freshroot import __version__
from freshroot.systemd import gencache
from freshroot.systemd.install import GENERATOR_PYTHON
from tests.systemd.helpers import GROUP, PASSWD, RICH, env, freshroot, tree

pytestmark = pytest.mark.root  # install writes root-owned files; the cache trusts only those

PYTHON = GENERATOR_PYTHON  # what install renders ExecStart= with
CACHE = gencache.CACHE.lstrip("/")


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    root = tmp_path / "mnt"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    (tmp_path / "decl.toml").write_text(RICH)
    result = freshroot("install", "--root", str(root), "--config", str(tmp_path / "decl.toml"))
    assert result.returncode == 0, result.stderr
    assert "generator cache" in result.stdout
    assert (root / CACHE).is_file()
    return root


def replay(root: Path, out: Path, *, python: str = PYTHON, version: str = __version__) -> list[str] | None:
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        return gencache.replay(fd, str(out), python=python, version=version)
    finally:
        os.close(fd)


def built(root: Path, out: Path) -> dict[str, str]:
    """What render --units writes for the same root, as the generator at boot would."""
    result = freshroot("render", "--units", str(out), "--root", str(root), "--python", PYTHON)
    assert result.returncode == 0, result.stderr
    files = tree(out)
    del files[".freshroot-units.json"]  # render's own record of what it wrote (systemd.manifest)
    return files


def test_replay_writes_exactly_what_the_generator_builds(installed: Path, tmp_path: Path) -> None:
    written = replay(installed, tmp_path / "cached")
    assert written is not None
    assert sorted(written) == sorted(tree(tmp_path / "cached"))
    assert tree(tmp_path / "cached") == built(installed, tmp_path / "built")
    assert "sysinit.target.wants/freshroot-activate.service" in written
    assert oct((tmp_path / "cached" / "freshroot-activate.service").stat().st_mode & 0o777) == "0o644"


def _edit(root: Path) -> None:
    path = root / "etc" / "freshroot" / "freshroot.toml"
    path.write_text(path.read_text().replace("/var/cache/big-cache", "/var/cache/big-cachf"))


def _dropin(root: Path) -> None:
    (root / "etc" / "freshroot" / "conf.d").mkdir()
    (root / "etc" / "freshroot" / "conf.d" / "10-more.toml").write_text('[persist."/more"]\ndirectories = ["/x"]\n')


def _vendor(root: Path) -> None:
    (root / "usr" / "lib" / "freshroot" / "conf.d").mkdir(parents=True)
    (root / "usr" / "lib" / "freshroot" / "conf.d" / "00-vendor.toml").write_text("")


def _mask(root: Path) -> None:
    (root / "etc" / "freshroot" / "freshroot.toml").unlink()
    (root / "etc" / "freshroot" / "freshroot.toml").symlink_to("/dev/null")


def _run_dir(root: Path) -> None:
    (root / "run" / "freshroot").mkdir(parents=True)
    (root / "run" / "freshroot" / "freshroot.toml").write_text('[users.x]\n')


def _symlinked_dir(root: Path) -> None:
    shutil.move(root / "etc" / "freshroot", root / "etc" / "freshroot.real")
    (root / "etc" / "freshroot").symlink_to("freshroot.real")


def _symlinked_file(root: Path) -> None:
    decl = root / "etc" / "freshroot" / "freshroot.toml"
    decl.rename(root / "decl.toml")
    decl.symlink_to("/decl.toml")


def _dropin_named_like_the_main_file(root: Path) -> None:
    """The same bytes under conf.d/freshroot.toml are another declaration layout."""
    (root / "etc" / "freshroot" / "conf.d").mkdir()
    (root / "etc" / "freshroot" / "freshroot.toml").rename(root / "etc" / "freshroot" / "conf.d" / "freshroot.toml")


def _writable_cache(root: Path) -> None:
    os.chmod(root / CACHE, 0o666)


def _cache_not_roots(root: Path) -> None:
    os.chown(root / CACHE, 1000, 0)


def _writable_cache_dir(root: Path) -> None:
    os.chmod(root / CACHE.rsplit("/", 1)[0], 0o777)


def _garbled(root: Path) -> None:
    data = (root / CACHE).read_bytes()
    (root / CACHE).write_bytes(data[: len(data) // 2])


def _cache_symlink(root: Path) -> None:
    (root / CACHE).rename(root / "elsewhere.cache")
    (root / CACHE).symlink_to("/elsewhere.cache")


@pytest.mark.parametrize("change", [_edit, _dropin, _vendor, _mask, _run_dir, _symlinked_dir, _symlinked_file,
                                    _dropin_named_like_the_main_file, _writable_cache, _cache_not_roots,
                                    _writable_cache_dir, _garbled, _cache_symlink])
def test_any_difference_and_the_units_are_built(installed: Path, tmp_path: Path, change) -> None:
    assert replay(installed, tmp_path / "before") is not None
    change(installed)
    assert replay(installed, tmp_path / "after") is None
    assert not (tmp_path / "after").exists() or not list((tmp_path / "after").iterdir())


def test_an_empty_run_directory_reads_as_none(installed: Path, tmp_path: Path) -> None:
    """At boot /run is a fresh tmpfs, and the activation makes /run/freshroot (its state) before a
    later daemon-reload runs the generator again: no declaration there is the same as none."""
    (installed / "run" / "freshroot").mkdir(parents=True)
    (installed / "run" / "freshroot" / "lock").write_text("")
    assert replay(installed, tmp_path / "cached") is not None


@pytest.mark.parametrize(("python", "version"), [("/usr/bin/python3.99", __version__), (PYTHON, "0.0.0-other")])
def test_another_interpreter_or_freshroot_and_the_units_are_built(installed: Path, tmp_path: Path, python: str,
                                                                     version: str) -> None:
    assert replay(installed, tmp_path / "cached", python=python, version=version) is None


def test_extra_files_tree_gets_no_cache(tmp_path: Path) -> None:
    """Its declaration is laid over another root later: nothing to vouch for."""
    root = tmp_path / "mnt"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    (tmp_path / "decl.toml").write_text(RICH)
    result = freshroot("install", "--extra-files", str(tmp_path / "extra"), "--root", str(root),
                       "--config", str(tmp_path / "decl.toml"))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "extra" / CACHE).exists()


PROBE = """
import sys
from freshroot.systemd.generator import main
code = main()
with open({out!r}, "w") as f:
    f.write(repr(sorted(sys.modules)))
sys.exit(code)
"""


@pytest.mark.skipif(not os.access(PYTHON, os.X_OK), reason=f"needs {PYTHON}, the interpreter install renders with")
def test_generator_replays_without_loading_the_parser(installed: Path, tmp_path: Path) -> None:
    """The generator as systemd runs it: a hit loads neither the TOML parser nor freshroot.fs;
    after an edit it builds the units (and the same ones render writes)."""
    dirs = [tmp_path / "gen" / n for n in ("normal", "early", "late")]
    for d in dirs:
        d.mkdir(parents=True)
    out = tmp_path / "modules"
    run_env = env(SYSTEMD_IN_INITRD="0", FRESHROOT_GENERATOR_ROOT=str(installed))
    result = subprocess.run([PYTHON, "-c", PROBE.format(out=str(out)), *map(str, dirs)], env=run_env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    loaded = set(ast.literal_eval(out.read_text()))
    assert not {"tomllib", "dataclasses", "freshroot.config.load", "freshroot.fs.ops"} & loaded
    assert tree(dirs[0]) == built(installed, tmp_path / "built")

    _edit(installed)
    shutil.rmtree(tmp_path / "gen")
    for d in dirs:
        d.mkdir(parents=True)
    result = subprocess.run([PYTHON, "-c", PROBE.format(out=str(out)), *map(str, dirs)], env=run_env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "freshroot.config.load" in set(ast.literal_eval(out.read_text()))
    assert tree(dirs[0]) == built(installed, tmp_path / "built2")

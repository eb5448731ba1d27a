"""freshroot.classcache: dataclasses' compiled methods kept in a file root alone can write,
used only when it is for this interpreter; and the boot's own way into `apply --boot`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from freshroot import classcache
from tests.systemd.helpers import env

REPO = Path(__file__).resolve().parents[1]
CACHE = classcache.CACHE.lstrip("/")


def _write_cache(root: Path) -> Path:
    """The file as `python3 -I -m freshroot.classcache --root ROOT` writes it."""
    proc = subprocess.run([sys.executable, "-m", "freshroot.classcache", "--root", str(root)], env=env(),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "compiled dataclass methods" in proc.stdout
    return root / CACHE


def _probe(root: Path) -> tuple[int, int]:
    """(texts the file gave, texts compiled anyway) for a process importing the boot's modules."""
    code = ("import os, sys\n"
            "from freshroot import classcache\n"
            f"fd = os.open({str(root)!r}, os.O_PATH)\n"
            "n = classcache.enable(root_fd=fd)\n"
            "import freshroot.systemd.activate, freshroot.compose, freshroot.plan.executor, freshroot.persist.actions\n"
            "print(n, classcache._state['missed'])\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True, check=True)
    given, missed = proc.stdout.split()
    return int(given), int(missed)


def test_the_same_text_gives_the_same_code(tmp_path: Path) -> None:
    """Every kept method is exactly what compiling its text gives, as dataclasses compiles it
    (without the caller's __future__ flags)."""
    path = _write_cache(tmp_path)
    data = path.read_bytes()
    assert classcache.load(data) > 100
    import marshal

    codes = marshal.loads(data.partition(b"\n")[2])  # noqa: S302 (the file this test just wrote)
    assert all(compile(text, "<string>", "exec", dont_inherit=True) == code for text, code in codes.items())
    assert any("__init__" in text for text in codes)


@pytest.mark.root
def test_a_trusted_cache_serves_every_class_of_the_boot(tmp_path: Path) -> None:
    _write_cache(tmp_path)
    given, missed = _probe(tmp_path)
    assert given > 100
    assert missed == 0  # not one method compiled again


@pytest.mark.root
@pytest.mark.parametrize("spoil", ["group-writable", "not-root", "dir-not-root", "symlinked-dir", "fifo",
                                   "foreign", "garbled"])
def test_a_cache_root_alone_could_not_have_written_is_not_used(tmp_path: Path, spoil: str) -> None:
    path = _write_cache(tmp_path)
    if spoil == "group-writable":
        path.chmod(0o664)
    elif spoil == "not-root":
        os.chown(path, 65534, 65534)
    elif spoil == "dir-not-root":
        os.chown(path.parent, 65534, 65534)
    elif spoil == "symlinked-dir":
        real = tmp_path / "elsewhere"
        path.parent.rename(real)
        path.parent.symlink_to(real)
    elif spoil == "fifo":
        path.unlink()
        os.mkfifo(path)  # never blocks: opened non-blocking, and not a regular file
    elif spoil == "foreign":
        path.write_bytes(path.read_bytes().replace(sys.implementation.cache_tag.encode(), b"cpython-399", 1))
    elif spoil == "garbled":
        data = path.read_bytes()
        path.write_bytes(data[: data.index(b"\n") + 40])
    given, missed = _probe(tmp_path)
    assert given == 0
    assert missed > 100  # compiled as without a cache: slower, the same classes


def test_without_a_file_nothing_changes(tmp_path: Path) -> None:
    given, missed = _probe(tmp_path)
    assert given == 0
    assert missed > 100


def test_help_stays_lean() -> None:
    """`python3 -m freshroot --help` loads neither the cache nor dataclasses."""
    code = ("import runpy, sys\nsys.argv = ['freshroot', '--help']\n"
            "try:\n    runpy.run_module('freshroot', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m in ('dataclasses', 'freshroot.classcache')),"
            " file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True, check=True)
    assert proc.stderr.strip().splitlines()[-1] == "[]"


def _root(base: Path) -> Path:
    root = base / "root"
    for d in ("etc/freshroot", "persist", "run", "var"):
        (root / d).mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    (root / "etc" / "freshroot" / "freshroot.toml").write_text(
        '[users.app]\nsystem = true\n\n[etc."app.conf"]\ntext = "a = 1\\n"\n\n'
        '[activation.hello]\ntext = "echo hello from $FRESHROOT_ACTION"\n')
    return root


@pytest.mark.root
def test_the_boot_way_and_the_parser_way_do_the_same(tmp_path: Path) -> None:
    """`apply --boot --root R` (no parser: freshroot/__main__.py) and `apply --root R --boot`
    (through the parser) activate alike, and say the same."""
    outputs = []
    for name, argv in (("fast", ["apply", "--boot", "--root"]), ("parsed", ["apply", "--root", "--boot"])):
        root = _root(tmp_path / name)
        args = [*argv[:-1], str(root), argv[-1]] if name == "parsed" else [*argv, str(root)]
        proc = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-m", "freshroot",
                               *args], env=env(), capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "app:x:" in (root / "etc" / "passwd").read_text()
        assert (root / "etc" / "app.conf").read_text() == "a = 1\n"
        outputs.append([line for line in proc.stdout.splitlines() if "activation done" not in line])
    assert outputs[0] == outputs[1]
    assert any("hello from activate" in line for line in outputs[0])


def test_the_boot_way_reports_a_bad_root_as_the_parser_does(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    results = [subprocess.run([sys.executable, "-m", "freshroot", *argv], env=env(), capture_output=True,
                              text=True, check=False)
               for argv in (["apply", "--boot", "--root", missing], ["apply", "--root", missing, "--boot"])]
    assert [r.returncode for r in results] == [73, 73]
    assert results[0].stderr == results[1].stderr
    assert "Traceback" not in results[0].stderr

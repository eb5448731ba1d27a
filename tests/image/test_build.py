"""Building images: reproducible bytes, the unit-name refusal, inspect, the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

import freshroot.run
from freshroot.cli import main
from freshroot.errors import UsageError
from freshroot.image.build import build_image, erofs_argv, image_uuid, source_date_epoch, squashfs_argv
from freshroot.image.declaration import load_table
from freshroot.image.inspect import inspect_image
from freshroot.image.model import ImageFormat, PortableImage, parse_portable
from tests.image.conftest import declaration


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def load(config: Path, fmt: ImageFormat = ImageFormat.SQUASHFS) -> PortableImage:
    return parse_portable(load_table([str(config)]))["demo"].with_format(fmt)


@pytest.mark.parametrize("fmt", [ImageFormat.SQUASHFS, ImageFormat.EROFS])
def test_two_builds_are_byte_identical(tmp_path, demo_config, fmt):
    image = load(demo_config, fmt)
    first = build_image(image, str(tmp_path / "a"), epoch=0)
    # Inputs' own timestamps and the staging order must not matter: touch the unit in between.
    os.utime(tmp_path / "demo.service", (1_000_000, 1_000_000))
    second = build_image(image, str(tmp_path / "b"), epoch=0)
    assert os.path.basename(first) == "demo_1.0.raw"
    assert sha256(first) == sha256(second)
    # ... and the epoch really is what the timestamps come from.
    third = build_image(image, str(tmp_path / "c"), epoch=1_700_000_000)
    assert sha256(third) != sha256(first)
    # no staging directory is left behind
    assert os.listdir(tmp_path / "a") == ["demo_1.0.raw"]


@pytest.mark.parametrize("fmt", [ImageFormat.SQUASHFS, ImageFormat.EROFS])
def test_inspect_shows_units_os_release_and_closure(tmp_path, demo_config, fmt):
    path = build_image(load(demo_config, fmt), str(tmp_path / "out"), epoch=0)
    info = inspect_image(path)
    assert info.format is fmt
    assert info.units == ("demo.service",)
    assert info.portable
    assert info.os_release["PORTABLE_PREFIXES"] == "demo"
    assert info.os_release["PORTABLE_PRETTY_NAME"] == "Demo service"
    paths = {"/" + e.path: e for e in info.entries}
    for scaffold in ("/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/var/lib", "/var/cache", "/var/log"):
        assert paths[scaffold].kind == "directory"
    for empty in ("/etc/resolv.conf", "/etc/machine-id"):
        assert paths[empty].kind == "file"
        assert paths[empty].size == 0
    assert paths["/usr/bin/true"].kind == "file"
    assert paths["/usr/bin/true"].mode == 0o755
    assert paths["/lib64"].kind == "symlink"  # the path the interpreter is reached by is reproduced
    assert any(p.endswith("/libc.so.6") for p in paths)
    if fmt is ImageFormat.SQUASHFS:
        assert {(e.uid, e.gid) for e in info.entries} == {(0, 0)}


def test_nonconforming_unit_refused_before_mksquashfs(tmp_path, monkeypatch, capsys):
    config = declaration(tmp_path, units=("demo.service", "demo2.service"))
    calls = []

    def record(argv, **kwargs):
        calls.append(list(argv))
        raise AssertionError("no command may run")

    monkeypatch.setattr(freshroot.run, "run", record)
    out = tmp_path / "out"
    code = main(["image", "build", "demo", "--config", str(config), "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 65
    assert calls == []  # mksquashfs (or anything else) never ran
    assert not out.exists()  # nothing was staged either
    assert f"{config}:4:" in err
    assert "demo2.service" in err


def test_cli_build_and_inspect_json(tmp_path, demo_config, capsys):
    out = tmp_path / "out"
    assert main(["image", "build", "demo", "--config", str(demo_config), "-o", str(out), "--format", "erofs",
                 "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["format"] == "erofs"
    assert built["path"] == str(out / "demo_1.0.raw")
    assert main(["image", "inspect", built["path"], "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["portable"] is True
    assert doc["units"] == [{"name": "demo.service", "attachable": True}]
    assert "/usr/bin/true" in {c["path"] for c in doc["contents"]}
    assert main(["image", "inspect", built["path"]]) == 0
    text = capsys.readouterr().out
    assert "Units: demo.service" in text


def test_cli_unknown_image(tmp_path, demo_config, capsys):
    assert main(["image", "build", "nope", "--config", str(demo_config), "-o", str(tmp_path)]) == 65
    assert "images declared: demo" in capsys.readouterr().err


def test_inspect_rejects_other_files(tmp_path, capsys):
    junk = tmp_path / "junk.raw"
    junk.write_bytes(b"\0" * 4096)
    assert main(["image", "inspect", str(junk)]) == 1
    assert "neither a squashfs nor an erofs" in capsys.readouterr().err


def test_symlinks_and_missing_contents(tmp_path, capsys):
    config = declaration(tmp_path, extra='symlinks = [{ object = "/usr/bin/true", symlink = "/bin/demo" }]\n')
    path = build_image(load(config), str(tmp_path / "out"), epoch=0)
    entries = {"/" + e.path: e for e in inspect_image(path).entries}
    assert entries["/bin/demo"].target == "/usr/bin/true"
    bad = declaration(tmp_path, contents=("/nonexistent/thing",))
    assert main(["image", "build", "demo", "--config", str(bad), "-o", str(tmp_path / "o2")]) == 73
    err = capsys.readouterr().err
    assert f"{bad}:5:" in err
    assert "/nonexistent/thing" in err


def test_builder_flags_are_nixpkgs_defaults_and_pinned(demo_config):
    image = load(demo_config)
    argv = squashfs_argv(image, "/tree", "/out.raw", 42)
    text = " ".join(argv)
    assert "-comp xz -Xdict-size 100%" in text
    assert "-b 1048576" in text
    assert "-all-root" in argv
    assert "-noappend" in argv
    assert "-mkfs-time 42 -all-time 42" in text
    erofs = erofs_argv(image.with_format(ImageFormat.EROFS), "/tree", "/out.raw", 42)
    assert "-T42" in erofs
    assert "--all-root" in erofs
    assert f"-U{image_uuid(image)}" in erofs
    assert image_uuid(image) == image_uuid(load(demo_config))  # stable, not random


def test_source_date_epoch():
    assert source_date_epoch({}) == 0
    assert source_date_epoch({"SOURCE_DATE_EPOCH": "1700000000"}) == 1_700_000_000
    with pytest.raises(UsageError):
        source_date_epoch({"SOURCE_DATE_EPOCH": "yesterday"})


def test_content_trees(tmp_path):
    """A directory is copied whole; ELF files in it bring their libraries, links outside bring their file."""
    app = tmp_path / "app"
    (app / "bin").mkdir(parents=True)
    (app / "share").mkdir()
    shutil.copy("/usr/bin/busctl", app / "bin" / "tool")
    (app / "share" / "data.txt").write_text("hello\n")
    os.symlink("/usr/bin/true", app / "bin" / "true")
    os.symlink("../share/data.txt", app / "bin" / "data")
    os.mkfifo(app / "share" / "fifo")
    config = declaration(tmp_path, contents=(str(app),), extra='compression = "lz4"\n')
    path = build_image(load(config), str(tmp_path / "out"), epoch=0)
    entries = {"/" + e.path: e for e in inspect_image(path).entries}
    root = str(app)
    assert entries[f"{root}/share/data.txt"].size == 6
    assert entries[f"{root}/bin/data"].target == "../share/data.txt"
    assert entries[f"{root}/bin/true"].target == "/usr/bin/true"
    assert entries["/usr/bin/true"].kind == "file"  # brought along by the link
    assert f"{root}/share/fifo" not in entries
    # busctl's private library comes from its DT_RUNPATH directory
    assert any(p.startswith("/usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared") for p in entries)

"""What the dracut module puts in the initrd for the generator of `early = true` paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from freshroot.classcache import CACHE
from freshroot.root import initrd_files

EARLY = '[persist."/persist"]\ndirectories = [{ path = "/var/log", early = true }]\n'


def _root(tmp_path: Path, declaration: str) -> Path:
    root = tmp_path / "root"
    (root / "etc" / "freshroot").mkdir(parents=True)
    (root / "etc" / "freshroot" / "freshroot.toml").write_text(declaration)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    return root


@pytest.fixture(autouse=True)
def _not_in_an_initrd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYSTEMD_IN_INITRD", raising=False)  # files() sets it for its generator run


def test_early_paths_bring_the_generator_its_modules_the_declaration_and_the_class_cache(tmp_path: Path) -> None:
    root = _root(tmp_path, EARLY)
    cache = root / CACHE.lstrip("/")
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"x")
    listed = initrd_files.files(str(root))
    assert str(root / "etc" / "freshroot" / "freshroot.toml") in listed
    assert str(cache) in listed
    assert any(p.endswith("/freshroot/systemd/generator.py") for p in listed)


def test_without_a_class_cache_the_rest_is_listed(tmp_path: Path) -> None:
    listed = initrd_files.files(str(_root(tmp_path, EARLY)))
    assert not any(p.endswith(CACHE) for p in listed)
    assert any(p.endswith("/freshroot/systemd/generator.py") for p in listed)


def test_no_early_path_no_files(tmp_path: Path) -> None:
    assert initrd_files.files(str(_root(tmp_path, '[persist."/persist"]\ndirectories = ["/var/log"]\n'))) == []

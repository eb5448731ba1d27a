"""Declarations for image tests: small real contents from this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

UNIT = "[Unit]\nDescription=demo\n\n[Service]\nExecStart=/usr/bin/true\n"


def declaration(tmp_path: Path, *, units: tuple[str, ...] = ("demo.service",),
                contents: tuple[str, ...] = ("/usr/bin/true",),
                extra: str = "", name: str = "demo") -> Path:
    for unit in units:
        (tmp_path / unit).write_text(UNIT)
    text = (f'[portable.{name}]\nversion = "1.0"\ndescription = "Demo service"\n'
            f"units = {list(units)!r}\ncontents = {list(contents)!r}\n".replace("'", '"') + extra)
    path = tmp_path / "freshroot.toml"
    path.write_text(text)
    return path


@pytest.fixture
def demo_config(tmp_path: Path) -> Path:
    return declaration(tmp_path)

"""Parsing [portable.NAME]: values, defaults, and errors that name file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from freshroot.errors import ConfigError
from freshroot.image.declaration import load_table
from freshroot.image.model import ImageFormat, PortableImage, parse_portable


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "freshroot.toml"
    path.write_text(text)
    (tmp_path / "demo.service").write_text("[Service]\nExecStart=/bin/true\n")
    return path


def parse(tmp_path: Path, text: str) -> dict[str, PortableImage]:
    return parse_portable(load_table([str(write(tmp_path, text))]))


def test_full_declaration(tmp_path):
    images = parse(tmp_path, """
[portable.demo]
version = "1.2"
description = "A demo"
homepage = "https://example.org"
units = ["demo.service"]
contents = ["/usr/bin/true"]
symlinks = [{ object = "/usr/bin/true", symlink = "/bin/demo" }]
compression = "zstd"
block-size = "128K"

[portable.demo.os-release]
PORTABLE_PREFIXES = ["demo", "web"]
ID = "debian"
""")
    image = images["demo"]
    assert image.version == "1.2"
    assert image.units[0].source == str(tmp_path / "demo.service")
    assert image.units[0].location.line == 6
    assert image.contents[0].path == "/usr/bin/true"
    assert image.symlinks[0].symlink == "/bin/demo"
    assert image.prefixes == ("demo", "web")
    assert image.os_release == (("ID", "debian"),)
    assert image.block_size == 128 * 1024
    assert image.compression == "zstd"
    assert image.file_name == "demo_1.2.raw"


def test_defaults_follow_nixpkgs(tmp_path):
    image = parse(tmp_path, '[portable.demo]\nversion = "1"\nunits = ["demo.service"]\n')["demo"]
    assert image.format is ImageFormat.SQUASHFS
    assert image.compression == "xz"
    assert image.block_size == 1 << 20
    assert image.prefixes == ("demo",)
    erofs = image.with_format(ImageFormat.EROFS)
    assert erofs.compression == "lz4hc"


@pytest.mark.parametrize(("body", "line", "words"), [
    ('version = "1"\nunits = ["demo.service", "demo2.service"]\n', 3, "demo2.service"),
    ('version = "1"\nunits = [\n  "demo.service",\n  "demo.mount",\n]\n', 5, "demo.mount"),
    ('version = "1"\nunits = ["demo.service"]\nfrobnicate = 1\n', 4, "unknown key"),
    ('version = "1"\nunits = ["demo.service"]\nformat = "ext4"\n', 4, "squashfs or erofs"),
    ('version = "1"\nunits = ["demo.service"]\nformat = "erofs"\ncompression = "xz"\n', 5, "not available"),
    ('version = "1"\nunits = ["demo.service"]\nblock-size = "3M"\n', 4, "power of two"),
    ('version = "1"\nunits = ["demo.service"]\ncontents = ["relative/path"]\n', 4, "absolute"),
    ('units = ["demo.service"]\n', 1, "version is required"),
    ('version = "1"\nunits = []\n', 3, "at least one unit"),
])
def test_errors_name_file_and_line(tmp_path, body, line, words):
    with pytest.raises(ConfigError) as info:
        parse(tmp_path, "[portable.demo]\n" + body)
    message = str(info.value)
    assert f"freshroot.toml:{line}:" in message
    assert words in message


def test_prefixes_widen_the_rule(tmp_path):
    text = ('[portable.demo]\nversion = "1"\nunits = ["web-x.service"]\n'
            '[portable.demo.os-release]\nPORTABLE_PREFIXES = "web"\n')
    (tmp_path / "web-x.service").write_text("")
    assert parse(tmp_path, text)["demo"].prefixes == ("web",)


def test_image_name_without_underscore(tmp_path):
    with pytest.raises(ConfigError, match="no '_'"):
        parse(tmp_path, '[portable.my_demo]\nversion = "1"\nunits = ["my_demo.service"]\n')



def test_os_release_round_trip(tmp_path):
    from freshroot.image.stage import os_release_text, parse_os_release

    text = ('[portable.demo]\nversion = "1"\ndescription = \'He said "hi" for $5\'\nunits = ["demo.service"]\n'
            '[portable.demo.os-release]\nPORTABLE_PREFIXES = ["demo", "web"]\nID = "custom"\n')
    (tmp_path / "web.service").write_text("")
    image = parse(tmp_path, text)["demo"]
    rendered = os_release_text(image, {"ID": "debian", "VERSION_ID": "12"})
    fields = parse_os_release(rendered)
    assert fields["PORTABLE_PRETTY_NAME"] == 'He said "hi" for $5'
    assert fields["ID"] == "custom"  # the declaration wins over the host
    assert fields["VERSION_ID"] == "12"
    assert fields["PORTABLE_PREFIXES"] == "demo web"
    assert fields["PORTABLE_ID"] == "demo"
    assert "\\$5" in rendered  # shell-style escapes, as os-release(5) asks

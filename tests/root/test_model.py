"""[root] parsed and checked: every bad value names its file and line; the settings file the
initrd reads; the storage check against /etc/fstab (the same rule the initrd applies)."""

from __future__ import annotations

from pathlib import Path

import pytest

from freshroot.compose import check_sections
from freshroot.config.parse import parse_text
from freshroot.errors import ConfigError
from freshroot.root.model import RootWipe, conf_text, fstab_escape, fstab_unescape, parse_duration, parse_root
from freshroot.root.setup import fstab_mount_points, storage_problems


def root_of(text: str) -> RootWipe:
    return parse_root(parse_text(text, "freshroot.toml").table())


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as e:
        root_of(text)
    return str(e.value)


def test_no_section_means_no_wipe() -> None:
    assert root_of("").wipes is False
    assert root_of('[root]\nwipe = "none"\n').wipes is False


def test_btrfs_defaults() -> None:
    r = root_of('[root]\nwipe = "btrfs"\n')
    assert (r.subvolume, r.blank, r.old_roots, r.keep_count, r.keep_seconds) == ("root", "blank", "old_roots", None,
                                                                                 14 * 86400)


@pytest.mark.parametrize(("keep", "count", "seconds"), [
    ("3", 3, None), ('"14d"', None, 14 * 86400), ('"1w 2d"', None, 9 * 86400), ('"36h"', None, 36 * 3600),
])
def test_keep_is_a_count_or_an_age(keep: str, count: int | None, seconds: int | None) -> None:
    r = root_of(f'[root]\nwipe = "btrfs"\nkeep = {keep}\n')
    assert (r.keep_count, r.keep_seconds) == (count, seconds)


@pytest.mark.parametrize(("body", "message"), [
    ('wipe = "zfs"', 'freshroot.toml:2: root.wipe must be one of none, btrfs, overlay, tmpfs, not \'zfs\''),
    ('wipe = "btrfs"\nkeep = 0', "freshroot.toml:3: root.keep must keep at least 1 old root"),
    ('wipe = "btrfs"\nkeep = "14 days"', "freshroot.toml:3: root.keep must be a count of old roots"),
    ('wipe = "btrfs"\nkeep = true', "freshroot.toml:3: root.keep must be a count"),
    ('wipe = "btrfs"\nkeep = "0d"', "freshroot.toml:3: root.keep must be a count"),
    ('wipe = "btrfs"\nsubvolume = "../x"', "freshroot.toml:3: root.subvolume must be a subvolume path"),
    ('wipe = "btrfs"\nblank = "a b"', "freshroot.toml:3: root.blank must be a subvolume path"),
    ('wipe = "btrfs"\nold-roots = "root/old"', "freshroot.toml:3: root.old-roots ('root/old') must not be"),
    ('wipe = "btrfs"\nblank = "root"', "freshroot.toml:3: root.blank ('root') must not be root.subvolume"),
    ('wipe = "btrfs"\nkeeep = 3', "freshroot.toml:3: unknown key root.keeep"),
])
def test_bad_values_name_file_and_line(body: str, message: str) -> None:
    assert message in error_of(f"[root]\n{body}\n")


@pytest.mark.parametrize(("body", "message"), [
    ('wipe = "none"\nkeep = 3', ('freshroot.toml:3: root.keep means something only with wipe = "btrfs"; here nothing '
                                'wipes the root')),
    ('keep = "7d"', "freshroot.toml:2: root.keep means something only"),  # wipe = "none" by default
    ('wipe = "overlay"\nkeep = 1', ('freshroot.toml:3: root.keep means something only with wipe = "btrfs"; here '
                                   'wipe = "overlay" keeps no old root')),
    ('wipe = "tmpfs"\nsubvolume = "@"', 'freshroot.toml:3: root.subvolume means something only'),
    ('wipe = "tmpfs"\nblank = "b"', 'freshroot.toml:3: root.blank means something only'),
    ('old-roots = "old"\nwipe = "overlay"', 'freshroot.toml:2: root.old-roots means something only'),
])
def test_btrfs_only_keys_with_another_wipe_are_refused(body: str, message: str) -> None:
    text = error_of(f"[root]\n{body}\n")
    assert message in text
    assert 'hint: drop ' in text
    assert 'or set wipe = "btrfs"' in text


def test_config_check_runs_the_parser() -> None:
    table = parse_text('[root]\nwipe = "btrfs"\n', "f.toml").table()
    assert check_sections(table) == {"root": "valid"}
    with pytest.raises(ConfigError, match=r"unknown key root\.x"):
        check_sections(parse_text('[root]\nx = 1\n', "f.toml").table())


def test_parse_duration() -> None:
    assert parse_duration("2d") == 172800
    assert parse_duration("1d12h") == 129600
    assert parse_duration("") is None
    assert parse_duration("d") is None
    assert parse_duration("3x") is None
    assert parse_duration("3") is None


def test_settings_file_the_initrd_reads() -> None:
    r = root_of('[root]\nwipe = "btrfs"\nkeep = 2\n')
    assert conf_text(r, ["/persist", "/my data"]).splitlines()[2:] == [
        "wipe=btrfs", "subvolume=root", "blank=blank", "old-roots=old_roots", "keep-count=2", "keep-seconds=",
        "storage=/persist", "storage=/my\\040data",
    ]


def test_fstab_escapes_round_trip() -> None:
    assert fstab_unescape(fstab_escape("/a b\\c\td")) == "/a b\\c\td"


FSTAB = """\
# comment
/dev/vda        /          btrfs rw,subvol=root 0 0
LABEL=persist   /persist   ext4  defaults 0 2
/dev/vdc        /my\\040data ext4 defaults 0 2
/data           /srv/bound none  bind 0 0
/dev/vdd        none       swap  sw 0 0
"""


def test_fstab_mount_points() -> None:
    assert fstab_mount_points(FSTAB) == ["/persist", "/my data"]


def test_storage_must_be_a_file_system_of_its_own() -> None:
    assert storage_problems(["/persist", "/persist/sub", "/my data", "/srv/bound", "/persistent", "/"], FSTAB) == [
        "/srv/bound", "/persistent", "/"]


def test_config_check_refuses_keep_without_the_btrfs_wipe(tmp_path: Path) -> None:
    from tests.systemd.helpers import freshroot

    config = tmp_path / "freshroot.toml"
    config.write_text('[persist."/persist"]\ndirectories = ["/var/lib/a"]\n\n[root]\nwipe = "none"\nkeep = 3\n')
    result = freshroot("config", "check", "--config", str(config))
    assert result.returncode == 65, result.stderr
    assert f"{config}:6: root.keep means something only with wipe = \"btrfs\"" in result.stderr
    assert "Traceback" not in result.stderr

"""The merge API on its own, as presets use it."""

from __future__ import annotations

import copy

import pytest

from freshroot.config import positions
from freshroot.config.merge import Merger, merge_into
from freshroot.config.parse import parse_text
from freshroot.errors import Location


def test_preset_merged_below_a_table_is_not_mutated_and_keeps_its_lines() -> None:
    preset = parse_text('directories = ["/etc/ssh"]\nfiles = ["/etc/ssh/ssh_host_ed25519_key"]\n', "preset:ssh")
    before = copy.deepcopy(preset.data)
    user = parse_text('[persist."/persist"]\ndirectories = ["/var/log"]\n', "/etc/freshroot/freshroot.toml")
    merger = Merger()
    merger.add(user.data, user.positions, user.file)
    for _ in range(2):  # a cached preset merged twice stays as it was
        merger.add(preset.data, preset.positions, preset.file, at=("persist", "/persist"))
    assert preset.data == before
    table = merger.table()
    storage = table.get_table("persist").get_table("/persist")
    assert storage.raw("directories") == ["/var/log", "/etc/ssh", "/etc/ssh"]
    assert storage.location("directories", 0) == Location("/etc/freshroot/freshroot.toml", 2)
    assert storage.location("directories", 1) == Location("preset:ssh", 1)
    assert storage.location("files", 1) == Location("preset:ssh", 2)
    assert table.file == "/etc/freshroot/freshroot.toml"


def test_a_value_replaced_by_another_type_forgets_old_positions() -> None:
    a = parse_text("[x]\ny = [1, 2]\n", "a")
    b = parse_text('x = "flat"\n', "b")
    data: dict[str, object] = {}
    positions: dict[tuple[str | int, ...], Location] = {}
    merge_into(data, positions, a.data, a.positions)
    merge_into(data, positions, b.data, b.positions)
    assert data == {"x": "flat"}
    assert positions == {("x",): Location("b", 1)}


def test_tables_merge_key_by_key() -> None:
    a = parse_text("[t]\nkeep = 1\nover = 1\n", "a")
    b = parse_text("[t]\nover = 2\nnew = 3\n", "b")
    merger = Merger()
    merger.add(a.data, a.positions, "a")
    merger.add(b.data, b.positions, "b")
    t = merger.table().get_table("t")
    assert dict(t.data) == {"keep": 1, "over": 2, "new": 3}
    assert [t.location(k) for k in ("keep", "over", "new")] == [Location("a", 2), Location("b", 2), Location("b", 3)]


def test_positions_are_scanned_only_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = positions.scan

    def counting(text: str) -> dict[tuple[str | int, ...], int]:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(positions, "scan", counting)
    merger = Merger()
    for name, text in (("a", "[t]\nx = [1]\n"), ("b", "[t]\nx = [2]\ny = 3\n")):
        doc = parse_text(text, name)
        merger.add(doc.data, doc.positions, name)
    table = merger.table()
    assert table.get_table("t").get_list("x") == [1, 2]  # reading values scans nothing
    assert calls == []
    assert table.get_table("t").location("x", 1) == Location("b", 2)
    assert len(calls) == 2
    table.get_table("t").location("y")
    assert len(calls) == 2  # once per file

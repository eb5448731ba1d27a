"""``freshroot audit --blank`` on a real btrfs root: only what the blank snapshot does not
have as it is (new, changed in content, owner or mode) is counted; files untouched since the
blank, declared paths and files deleted since are not."""

from __future__ import annotations

import json
from pathlib import Path

from tests.root.test_commands import in_btrfs, needs_btrfs

CHANGES = """
mkdir -p m/root/etc m/root/var/lib/app m/root/var/lib/kept m/root/opt/tool
for f in same changed modeonly ownonly gone replaced; do echo "$f" > "m/root/etc/$f"; done
echo tool > m/root/opt/tool/bin
echo kept > m/root/var/lib/kept/data
btrfs -q subvolume snapshot -r m/root m/blank
sleep 0.05
echo more >> m/root/etc/changed
chmod 600 m/root/etc/modeonly
chown 1000 m/root/etc/ownonly
rm m/root/etc/gone
echo new > m/root/etc/replaced.tmp && mv m/root/etc/replaced.tmp m/root/etc/replaced
echo state > m/root/var/lib/app/db
echo more > m/root/var/lib/kept/more
"""


def _files(document: dict[str, object]) -> dict[str, int]:
    groups = document["unpersisted"]
    assert isinstance(groups, list)
    return {g["path"]: g["files"] for g in groups}


@needs_btrfs
def test_audit_against_the_blank_counts_only_what_the_wipe_removes(tmp_path: Path) -> None:
    out = in_btrfs(tmp_path, CHANGES + "$FR audit --root m/root --blank --json --depth 3\necho ===\n"
                   "$FR audit --root m/root --json --depth 3\necho ===\n$FR audit --root m/root --blank\n")
    blank_json, plain_json, text = out.split("===\n")
    blank = json.loads(blank_json)
    plain = json.loads(plain_json)
    # etc: changed, modeonly, ownonly, replaced (same is untouched, gone is gone); the app's db.
    assert _files(blank) == {"/etc": 4, "/var/lib/app": 1}
    assert blank["compared_with"] == "the blank snapshot blank"
    assert blank["complete"] is True
    # Without --blank every undeclared file counts, the untouched ones too.
    assert _files(plain) == {"/etc": 6, "/etc/freshroot": 1, "/opt/tool": 1, "/var/lib/app": 1}  # fstab too
    assert plain["compared_with"] is None
    head, _, text = text.partition("\n")  # the root named once, first (docs/activation.md)
    assert head.startswith("audit of ")
    assert head.endswith("/m/root")
    assert text.startswith("not persisted and not as in the blank snapshot blank (what the next wipe removes): "
                           "5 files\n")


@needs_btrfs
def test_audit_blank_refuses_without_a_blank_or_a_btrfs_wipe(tmp_path: Path) -> None:
    out = in_btrfs(tmp_path, "$FR audit --root m/root --blank 2>&1 || echo rc=$?\n")
    assert "the blank snapshot 'blank' of" in out
    assert "is missing (freshroot install makes it)\n  root: " in out  # the root named once
    assert out.endswith("/m/root\nrc=73\n")
    out = in_btrfs(tmp_path, "$FR audit --root m/root --blank 2>&1 || echo rc=$?\n",
                   declaration='[root]\nwipe = "overlay"\n\n[persist."/persist"]\ndirectories = ["/var/lib/kept"]\n')
    assert 'has no blank snapshot (only wipe = "btrfs")\n  root: ' in out

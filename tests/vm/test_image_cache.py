"""The cache of derived images (tests/vm/image.py, derived_image) on a tiny parent image:
built once, found again, rebuilt when the recipe or an input changes, nothing left by a
failed build, other recipes' images pruned once unused. No boot (not marked vm); the build
loop-mounts the copy, hence root."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.vm.image import BaseImage, derivation_key, derived_image

pytestmark = [pytest.mark.root]

SCRIPT = """
echo "$NOTE" > "$ROOT/note"
cat $INPUTS > "$ROOT/inputs"
echo built >> "$RUNS"
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "cache"
    monkeypatch.setenv("FRESHROOT_VM_CACHE", str(where))
    return where


@pytest.fixture
def parent(tmp_path: Path) -> BaseImage:
    base = BaseImage(tmp_path / "cache-parent" / "base-0123456789abcdef")
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hostname").write_text("parent\n")
    base.directory.mkdir(parents=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(base.root), "16M"], check=True)
    base.kernel.write_bytes(b"kernel")
    base.initrd.write_bytes(b"initrd of the parent")
    return base


def _cat(image: Path, path: str) -> str:
    proc = subprocess.run(["debugfs", "-R", f"cat {path}", str(image)], capture_output=True, text=True, check=True)
    return proc.stdout


def test_built_once_then_found(cache: Path, parent: BaseImage, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    package = tmp_path / "a.deb"
    package.write_text("package a\n")
    env = {"NOTE": "derived", "RUNS": str(runs)}
    image = derived_image(parent, "variant", SCRIPT, inputs=[package], env=env)
    assert image.directory == cache / f"variant-{derivation_key(parent, 'variant', SCRIPT, [package], env)}"
    assert _cat(image.root, "/note") == "derived\n"
    assert _cat(image.root, "/inputs") == "package a\n"
    assert _cat(image.root, "/etc/hostname") == "parent\n"  # a copy of the parent
    assert image.kernel.read_bytes() == b"kernel"  # the script wrote none: the parent's
    assert image.initrd.read_bytes() == b"initrd of the parent"
    assert (image.directory / "last-used").exists()
    assert derived_image(parent, "variant", SCRIPT, inputs=[package], env=env) == image
    assert runs.read_text() == "built\n"  # found, not built again
    assert [p.name for p in cache.iterdir() if p.name.startswith(".build-")] == []


def test_changed_recipe_or_input_builds_anew(cache: Path, parent: BaseImage, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    package = tmp_path / "a.deb"
    package.write_text("version 1\n")
    env = {"NOTE": "x", "RUNS": str(runs)}
    first = derived_image(parent, "variant", SCRIPT, inputs=[package], env=env)
    package.write_text("version 2\n")  # same path, new content
    second = derived_image(parent, "variant", SCRIPT, inputs=[package], env=env)
    assert second != first
    assert _cat(second.root, "/inputs") == "version 2\n"
    third = derived_image(parent, "variant", SCRIPT + "\n# changed\n", inputs=[package], env=env)
    assert third not in (first, second)
    assert runs.read_text() == "built\n" * 3
    assert first.root.exists()  # used today: kept for other checkouts
    # The key follows the parent: another base image is another derived image.
    other = BaseImage(parent.directory.parent / "base-fedcba9876543210")
    assert derivation_key(other, "variant", SCRIPT) != derivation_key(parent, "variant", SCRIPT)


def test_output_files_and_failure(cache: Path, parent: BaseImage) -> None:
    image = derived_image(parent, "own", 'echo "own initrd" > "$OUT/initrd.img"')
    assert image.initrd.read_text() == "own initrd\n"
    assert image.kernel.read_bytes() == b"kernel"
    with pytest.raises(RuntimeError, match="failed"):
        derived_image(parent, "broken", "echo half > \"$ROOT/half\"\nfalse")
    assert sorted(p.name for p in cache.iterdir()) == ["build.lock", image.directory.name]


def test_prune_other_images_unused_for_two_days(cache: Path, parent: BaseImage) -> None:
    cache.mkdir()
    old = cache / "dracut-00000000000000aa"
    recent = cache / "base-00000000000000bb"
    stale_build = cache / ".build-dracut-00000000000000cc-x1"
    unmarked = cache / "other-00000000000000ee"  # not an image of ours: no last-used
    old_base = cache / "base-00000000000000ff"  # a base image from before the marker existed
    for entry in (old, recent, stale_build, cache / "debs", unmarked, old_base):
        entry.mkdir()
    (old / "last-used").touch()
    (recent / "last-used").touch()
    (cache / "accel-00000000000000dd").write_text("tcg\n")
    three_days_ago = time.time() - 3 * 86400
    os.utime(old / "last-used", (three_days_ago, three_days_ago))
    os.utime(stale_build, (three_days_ago, three_days_ago))
    os.utime(cache / "debs", (three_days_ago, three_days_ago))
    os.utime(unmarked, (three_days_ago, three_days_ago))
    os.utime(old_base, (three_days_ago, three_days_ago))
    image = derived_image(parent, "fresh", "true")
    names = sorted(p.name for p in cache.iterdir())
    assert names == sorted(["accel-00000000000000dd", "base-00000000000000bb", "build.lock", "debs",
                            "other-00000000000000ee", image.directory.name])

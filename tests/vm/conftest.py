"""Fixtures of the VM tests: the cached base image, and guests with freshroot installed.

A test gets a guest with ``guest = make_guest(files={...}, script="...")`` and boots it with
``guest.boot(script, disks=[...])`` as often as it likes: every boot starts from the same
root image (snapshot=on), and disks attached without snapshot (the persist disk) keep what
a boot wrote. See docs/testing-vm.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.vm.image import BaseImage, base_image, derive
from tests.vm.install import freshroot_overlay
from tests.vm.machine import Machine

MakeGuest = Callable[..., Machine]


@pytest.fixture(scope="session")
def vm_base() -> BaseImage:
    """The base image, built on first use (a few minutes) and cached across runs."""
    return base_image()


@pytest.fixture
def make_guest(vm_base: BaseImage, tmp_path: Path) -> MakeGuest:
    """A factory of guests: a root image derived from the base with this tree's freshroot
    installed, ``files`` (guest path -> content) written into it, then ``script`` (bash, the
    mounted image in $ROOT; `chroot "$ROOT" ...` runs the guest's programs) run on the host."""
    count = 0

    def make(
        *, files: Mapping[str, str | bytes] | None = None, script: str | None = None, cmdline: str = ""
    ) -> Machine:
        nonlocal count
        count += 1
        work = tmp_path / f"guest-{count}"
        overlay = freshroot_overlay(work / "overlay")
        for name, content in (files or {}).items():
            path = overlay / name.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                path.write_text(content)
            else:
                path.write_bytes(content)
        root = derive(vm_base, work / "root.raw", overlay=overlay, script=script)
        return Machine(vm_base, root, work, cmdline=cmdline)

    return make

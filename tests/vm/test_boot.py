"""The harness itself, end to end: a real Debian boots under qemu with a root that is thrown
away at every boot and a /persist disk that is kept."""

from __future__ import annotations

import pytest

from tests.vm.machine import Disk, make_disk, read_tree

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.root]


def test_root_is_wiped_and_persist_is_kept(make_guest, tmp_path):
    guest = make_guest()
    persist = make_disk(tmp_path / "persist.img", label="persist")
    disks = [Disk(persist, "persist")]

    first = guest.boot(
        """
        set -eu
        findmnt -n -o FSTYPE,SOURCE /persist > persist-mount
        echo "written in boot 1" > /persist/kept.txt
        echo "written in boot 1" > /var/tmp/lost.txt
        test -s /var/tmp/lost.txt
        freshroot --version > freshroot-version
        ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub > host-key
        """,
        disks=disks,
    )
    assert first.script_rc == 0, first.describe()
    assert first.system_state == "running", first.describe()
    assert first.failed_units == [], first.describe()
    assert first.text("persist-mount").split() == ["ext4", "/dev/vdb"]
    assert first.text("freshroot-version").strip()  # the installed entry point runs
    # The persist disk kept the write (read on the host, without mounting it).
    assert (read_tree(persist, "/", tmp_path / "persist-after-1") / "kept.txt").read_text() == "written in boot 1\n"

    second = guest.boot(
        """
        set -eu
        cat /persist/kept.txt > kept
        if test -e /var/tmp/lost.txt; then echo present; else echo absent; fi > var-tmp
        ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub > host-key
        """,
        disks=disks,
    )
    assert second.script_rc == 0, second.describe()
    assert second.text("kept") == "written in boot 1\n"
    assert second.text("var-tmp") == "absent\n"
    assert second.system_state == "running", second.describe()
    assert second.failed_units == [], second.describe()
    # Host keys are generated at boot when missing: a wiped root gets a new one every boot, so
    # a key that stays the same (the persistence test) is persistence's doing, not the image's.
    assert first.text("host-key") != second.text("host-key")
    print(f"boot 1: {first.seconds:.1f} s, boot 2: {second.seconds:.1f} s ({guest.accel})")

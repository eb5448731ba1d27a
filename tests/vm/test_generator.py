"""freshroot's unit writing on a real boot: a generator built from freshroot.systemd
(escape, unit, mounts, output) bind-mounts a storage directory from /persist, and systemd
accepts its units, orders them before local-fs.target, and the state survives a wiped root.

This is the shape of issue 7's generator, without the declaration: the persistence boot test
adds the declaration and `freshroot install` on top of the same harness.
"""

from __future__ import annotations

import pytest

from freshroot.systemd.escape import unit_name_from_path
from tests.vm.machine import Disk, make_disk, read_tree

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.root]

WHERE = "/var/lib/demo dir-1"  # a space and a dash: the unit name has to be escaped right
GENERATOR = f'''#!/usr/bin/python3
import os, sys
from freshroot.fs.ops import open_root
from freshroot.systemd.mounts import BindMount
from freshroot.systemd.output import Dependency, UnitDirectory

fd = open_root(sys.argv[1])
out = UnitDirectory(fd)
mount = BindMount("/persist/demo", {WHERE!r}, options=("x-gvfs-hide",))
out.write(mount.unit())
out.add_dependency("local-fs.target", Dependency.REQUIRES, mount.unit_name)
os.close(fd)
'''
GENERATOR_PATH = "/usr/lib/systemd/system-generators/freshroot-test-generator"


def test_generated_bind_mount_survives_reboots(make_guest, tmp_path):
    guest = make_guest(files={GENERATOR_PATH: GENERATOR}, script=f'chmod 0755 "$ROOT{GENERATOR_PATH}"')
    storage = tmp_path / "storage"
    (storage / "demo").mkdir(parents=True)  # storage prepared before the first boot
    persist = make_disk(tmp_path / "persist.img", label="persist", tree=storage)
    disks = [Disk(persist, "persist")]
    unit = unit_name_from_path(WHERE, ".mount")
    check = f"""
        set -eu
        ls /run/systemd/generator /run/systemd/generator/local-fs.target.requires > generated
        systemctl show -p ActiveState --value '{unit}' > state
        findmnt -n -o OPTIONS '{WHERE}' > options
        systemd-escape --path --suffix=mount '{WHERE}' > systemd-name
    """
    first = guest.boot(check + f"echo 'written in boot 1' > '{WHERE}/state.txt'\n", disks=disks)
    assert first.script_rc == 0, first.describe()
    assert first.failed_units == [], first.describe()
    assert first.text("systemd-name").strip() == unit
    assert unit in first.text("generated").split()
    assert first.text("state").strip() == "active"
    assert "x-gvfs-hide" not in first.text("options")  # x- options are for userspace, not the kernel
    assert (read_tree(persist, "/demo", tmp_path / "after-1") / "state.txt").read_text() == "written in boot 1\n"

    second = guest.boot(check + f"cat '{WHERE}/state.txt' > kept\n", disks=disks)
    assert second.script_rc == 0, second.describe()
    assert second.failed_units == [], second.describe()
    assert second.text("state").strip() == "active"
    assert second.text("kept") == "written in boot 1\n"

"""Library closure resolution: ld.so's search order, $ORIGIN, ld.so.conf."""

from __future__ import annotations

import os
import shutil

from freshroot.fs import ops
from freshroot.image.closure import Resolver, expand_tokens, ld_so_conf_dirs
from freshroot.image.elf import read_elf
from freshroot.run import run


def test_ld_so_conf_includes(tmp_path):
    """Read below a root: the include glob, a relative include and a symlinked directory stay inside it."""
    (tmp_path / "etc" / "conf.d").mkdir(parents=True)
    (tmp_path / "etc" / "conf.d" / "b.conf").write_text("/opt/b # comment\n")
    (tmp_path / "etc" / "conf.d" / "a.conf").write_text("/opt/a\n\n/opt/shared\n")
    (tmp_path / "etc" / "conf.d" / "skip.txt").write_text("/nope\n")
    os.symlink("/etc/conf.d", tmp_path / "etc" / "linked.d")
    (tmp_path / "etc" / "ld.so.conf").write_text(
        "/first\ninclude /etc/linked.d/*.conf\nhwcap 0 nosegneg\n/opt/shared/\ninclude other.conf\n")
    (tmp_path / "etc" / "other.conf").write_text("/last\n")
    fd = ops.open_root(str(tmp_path))
    try:
        assert ld_so_conf_dirs(fd) == ("/first", "/opt/a", "/opt/shared", "/opt/b", "/last")
    finally:
        os.close(fd)


def test_expand_tokens():
    info = read_elf("/usr/bin/busctl")
    assert info is not None
    assert expand_tokens("$ORIGIN/../lib", "/opt/app/bin", info) == "/opt/app/bin/../lib"
    assert expand_tokens("${ORIGIN}/x", "/o", info) == "/o/x"


def test_closure_of_sshd_matches_the_loader():
    """Every library the real loader maps (ld.so --list, run on our own machine) is in our closure."""
    closure = Resolver().closure(["/usr/sbin/sshd"])
    assert not closure.missing
    listed = run(["ldd", "/usr/sbin/sshd"]).stdout
    want = set()
    for line in listed.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if path.startswith("/"):
            want.add(os.path.realpath(path))
    got = {os.path.realpath(p) for p in closure.files}
    assert want <= got
    assert "/lib64/ld-linux-x86-64.so.2" in closure.files


def test_origin_runpath(tmp_path):
    """A copy of busctl whose DT_RUNPATH is patched to $ORIGIN/../lib finds its library there."""
    info = read_elf("/usr/bin/busctl")
    assert info is not None
    assert info.runpath
    old = info.runpath[0].encode()
    new = b"$ORIGIN/../lib"
    assert len(new) <= len(old)
    with open("/usr/bin/busctl", "rb") as f:
        data = f.read()
    assert data.count(old + b"\0") == 1
    data = data.replace(old + b"\0", new + b"\0" * (len(old) - len(new) + 1))
    (tmp_path / "bin").mkdir()
    (tmp_path / "lib").mkdir()
    prog = tmp_path / "bin" / "busctl"
    prog.write_bytes(data)
    private = next(n for n in info.needed if n.startswith("libsystemd-shared"))
    shutil.copy(os.path.join(info.runpath[0], private), tmp_path / "lib" / private)
    patched = read_elf(str(prog))
    assert patched is not None
    assert patched.runpath == ("$ORIGIN/../lib",)
    closure = Resolver().closure([str(prog)])
    assert os.path.normpath(tmp_path / "lib" / private) in closure.files
    assert os.path.join(info.runpath[0], private) not in closure.files
    # without the library next to it, it is reported missing, naming who needs it
    (tmp_path / "lib" / private).unlink()
    missing = Resolver().closure([str(prog)]).missing
    assert [m.needed for m in missing] == [private]

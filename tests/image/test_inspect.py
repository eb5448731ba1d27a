"""Reading unsquashfs listings and resolving paths inside an image."""

from __future__ import annotations

from freshroot.image.inspect import _resolve, image_name, parse_unsquashfs_listing

# unsquashfs prints the root as an empty name after the time, trailing blank included.
LISTING = "drwxr-xr-x 0/0                     104 1970-01-01 00:00 \n" + """\
lrwxrwxrwx 0/0                       7 1970-01-01 00:00 /etc -> usr/etc
drwxr-xr-x 0/0                      66 1970-01-01 00:00 /usr
drwxr-xr-x 0/0                      66 1970-01-01 00:00 /usr/etc
lrwxrwxrwx 0/0                      21 1970-01-01 00:00 /usr/etc/os-release -> ../../../../usr/lib/os-release
drwxr-xr-x 0/0                      66 1970-01-01 00:00 /usr/lib
-rw-r--r-- 0/0                      20 1970-01-01 00:00 /usr/lib/os-release
-rwsr-xr-x 0/0                    1000 1970-01-01 00:00 /usr/bin/su
crw-rw-rw- 0/0                    1,  3 1970-01-01 00:00 /dev/null
lrwxrwxrwx 0/0                      11 1970-01-01 00:00 /escape -> /etc/shadow
drwxrwxrwt 0/0                       3 1970-01-01 00:00 /tmp
"""


def test_listing_fields():
    entries = {e.path: e for e in parse_unsquashfs_listing(LISTING)}
    assert entries[""].kind == "directory"
    assert entries["etc"].target == "usr/etc"
    assert entries["usr/bin/su"].mode == 0o4755
    assert entries["tmp"].mode == 0o1777
    assert entries["dev/null"].kind == "char"
    assert entries["usr/lib/os-release"].size == 20


def test_resolve_stays_inside_the_image():
    entries = {e.path: e for e in parse_unsquashfs_listing(LISTING)}
    # through a symlinked directory, then a link whose '..'s stop at the image root
    assert _resolve(entries, "etc/os-release") == "usr/lib/os-release"
    assert _resolve(entries, "escape") is None  # /etc/shadow is not in the image
    assert _resolve(entries, "usr/lib/os-release/x") is None


def test_image_name_is_portablectls_default_match():
    assert image_name("/var/lib/portables/demo_1.0.raw") == "demo"
    assert image_name("demo.raw") == "demo"

"""The VM tests' base image: built once with debootstrap, cached, and derived per test.

The base image (a bookworm root file system as a bare ext4 image, plus the kernel and initrd
taken out of it) is built by build-image.sh and cached under :func:`cache_dir` in a directory
named for a hash of the recipe (build-image.sh and guest/). A machine that has it reuses it;
a changed recipe or a fresh machine builds it (a few minutes, from the Debian mirror of the
apt sources). Builds are serialised by a lock, so parallel test workers build it once.

Tests do not boot the base image itself but a *derived* image: a sparse copy with a tree of
files laid over it (freshroot's source, a declaration, units) and an optional shell script
run against the mounted image on the host, in a private mount namespace.

A variant of the base that takes long to make and does not depend on freshroot's source
(Debian with dracut instead of initramfs-tools) is a *cached derived image*
(:func:`derived_image`): made once from its parent by a script, cached beside the base under
a key that hashes the parent's key, the script and the content of its input files, built
under the same lock and renamed into place when complete, exactly as the base is.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECIPE = (HERE / "build-image.sh", HERE / "guest")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


@dataclass(frozen=True, slots=True)
class BaseImage:
    """A built base image: the root file system and the kernel and initrd to boot it with."""

    directory: Path

    @property
    def root(self) -> Path:
        return self.directory / "root.raw"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"


def cache_dir() -> Path:
    """Where images are cached: $FRESHROOT_VM_CACHE, else /var/cache/freshroot-test (root), so
    every worktree and CI run on one machine shares one image, else ~/.cache/freshroot-test."""
    if env := os.environ.get("FRESHROOT_VM_CACHE"):
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/cache/freshroot-test")
    return Path.home() / ".cache" / "freshroot-test"


def recipe_key() -> str:
    """A hash of everything that decides the base image's content."""
    digest = hashlib.sha256()
    for top in RECIPE:
        paths = sorted(p for p in top.rglob("*") if p.is_file()) if top.is_dir() else [top]
        for path in paths:
            digest.update(str(path.relative_to(HERE)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def debian_mirror(sources: tuple[Path, ...] = SOURCES) -> str:
    """The Debian mirror the host's apt uses ($FRESHROOT_VM_MIRROR overrides), so a machine
    that can only reach its own mirror builds from it."""
    if env := os.environ.get("FRESHROOT_VM_MIRROR"):
        return env
    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            files.extend(sorted(source.glob("*.list")) + sorted(source.glob("*.sources")))
        elif source.is_file():
            files.append(source)
    for file in files:
        text = file.read_text(errors="replace")
        # one-line format (deb URI suite ...) and deb822 (URIs: ... / Suites: ...)
        for match in re.finditer(r"^\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", text, re.MULTILINE):
            if match.group(2) == "bookworm" and match.group(1).rstrip("/").endswith("/debian"):
                return match.group(1)
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.MULTILINE)
            suites = re.search(r"^Suites:\s*(.*)$", stanza, re.MULTILINE)
            if uris and suites and "bookworm" in suites.group(1).split():
                uri = uris.group(1)
                if uri.rstrip("/").endswith("/debian"):
                    return uri
    return DEFAULT_MIRROR


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _cached(image: BaseImage, prefix: str, make: Callable[[Path], None]) -> BaseImage:
    """``image`` from the cache, else made by ``make(build)`` in a scratch directory of the
    cache and renamed into place complete, under the build lock (parallel workers and
    checkouts make it once and never see half of it); then the cache is pruned."""
    cache = cache_dir()
    if image.root.exists():
        _mark_used(image)
        return image
    with _locked(cache / "build.lock"):
        if image.root.exists():  # another worker built it while we waited
            _mark_used(image)
            return image
        build = Path(tempfile.mkdtemp(prefix=f".build-{prefix}-", dir=cache))
        try:
            make(build)
            os.rename(build, image.directory)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
        _mark_used(image)
        _prune(cache, keep=image.directory)
    return image


def base_image(*, log: Path | None = None) -> BaseImage:
    """The cached base image, built first if this recipe has none yet."""
    key = recipe_key()

    def make(build: Path) -> None:
        build_log = log or build / "build.log"
        with build_log.open("w") as out:
            # A private mount namespace: what debootstrap and the chroot steps mount in the
            # tree disappears with it, even if the build dies half-way.
            proc = subprocess.run(
                ["unshare", "--mount", "--propagation", "private", "bash", str(RECIPE[0]), str(build),
                 debian_mirror()],
                stdout=out, stderr=subprocess.STDOUT, check=False,
            )
        if proc.returncode != 0:
            tail = "".join(build_log.read_text(errors="replace").splitlines(keepends=True)[-30:])
            raise RuntimeError(f"building the VM base image failed (log: {build_log}):\n{tail}")

    return _cached(BaseImage(cache_dir() / f"base-{key}"), key, make)


def derivation_key(parent: BaseImage, name: str, script: str, inputs: Sequence[Path] = (),
                   env: Mapping[str, str] | None = None) -> str:
    """A hash of everything that decides a cached derived image: its parent (whose directory
    name carries the parent's own key), its name, the script, the names and content of the
    input files (not their paths: the cache may move) and the script's extra environment."""
    digest = hashlib.sha256()
    for part in (parent.directory.name, name, script):
        digest.update(part.encode() + b"\0")
    for path in inputs:
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    for variable, value in sorted((env or {}).items()):
        digest.update(f"{variable}={value}".encode() + b"\0")
    return digest.hexdigest()[:16]


def derived_image(
    parent: BaseImage,
    name: str,
    script: str,
    *,
    inputs: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
) -> BaseImage:
    """A cached image made from ``parent`` by ``script``, built first if this recipe has none.

    The script runs as :func:`derive` runs one (bash, the copy of the parent's root
    loop-mounted at $ROOT, a private mount namespace), with the input files' paths in
    $INPUTS (space-separated) and the image's directory in $OUT: it may write its own
    ``vmlinuz`` or ``initrd.img`` there, else the parent's are used. The image is
    ``cache_dir()/NAME-KEY`` (:func:`derivation_key`): a changed script, input or parent makes
    a new one. It is built in a temporary directory under the cache's build lock and renamed
    into place complete, so parallel workers and checkouts build it once and never see half
    of it. Make only what does not depend on freshroot's source this way: the source changes
    with every commit, a cached image should not.
    """
    key = derivation_key(parent, name, script, inputs, env)

    def make(build: Path) -> None:
        environment = {**(env or {}), "INPUTS": " ".join(str(p) for p in inputs), "OUT": str(build)}
        derive(parent, build / "root.raw", script=script, env=environment)
        for part in ("vmlinuz", "initrd.img"):
            if not (build / part).exists():
                shutil.copyfile(parent.directory / part, build / part)

    return _cached(BaseImage(cache_dir() / f"{name}-{key}"), f"{name}-{key}", make)


def _mark_used(image: BaseImage) -> None:
    (image.directory / "last-used").touch()


IMAGE_DIRECTORY = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*-[0-9a-f]{16}$")


def _prune(cache: Path, *, keep: Path, unused_for: float = 2 * 86400) -> None:
    """Remove images of other recipes (base and derived, a few hundred MB each) once no run
    has used them for two days: a checkout with another recipe may still be booting its image
    now. A derived image of an old base goes the same way. Called under the build lock, so a
    ``.build-*`` directory older than a day is what a killed build left behind."""
    now = time.time()
    for entry in cache.iterdir():
        if entry.name.startswith(".build-") and entry.is_dir() and now - entry.stat().st_mtime > 86400:
            shutil.rmtree(entry, ignore_errors=True)
            continue
        marker = entry / "last-used"
        # An image is a base-KEY directory or one that _mark_used marked: anything else in the
        # cache (debs/, accel-KEY, what other tests keep there) is not this function's.
        image = entry.name.startswith("base-") or marker.exists()
        if not IMAGE_DIRECTORY.match(entry.name) or not entry.is_dir() or not image or entry == keep:
            continue
        used = marker.stat().st_mtime if marker.exists() else entry.stat().st_mtime
        if now - used > unused_for:
            shutil.rmtree(entry, ignore_errors=True)


def derive(
    base: BaseImage,
    target: Path,
    *,
    overlay: Path | None = None,
    script: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """A copy of the base root file system at ``target`` with ``overlay`` (a directory tree)
    copied over it and then ``script`` (bash, the mounted image in $ROOT) run on the host.

    Both run in a private mount namespace with the image loop-mounted, so nothing is left
    mounted on the host whatever happens. ``chroot "$ROOT" ...`` runs the guest's programs.
    """
    # A sparse copy: the image is 3 GB with a few hundred MB used.
    subprocess.run(["cp", "--sparse=always", str(base.root), str(target)], check=True)
    if overlay is None and script is None:
        return target
    with tempfile.TemporaryDirectory(prefix="freshroot-vm-mnt-") as mnt:
        steps = ['mount -o loop "$IMAGE" "$ROOT"', 'trap \'umount "$ROOT"\' EXIT']
        if overlay is not None:
            steps.append('cp -a --no-preserve=ownership "$OVERLAY"/. "$ROOT"/')
        if script is not None:
            steps.append(script)
        environment = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LC_ALL": "C.UTF-8",
            **(env or {}),
            "IMAGE": str(target),
            "ROOT": mnt,
            "OVERLAY": str(overlay or ""),
        }
        proc = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "bash", "-euo", "pipefail", "-c", "\n".join(steps)],
            env=environment, capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"customising {target} failed (status {proc.returncode}):\n{proc.stderr}")
    return target


if __name__ == "__main__":
    # `python -m tests.vm.image` builds (or finds) the base image and prints where it is.
    print(base_image().directory, file=sys.stdout)

"""Build a portable service image: stage the tree, then mksquashfs or mkfs.erofs it.

Reproducible by construction: every file root-owned, every timestamp (and the file system's
own creation time) set to SOURCE_DATE_EPOCH (0 when unset, as nixpkgs does), directory
entries sorted by the builders, no extended attributes, and for erofs a UUID derived from
the image name and version instead of a random one. Same declaration and same host files
in, same bytes out.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Callable, Mapping
from typing import assert_never

from freshroot import run as runner
from freshroot.errors import OperationError, UsageError, os_error_message
from freshroot.fs import ops
from freshroot.image.closure import Resolver
from freshroot.image.model import ImageFormat, PortableImage
from freshroot.image.stage import stage_image
from freshroot.log import logger
from freshroot.progress import OFF, Progress

# Names the image UUIDs: uuid5(this, "NAME_VERSION"), stable across builds and machines.
IMAGE_UUID_NAMESPACE = uuid.UUID("5a0f6f1e-2b51-4a7c-9a4e-6672657368ff")


def source_date_epoch(env: Mapping[str, str] | None = None) -> int:
    """SOURCE_DATE_EPOCH from the environment (reproducible-builds.org), 0 if unset."""
    value = (os.environ if env is None else env).get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return 0
    if not value.isdigit() or int(value) >= 1 << 32:
        raise UsageError(f"SOURCE_DATE_EPOCH={value!r} must be a whole number of seconds since 1970 (below 2^32)")
    return int(value)


def image_uuid(image: PortableImage) -> str:
    return str(uuid.uuid5(IMAGE_UUID_NAMESPACE, f"{image.name}_{image.version}"))


def squashfs_argv(image: PortableImage, tree: str, output: str, epoch: int) -> list[str]:
    argv = [
        "mksquashfs", tree, output,
        "-noappend", "-all-root", "-root-mode", "755", "-no-xattrs", "-exit-on-error",
        # Explicit times rather than SOURCE_DATE_EPOCH in the environment: mksquashfs refuses both
        # at once, and freshroot.run never passes the caller's environment on anyway.
        "-mkfs-time", str(epoch), "-all-time", str(epoch),
        "-reproducible", "-quiet", "-no-progress",
        "-b", str(image.block_size),
    ]
    match image.compression:
        case "none":
            argv += ["-noI", "-noId", "-noD", "-noF", "-noX"]
        case "xz":
            argv += ["-comp", "xz", "-Xdict-size", "100%"]
        case other:
            argv += ["-comp", other]
    return argv


def erofs_argv(image: PortableImage, tree: str, output: str, epoch: int) -> list[str]:
    argv = ["mkfs.erofs", f"-T{epoch}", f"-U{image_uuid(image)}", "--all-root", "-x-1", "--quiet"]
    if image.compression != "none":
        argv.append(f"-z{image.compression}")
    return [*argv, output, tree]


def builder_argv(image: PortableImage, tree: str, output: str, epoch: int) -> list[str]:
    match image.format:
        case ImageFormat.SQUASHFS:
            return squashfs_argv(image, tree, output, epoch)
        case ImageFormat.EROFS:
            return erofs_argv(image, tree, output, epoch)
        case _:
            assert_never(image.format)


def stage_tree(image: PortableImage, tree: str, *, resolver: Resolver | None = None,
               tick: Callable[[int, int], None] | None = None) -> None:
    """Fill the (empty, private) directory ``tree`` with the image's root file system.

    Contents and libraries come from the root ``resolver`` reads (the host's / by default).
    """
    fd = ops.open_root(tree)
    try:
        if resolver is None:
            with Resolver() as own:
                stage_image(image, fd, own, tick)
        else:
            stage_image(image, fd, resolver, tick)
    finally:
        os.close(fd)


def build_image(image: PortableImage, output_dir: str, *, epoch: int | None = None,
                resolver: Resolver | None = None, progress: Progress = OFF) -> str:
    """Build ``image`` into ``output_dir``/NAME_VERSION.raw and return that path.

    The tree is staged in a private directory next to the output and removed afterwards; the
    image is written under a temporary name and renamed into place, so a failed build never
    leaves a half-written NAME_VERSION.raw behind.
    """
    epoch = source_date_epoch() if epoch is None else epoch
    try:
        os.makedirs(output_dir, exist_ok=True)
        out_fd = ops.open_root(output_dir)
    except OSError as e:
        raise OperationError(f"cannot open the output directory: {os_error_message(e)}") from e
    final = os.path.join(output_dir, image.file_name)
    work = ""
    try:
        # mkdtemp: a fresh 0700 directory no one else can have planted anything in.
        # (The builders get path strings, so the directory is named by path, not by fd.)
        work = tempfile.mkdtemp(prefix=".freshroot-image-", dir=output_dir)
        work_fd = ops.open_root(work)
        try:
            ops.mkdir_at(work_fd, "root", 0o755)
            # 0755 as any / is (the umask must not narrow it); the 0700 work directory keeps it private.
            os.chmod("root", 0o755, dir_fd=work_fd)  # noqa: S103
            tree = os.path.join(work, "root")
            logger.debug("staging %s in %s", image.file_name, tree)
            with progress.phase(f"stage {image.file_name}"):
                stage_tree(image, tree, resolver=resolver, tick=progress.advance)
            output = os.path.join(work, image.file_name)
            builder = builder_argv(image, tree, output, epoch)[0]
            # What the builder has written so far: its output file's size, asked at each redraw.
            with progress.phase(f"{builder} {image.file_name}", probe=lambda: os.stat(output).st_size):
                runner.run(builder_argv(image, tree, output, epoch))
            built = ops.open_path_at(work_fd, image.file_name)
            try:
                ops.chmod_fd(built, 0o644)
            finally:
                os.close(built)
            ops.rename_at(work_fd, image.file_name, out_fd, image.file_name)
        finally:
            os.close(work_fd)
    except OSError as e:
        raise OperationError(f"building {final} failed: {os_error_message(e)}") from e
    finally:
        if work:
            with contextlib.suppress(OSError):
                ops.remove_tree_at(out_fd, os.path.basename(work))
        os.close(out_fd)
    logger.debug("built %s", final)
    return final

"""``--image=PATH``: apply tmpfiles.d to the file systems of a disk image, as systemd-tmpfiles does.

systemd-tmpfiles dissects the image itself (a bare file system, or a GPT disk laid out by the
Discoverable Partitions Specification), mounts it and runs as with ``--root``. freshroot
leaves the dissection to ``systemd-dissect --mount``, which implements that specification
(and ``--image-policy``), inside a mount namespace of its own process: the mounts are never
visible to the host, and they go away with the process even if it is killed (the loop
device is set up with autoclear by systemd-dissect, so it goes with them).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Callable

from freshroot.errors import EXIT_FAILURE, CommandError, TmpfilesUsageError
from freshroot.log import logger


def run_in_image(args: argparse.Namespace, body: Callable[[argparse.Namespace], int]) -> int:
    """Mount ``args.image`` (with ``args.image_policy``) in a private namespace, run ``body``
    with ``--root`` pointing at it, unmount."""
    from freshroot.fs.bindmount import unshare_mounts
    from freshroot.run import run

    if args.root:
        raise TmpfilesUsageError("Please specify either --root= or --image=, the combination of both is not supported.")
    policy = [f"--image-policy={args.image_policy}"] if args.image_policy else []
    if not os.path.exists(args.image):  # systemd's words; systemd-dissect 252 says EPERM here
        logger.error("Failed to set up loopback device for %s: No such file or directory", args.image)
        return EXIT_FAILURE
    unshare_mounts()  # from here on, nothing this process mounts is seen outside it
    where = tempfile.mkdtemp(prefix="freshroot-tmpfiles-image-")
    try:
        try:
            run(["systemd-dissect", *policy, "--mount", args.image, where])
        except CommandError as e:
            logger.error("Failed to mount image %s: %s", args.image, e.stderr.strip() or e.message)
            return EXIT_FAILURE
        try:
            return body(argparse.Namespace(**{**vars(args), "root": where, "image": None}))
        finally:
            try:
                run(["systemd-dissect", "--umount", where])
            except CommandError as e:
                logger.warning("Failed to unmount image %s from %s: %s", args.image, where, e)
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(where)

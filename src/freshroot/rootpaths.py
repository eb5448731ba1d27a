"""How messages show paths: one style for every command (docs/activation.md, "Paths in
output"; docs/json.md).

A command that takes ``--root DIR`` works on a root that is not the host's: a path inside it
is shown as the root sees it, ``/var/lib/app`` (not ``DIR/var/lib/app``), storage mounted
below it too (``/persist/...``), and DIR itself is named once, by the head line of the text
output (:func:`head`: ``status of /mnt``; apply's report has its own, ``apply to /mnt``), by
the JSON document's ``root`` (freshroot.output), or by an error's ``root:`` line
(:func:`root_note`, freshroot.cli.report). A path outside the root (a ``--config`` file on the
host, a ``--units`` directory) is a host path and shown as one.

Most code never sees a host path: it works on fds below the root with paths as the root sees
them. :func:`in_root` is for the few places that do: a file descriptor's name (freshroot.fs.ops
.fd_name), a ``--config`` file that lies inside the root, a file name tmpfiles.d's reader made
below ``--root``. Never on a path that is already as the root sees it: with ``--root /srv``,
``/srv/www`` inside the root is not ``/www``.

Imported by the fs layer and by freshroot.output, so nothing here imports anything.
"""

from __future__ import annotations

# The root of this run, for a command that takes --root (set once by the CLI: absolute and
# real), and whether its text output has named it yet.
_root: list[str] = []
_named: list[bool] = [False]


def remember_root(root: str | None) -> None:
    """Keep this run's root (None: the command takes no --root)."""
    _root[:] = [root or "/"] if root is not None else []
    _named[0] = False


def run_root() -> str | None:
    """This run's root (None outside a command that takes --root)."""
    return _root[0] if _root else None


def in_root(path: str, root: str | None = None) -> str:
    """``path``, a host path, as the root sees it when it is inside the root (``/mnt/var/x`` is
    ``/var/x`` for ``--root /mnt``, ``/mnt`` itself is ``/``); any other path as it is: a path
    outside the root is a host path and stays one. ``root``: this run's, unless given."""
    base = (root if root is not None else run_root() or "/").rstrip("/")
    if not base or not path.startswith(base):
        return path
    rest = path[len(base):]
    if not rest:
        return "/"
    return rest if rest.startswith("/") else path


def on_host(path: str, root: str) -> str:
    """``path``, as the root ``root`` sees it, as the host names it (``/var/x`` is
    ``/mnt/var/x`` for ``--root /mnt``): for what takes host paths, a program run on the host,
    a ``--config`` argument, /proc/net/unix. The inverse of :func:`in_root`."""
    return path if root in ("", "/") else root.rstrip("/") + path


def head(words: str, root: str | None = None) -> str | None:
    """The line that names the root in a command's text output, ``f"{words} {root}"``
    (``status of /mnt``), the one time it is named: None when the root is ``/`` (the host's
    paths and the root's are the same) or it was named already."""
    root = root if root is not None else run_root()
    if root in (None, "", "/") or _named[0]:
        return None
    _named[0] = True
    return f"{words} {root}"


def print_head(words: str, root: str | None = None) -> None:
    """Write :func:`head`'s line, if there is one, to standard output."""
    import sys

    line = head(words, root)
    if line:
        sys.stdout.write(line + "\n")


def named() -> None:
    """The root was named by the output (a report's own head, such as ``apply to /mnt``)."""
    _named[0] = True


def root_note(message: str) -> str | None:
    """What an error adds, ``root: /mnt``, when the run's root is not ``/``, no output named it
    yet, and ``message`` does not: the paths in it are inside that root."""
    root = run_root()
    if root in (None, "", "/") or _named[0] or root in message:
        return None
    _named[0] = True
    return f"root: {root}"

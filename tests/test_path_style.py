"""One path style in every command's output (issue 20): with ``--root DIR``, a path inside the
root is shown as the root sees it (``/var/lib/app``, never ``DIR/var/lib/app``), and DIR
itself is named once: in the text output's head line (``apply to DIR``, ``status of DIR``),
or in the JSON document's ``root``; storage mounted below the root is inside it too
(``/persist/...``). Host paths stay host paths: a ``--config`` file, a ``--units``
directory. Hints are commands to paste, so they repeat ``--root DIR`` as given; ``--debug``'s
``+ command`` lines are the commands as run on the host.

The scratch root's path has SCRATCHROOT in it, and every command that takes --root runs on it
in text and --json modes (a private mount namespace for the whole sequence: apply's bind
mounts stay for the status, undo and persist-files after it), with a declaration exercising
persistence (a migrate, a refusal), users, /etc files, tmpfiles.d, a snippet, generations,
and errors: a failing /etc entry and tmpfiles.d line, a declaration error in a drop-in inside
the root, the apply lock held by another process. Each output may name the root only where
it is allowed to.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from freshroot import rootpaths
from freshroot.errors import os_error_message
from freshroot.fs.mount import MS, mount
from freshroot.fs.ops import fd_name, reopen

REPO = Path(__file__).resolve().parents[1]

DECLARATION = """\
[persist."/persist"]
directories = ["/var/lib/app", "/var/lib/refused", "/var/lib/new"]
files = [{ path = "/etc/app.conf", how = "bind" }]

[persist."/persist".users.alice]
directories = [".ssh"]

[users.alice]
uid = 1500

[etc.motd]
text = "hello\\n"

[etc.issue]
text = "in the way\\n"

[tmpfiles]
rules = ["d /var/lib/made 0755 root root -", "f /var/lib/blocked/file 0644 root root - x"]

[activation.note]
text = 'test -d "$FRESHROOT_ROOT/etc" && echo "noted"'
"""
# The second generation: without the entries that fail.
SECOND = """\
[persist."/persist"]
directories = ["/var/lib/app", "/var/lib/new"]

[etc.motd]
text = "second\\n"
"""
BAD_DROPIN = '[persist."/persist"]\ndirectories = ["/var/lib/x/"]\n'  # line 2: not canonical

# Each run of the sequence: a name, then argv ("!" words are the driver's own: "!sh CMD" runs a
# shell command, "!lock"/"!unlock" hold and release the apply lock as another process would).
# "{root}", "{config}", "{second}", "{units}" are filled in.
COMMON = ["--root", "{root}", "--config", "{config}"]
SEQUENCE: list[tuple[str, list[str]]] = [
    ("config check", ["config", "check", *COMMON]),
    ("config check json", ["config", "check", *COMMON, "--json"]),
    ("plan", ["plan", *COMMON]),
    ("plan json", ["plan", *COMMON, "--json"]),
    ("status before", ["status", *COMMON]),
    ("status before json", ["status", *COMMON, "--json"]),
    ("audit", ["audit", *COMMON, "--sizes"]),
    ("audit json", ["audit", *COMMON, "--sizes", "--json"]),
    ("migrate dry", ["migrate", *COMMON, "--dry-run", "/var/lib/app"]),
    ("migrate dry json", ["migrate", *COMMON, "--dry-run", "--json", "/var/lib/app"]),
    ("migrate", ["migrate", *COMMON, "/var/lib/app"]),
    ("apply", ["apply", *COMMON, "--debug"]),
    ("apply json", ["apply", *COMMON, "--json"]),
    ("status", ["status", *COMMON]),
    ("status json", ["status", *COMMON, "--json"]),
    ("apply second", ["apply", "--root", "{root}", "--config", "{second}", "--confirm-timeout", "600"]),
    ("generations", ["generations", *COMMON]),
    ("generations json", ["generations", *COMMON, "--json"]),
    ("confirm", ["confirm", *COMMON]),
    ("confirm json", ["confirm", *COMMON, "--json"]),
    ("rollback", ["rollback", *COMMON]),
    ("rollback json", ["rollback", *COMMON, "--json"]),  # to the first generation again: nothing to go back to
    ("lock", ["!lock"]),
    ("apply locked", ["apply", *COMMON]),
    ("apply locked json", ["apply", *COMMON, "--json"]),
    ("migrate locked", ["migrate", *COMMON, "/var/lib/app"]),
    ("unlock", ["!unlock"]),
    ("persist-files stop", ["persist-files", *COMMON, "--stop"]),
    ("persist-prepare", ["persist-prepare", *COMMON]),
    ("persist-files start", ["persist-files", *COMMON, "--start"]),
    ("undo dry json", ["undo", *COMMON, "--dry-run", "--json"]),
    ("undo", ["undo", *COMMON]),
    ("undo json", ["undo", *COMMON, "--json"]),
    ("install dry", ["install", *COMMON, "--dry-run"]),
    ("install", ["install", *COMMON]),
    ("render", ["render", *COMMON, "--units", "{units}"]),
    ("render json", ["render", *COMMON, "--units", "{units}", "--json"]),
    ("tmpfiles render", ["tmpfiles", "render", *COMMON]),
    ("tmpfiles render json", ["tmpfiles", "render", *COMMON, "--json"]),
    ("roots", ["roots", *COMMON]),
    ("roots json", ["roots", *COMMON, "--json"]),
    ("rescue", ["rescue", *COMMON, "/var/lib/app"]),
    ("completion", ["completion", "bash", *COMMON]),
    # install put the declaration in the root: read from there from now on, a bad drop-in too
    ("in-root config show", ["config", "show", "--root", "{root}", "--verbose"]),
    ("in-root status", ["status", "--root", "{root}"]),
    ("bad drop-in", ["!sh", ("mkdir -p {root}/etc/freshroot/conf.d && "
                             "printf '%s' \"$BAD\" > {root}/etc/freshroot/conf.d/50-bad.toml")]),
    ("in-root config check", ["config", "check", "--root", "{root}"]),
    ("in-root config check json", ["config", "check", "--root", "{root}", "--json"]),
    ("in-root plan", ["plan", "--root", "{root}"]),
    ("in-root plan json", ["plan", "--root", "{root}", "--json"]),
]

# The runs whose text output shows paths inside the root: they name it exactly once (the
# others at most once).
NAMES_THE_ROOT = {
    "plan", "status before", "audit", "migrate dry", "migrate", "apply", "status", "apply second",
    "generations", "rollback", "undo", "install dry", "install", "in-root config show", "in-root status",
    "persist-prepare", "persist-files start", "persist-files stop",
}

DRIVER = r"""
import fcntl, json, os, subprocess, sys
runs, env, root = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
results, lock = [], None
for name, argv in runs:
    if argv[0] == "!sh":
        subprocess.run(["sh", "-c", argv[1]], env=env, check=True)
        continue
    if argv[0] == "!lock":
        os.makedirs(root + "/run/freshroot", exist_ok=True)
        lock = os.open(root + "/run/freshroot/lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX)
        continue
    if argv[0] == "!unlock":
        os.close(lock)
        continue
    done = subprocess.run([sys.executable, "-m", "freshroot", *argv], capture_output=True, text=True, env=env,
                          timeout=120)
    results.append({"name": name, "argv": argv, "code": done.returncode, "stdout": done.stdout,
                    "stderr": done.stderr})
print(json.dumps(results))
"""


@dataclass(frozen=True)
class Run:
    name: str
    argv: list[str]
    code: int
    stdout: str
    stderr: str


def _scene(base: Path) -> tuple[Path, dict[str, str]]:
    root = base / "SCRATCHROOT"
    for d in ("etc/issue", "persist/var/lib/refused", "var/lib/app", "var/lib/refused", "root", "home"):
        (root / d).mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "etc/shadow").write_text("root:*::0:99999:7:::\n")
    (root / "etc/gshadow").write_text("root:*::\n")
    (root / "var/lib/app/data").write_text("rows")  # migrated, then persisted
    (root / "var/lib/refused/data").write_text("root's")  # data on both sides: refused
    (root / "persist/var/lib/refused/other").write_text("storage's")
    (root / "var/lib/blocked").write_text("a file where tmpfiles.d wants a directory")
    (root / "etc/issue/x").write_text("a directory where /etc/issue is declared")
    names = {"root": str(root), "config": str(base / "decl.toml"), "second": str(base / "second.toml"),
             "units": str(base / "units")}
    Path(names["config"]).write_text(DECLARATION)
    Path(names["second"]).write_text(SECOND)
    return root, names


def _run_sequence(base: Path) -> tuple[Path, list[Run]]:
    root, names = _scene(base)
    runs = [(name, [w.format(**names) for w in argv]) for name, argv in SEQUENCE]
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "JOURNAL_STREAM")}
    env.update(PYTHONPATH=str(REPO / "src"), BAD=BAD_DROPIN, NO_COLOR="1")
    done = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c", DRIVER,
                           json.dumps(runs), json.dumps(env), str(root)],
                          capture_output=True, text=True, check=False, timeout=1200)
    assert done.returncode == 0, done.stderr
    return root, [Run(**r) for r in json.loads(done.stdout)]


def _without_allowed(text: str, root: str, debug: bool) -> str:
    """``text`` without what may name the root: ``--root DIR`` in a command to paste (a hint),
    and under --debug the ``+ command`` lines (the commands as run on the host)."""
    text = text.replace(f"--root {root}", "--root <ROOT>")
    if debug:
        text = "\n".join(line for line in text.splitlines() if not line.startswith("+ "))
    return text


def _namings(text: str, root: str) -> tuple[list[str], list[str]]:
    """(the lines that name the root as a head line may, every other line with its path).
    A head line ends with the root and has no path before it: ``apply to DIR``, ``status of
    DIR``, ``# declaration of DIR``, an error's ``  root: DIR``."""
    heads: list[str] = []
    wrong: list[str] = []
    head = re.compile(r"^[^/]* " + re.escape(root) + "$")
    for line in text.splitlines():
        if root not in line:
            continue
        (heads if head.match(line) else wrong).append(line)
    return heads, wrong


def _strings(doc: object, where: str = "") -> list[tuple[str, str]]:
    """Every string of a JSON document, with where it is."""
    if isinstance(doc, str):
        return [(where, doc)]
    if isinstance(doc, dict):
        return [s for k, v in doc.items() for s in _strings(v, f"{where}.{k}")]
    if isinstance(doc, list):
        return [s for i, v in enumerate(doc) for s in _strings(v, f"{where}[{i}]")]
    return []


@pytest.fixture(scope="module")
def sequence(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Run]]:
    return _run_sequence(tmp_path_factory.mktemp("paths"))


@pytest.mark.root
@pytest.mark.netns
@pytest.mark.slow
def test_the_sequence_did_what_it_says(sequence: tuple[Path, list[Run]]) -> None:
    """The scene exercises what it claims: a refusal, failures with paths, a migrate, the lock,
    the declaration error at its root-relative file and line."""
    root, runs = sequence
    by = {r.name: r for r in runs}
    assert by["plan"].code == 1
    assert "refuse /var/lib/refused" in by["plan"].stdout
    assert by["migrate"].code == 0, by["migrate"].stderr
    assert by["apply"].code == 1
    assert "/etc/issue" in by["apply"].stdout  # the /etc entry that fails
    assert "/var/lib/blocked" in by["apply"].stdout + by["apply"].stderr  # the tmpfiles.d line
    assert "create directory /var/lib/made 0755 root:root" in by["plan"].stdout
    assert (root / "persist/var/lib/app/data").read_text() == "rows"
    assert by["apply locked"].code == 1
    assert "/run/freshroot/lock" in by["apply locked"].stderr
    assert by["in-root config check"].code == 65
    assert "/etc/freshroot/conf.d/50-bad.toml:2: " in by["in-root config check"].stderr
    doc = json.loads(by["in-root config check json"].stdout)
    assert doc["error"]["problems"][0]["file"] == "/etc/freshroot/conf.d/50-bad.toml"
    assert "read /etc/freshroot/freshroot.toml" in by["in-root config show"].stdout


@pytest.mark.root
@pytest.mark.netns
@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name, argv in SEQUENCE if not argv[0].startswith("!")])
def test_the_root_is_named_once_and_paths_are_as_the_root_sees_them(
        sequence: tuple[Path, list[Run]], name: str) -> None:
    root_path, runs = sequence
    root = str(root_path)
    run = next(r for r in runs if r.name == name)
    debug = "--debug" in run.argv
    as_json = "--json" in run.argv
    if as_json:
        doc = json.loads(run.stdout)
        assert doc.get("root") == root, (name, "the document names the root once, as `root`", doc)
        named = [(where, s) for where, s in _strings(doc) if root in _without_allowed(s, root, debug)]
        assert named == [(".root", root)], (name, "paths inside the root as the root sees them", named)
        texts = [run.stderr]
    else:
        texts = [run.stdout, run.stderr]
    heads: list[str] = []
    for text in texts:
        found, wrong = _namings(_without_allowed(text, root, debug), root)
        assert not wrong, (name, "a path inside the root shown as a host path, or the root named again", wrong)
        heads += found
    assert len(heads) <= 1, (name, "the root named more than once", heads)
    if name in NAMES_THE_ROOT:
        assert len(heads) == 1, (name, "the root is named once in the head", run.stdout, run.stderr)


# --- the pieces -------------------------------------------------------------------------------

@pytest.fixture
def run_root(tmp_path: Path) -> Iterator[Path]:
    """This process's run has ``tmp_path/root`` as its --root (as the CLI sets it)."""
    root = tmp_path / "root"
    root.mkdir()
    rootpaths.remember_root(str(root))
    try:
        yield root
    finally:
        rootpaths.remember_root(None)


def test_in_root_maps_only_host_paths_below_the_root() -> None:
    assert rootpaths.in_root("/mnt/var/lib/app", "/mnt") == "/var/lib/app"
    assert rootpaths.in_root("/mnt", "/mnt") == "/"
    assert rootpaths.in_root("/mnt/", "/mnt/") == "/"
    assert rootpaths.in_root("/mntx/y", "/mnt") == "/mntx/y"  # beside the root, not in it
    assert rootpaths.in_root("/etc/freshroot.toml", "/mnt") == "/etc/freshroot.toml"  # on the host
    assert rootpaths.in_root("/srv/www", "/") == "/srv/www"
    assert rootpaths.in_root("<stdin>", "/mnt") == "<stdin>"


def test_the_root_is_named_once_and_never_when_it_is_slash(run_root: Path) -> None:
    assert rootpaths.root_note(f"busy on {run_root}") is None  # the message names it itself
    assert rootpaths.head("status of") == f"status of {run_root}"
    assert rootpaths.head("status of") is None  # named already
    assert rootpaths.root_note("/etc/x:1: bad") is None
    rootpaths.remember_root(str(run_root))
    assert rootpaths.root_note("/etc/x:1: bad") == f"root: {run_root}"
    assert rootpaths.head("status of") is None
    rootpaths.remember_root("/")
    assert rootpaths.head("status of") is None
    assert rootpaths.root_note("/etc/x:1: bad") is None
    rootpaths.remember_root(None)
    assert rootpaths.head("status of", "/mnt") == "status of /mnt"


def test_fs_errors_name_a_descriptor_as_the_root_sees_it(run_root: Path) -> None:
    """Not /proc/self/fd/N, not the host path: what the fd is, below the root."""
    (run_root / "var/lib").mkdir(parents=True)
    (run_root / "var/lib/link").symlink_to("elsewhere")
    fd = os.open(run_root / "var/lib/link", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        assert fd_name(fd) == "/var/lib/link"
        with pytest.raises(OSError, match="symbolic link") as e:
            reopen(fd, os.O_RDONLY)
        assert os_error_message(e.value) == "/var/lib/link: is a symbolic link"
    finally:
        os.close(fd)


@pytest.mark.root
def test_a_failed_mount_names_its_target_as_the_root_sees_it(run_root: Path) -> None:
    """mount(2) is given /proc/self/fd/N; its error names the directory below the root."""
    (run_root / "var").mkdir()
    fd = os.open(run_root / "var", os.O_PATH | os.O_CLOEXEC)
    try:
        with pytest.raises(OSError, match="mount") as e:  # a remount of no mount point: EINVAL
            mount(None, f"/proc/self/fd/{fd}", None, MS.REMOUNT | MS.BIND | MS.RDONLY)
        assert os_error_message(e.value).startswith("/var: mount: ")
    finally:
        os.close(fd)


def test_an_os_error_about_a_known_path_is_named_by_it() -> None:
    """A call on a directory fd names only the entry; the message names it as the root sees it."""
    import errno

    assert os_error_message(OSError(errno.EACCES, "Permission denied", "db"), "/var/lib/x/db") == \
        "/var/lib/x/db: Permission denied"
    assert os_error_message(OSError(errno.EACCES, "Permission denied"), "/var/lib/x") == "/var/lib/x: Permission denied"
    assert os_error_message(OSError(errno.ESTALE, "moved while being walked", "/var/lib/x/a"), "/var/lib/x") == \
        "/var/lib/x: /var/lib/x/a: moved while being walked"
    assert os_error_message(OSError(errno.EACCES, "Permission denied", "db")) == "db: Permission denied"


@pytest.mark.root
def test_apply_names_what_its_clean_walk_meets_as_the_root_sees_it(tmp_path: Path) -> None:
    """apply's tmpfiles step: what the engine's removal walk (an ``R`` line) could not remove
    is named as the root sees it, in systemd-tmpfiles' words."""
    from freshroot.fs import attrs

    root = tmp_path / "SCRATCHROOT"
    for d in ("etc", "var/cache/x/y"):
        (root / d).mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    stuck = root / "var/cache/x/y/stuck"
    stuck.write_text("immutable")
    (root / "var/cache/x/gone").write_text("removed")
    config = tmp_path / "decl.toml"
    config.write_text('[tmpfiles]\nrules = ["R /var/cache/x"]\n')
    fd = os.open(stuck, os.O_RDONLY)
    try:
        try:
            attrs.change_flags(fd, attrs.IMMUTABLE, attrs.IMMUTABLE)
        except OSError as e:
            pytest.skip(f"this file system has no immutable flag: {e}")
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "NO_COLOR": "1"}
        env.pop("JOURNAL_STREAM", None)
        done = subprocess.run([sys.executable, "-m", "freshroot", "apply", "--root", str(root), "--config",
                               str(config)], capture_output=True, text=True, env=env, timeout=120, check=False)
    finally:
        attrs.change_flags(fd, 0, attrs.IMMUTABLE)  # let pytest remove the tree
        os.close(fd)
    assert 'Failed to remove "/var/cache/x/y/stuck", ignoring: Operation not permitted' in done.stderr
    assert "SCRATCHROOT/var" not in done.stdout + done.stderr
    assert done.returncode != 0  # the R line failed, and apply says so
    assert not (root / "var/cache/x/gone").exists()  # the rest was removed

"""--help imports only what it needs (the timing itself is bench/startup.py, not a test)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

# Costly at start-up, and never needed to parse arguments or print help.
FORBIDDEN = {"ctypes", "subprocess", "json", "tomllib", "dataclasses", "typing", "logging", "inspect",
             "shutil", "textwrap", "traceback", "freshroot.fs", "freshroot.run", "freshroot.config.load",
             "freshroot.config.table", "freshroot.config.positions"}
# Packages' small ``commands`` modules (argparse definitions only) are what --help needs.

PROBE = """
import sys
from pathlib import Path
sys.argv = [{prog!r}, "--help"]
from {module} import main
try:
    main()
except SystemExit:
    pass
with open({out!r}, "w") as f:
    f.write(repr(sorted(sys.modules)))
"""


@pytest.mark.parametrize(("prog", "module"), [("freshroot", "freshroot.cli"),
                                              ("freshroot-tmpfiles", "freshroot.tmpfiles.commands")])
def test_help_imports_nothing_heavy(tmp_path, prog: str, module: str) -> None:
    out = tmp_path / "modules.json"
    code = PROBE.format(prog=prog, module=module, out=str(out))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: {prog}")
    loaded = set(ast.literal_eval(out.read_text()))
    heavy = {m for m in loaded if m in FORBIDDEN or any(m.startswith(f + ".") for f in FORBIDDEN)}
    assert heavy == set()


def _is_dataclass(node: ast.ClassDef) -> bool:
    for d in node.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        if (isinstance(target, ast.Name) and target.id == "dataclass") or \
                (isinstance(target, ast.Attribute) and target.attr == "dataclass"):
            return True
    return False


def test_every_dataclass_has_a_docstring() -> None:
    """A dataclass without one gets ``Name(signature)`` as its doc, computed through
    inspect.signature at class creation: about 2% of the instructions of ``apply --boot``
    (issue 19) for some 50 classes, paid at every boot."""
    src = Path(__file__).resolve().parent.parent / "src" / "freshroot"
    missing = [f"{path.relative_to(src)}:{node.lineno} {node.name}"
               for path in sorted(src.rglob("*.py")) for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.ClassDef) and _is_dataclass(node) and ast.get_docstring(node) is None]
    assert missing == []

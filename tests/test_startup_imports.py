"""--help imports only what it needs (the timing itself is bench/startup.py, not a test)."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

# Costly at start-up, and never needed to parse arguments or print help.
FORBIDDEN = {"ctypes", "subprocess", "json", "tomllib", "dataclasses", "typing", "logging", "inspect",
             "shutil", "textwrap", "traceback", "freshroot.fs", "freshroot.run", "freshroot.config.load",
             "freshroot.config.table", "freshroot.config.positions"}
# Packages' small ``commands`` modules (argparse definitions only) are what --help needs.

PROBE = """
import sys
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

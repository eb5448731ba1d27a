"""Generated bad declarations through ``freshroot apply --root SCRATCH`` (issue 15 #7).

The mutated declarations of test_check_generated (type errors, unknown keys, NUL and newline
in paths, hostile values) go into a scratch root's conf.d, beside a second drop-in that is
always wrong in a way only the whole declaration shows (a path declared in both files, a
dependency cycle, an unknown dependency, an unknown section, a NixOS name). ``apply`` must
never give a traceback, must exit 65 naming file:line, and must leave the scratch root
byte-identical: no lock, no journal, nothing under /run/freshroot, no account file touched.
Each apply runs in a private mount namespace, so a bug that did apply could not mount onto
the host.
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freshroot.cli import main
from freshroot.config.render import to_toml
from freshroot.config.table import Table
from tests.activation.helpers import make_root
from tests.config.test_check_generated import declarations
from tests.nsutil import in_mount_namespace
from tests.plan.test_bad_declaration import snapshot

# Wrong only together with the rest, or wrong on their own in ways the sections' parsers do
# not see: each must be refused by apply before anything runs.
DUPLICATE = '[persist."/persist"]\ndirectories = ["/var/lib/dup"]\n'  # in 20-extra and 30-extra
EXTRAS = [
    DUPLICATE,
    '[persist."/persist"]\ndirectories = ["/srv/data", "/srv/data"]\n',
    '[activation.x1]\ntext = "true"\ndeps = ["x2"]\n[activation.x2]\ntext = "true"\ndeps = ["x1"]\n',
    '[activation.y]\ntext = "true"\ndeps = ["no-such-step"]\n',
    '[persits."/persist"]\ndirectories = ["/var/lib"]\n',
    '[environment.persistence."/persist"]\ndirectories = ["/var/lib"]\n',
    '[persist."/persist"]\nfiles = [{ path = "/etc/x", method = "bind" }]\n',
    '[persist."/persist"]\ndirectories = ["/var/x\\u0000y"]\n',
    '[persist."/persist"]\ndirectories = ["/var/x\\ny"]\n',
    '[persist."/persist"]\ndirectories = ["var/relative"]\n',
]


def _apply(root: Path) -> tuple[int, str]:
    def run() -> tuple[int, str]:
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(["apply", "--root", str(root)])
        return code, err.getvalue()

    return in_mount_namespace(run)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(declarations(), st.sampled_from(EXTRAS))
def test_apply_refuses_a_bad_declaration_and_changes_nothing(data: dict[str, Any], extra: str) -> None:
    try:
        text = to_toml(Table(data))
        tomllib.loads(text)
    except (ValueError, TypeError, RecursionError):
        return  # not expressible as TOML
    with tempfile.TemporaryDirectory() as tmp:
        root = make_root(Path(tmp) / "root")
        (root / "run").mkdir()
        (root / "persist").mkdir()
        conf_d = root / "etc" / "freshroot" / "conf.d"
        conf_d.mkdir(parents=True)
        (conf_d / "10-main.toml").write_text(text)
        (conf_d / "20-extra.toml").write_text(extra)
        if extra == DUPLICATE:  # the same path declared in two drop-ins
            (conf_d / "30-extra.toml").write_text(extra)
        before = snapshot(root)
        code, message = _apply(root)
        assert code == 65, f"{code}: {message}\n{text}\n{extra}"
        assert "Traceback" not in message
        assert "internal error" not in message
        # the drop-in as the root sees it; the root named once, after (docs/activation.md)
        assert re.match(r"freshroot: /etc/freshroot/conf\.d/[123]0-\w+\.toml:\d+: ", message), message
        assert message.endswith(f"\n  root: {root}\n"), message
        assert "\x00" not in message
        assert snapshot(root) == before
        assert not (root / "run" / "freshroot").exists()

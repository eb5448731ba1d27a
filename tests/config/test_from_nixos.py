"""docs/from-nixos.md (issue 20): its worked translation is a declaration freshroot accepts,
and it names every impermanence and NixOS option people come with."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "from-nixos.md"

# impermanence's options (nixos.nix, submodule-options.nix, removed ones included) and the
# NixOS options the page must translate or explain.
OPTIONS = [
    "persistentStoragePath", "enable", "hideMounts", "hideMount", "allowTrash", "enableWarnings",
    "enableDebugging", "directories", "files", "directory", "file", "user", "group", "mode",
    "parentDirectory", "method", "allowOther", "removePrefixDirectory", "defaultDirectoryMethod",
    "users.<name>.directories", "users.<name>.home", "neededForBoot",
    "systemd.tmpfiles.rules", "systemd.tmpfiles.settings", "systemd.tmpfiles.packages",
    "systemd.user.tmpfiles.rules", "system.activationScripts", ".deps", ".supportsDryActivation",
    "system.userActivationScripts", "users.mutableUsers = true", "users.mutableUsers = false",
    "users.users.<name>", "isNormalUser", "isSystemUser", "hashedPassword", "hashedPasswordFile",
    "users.groups.<name>", "environment.etc", ".source", ".mode", ".uid", ".enable", ".target",
    "environment.binsh", "environment.usrbinenv",
]


def translation() -> str:
    text = DOC.read_text()
    found = re.search(r"<!-- translation -->\n```toml\n(.*?)```", text, re.S)
    assert found, "docs/from-nixos.md: no ```toml block after <!-- translation -->"
    return found.group(1)


def test_every_option_is_in_a_table() -> None:
    rows = [line for line in DOC.read_text().splitlines() if line.startswith("| ")]
    missing = [o for o in OPTIONS if not any(f"`{o}" in row.split(" | ")[0] or o in row.split(" | ")[0]
                                             for row in rows)]
    assert missing == []


def test_translation_passes_config_check(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/group").write_text("root:x:0:\n")
    config = tmp_path / "freshroot.toml"
    config.write_text(translation())
    proc = subprocess.run([sys.executable, "-m", "freshroot", "config", "check", "--root", str(root),
                           "--config", str(config)], capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    for section in ("persist", "users", "groups", "tmpfiles", "activation", "etc"):
        assert f"[{section}]: " in proc.stdout, proc.stdout


def test_the_nix_spelling_is_refused_with_the_freshroot_name(tmp_path: Path) -> None:
    """What the page says config check does when a NixOS name is written."""
    config = tmp_path / "freshroot.toml"
    config.write_text('[persist."/persistent"]\nhideMounts = true\n')
    proc = subprocess.run([sys.executable, "-m", "freshroot", "config", "check", "--root", str(tmp_path),
                           "--config", str(config)], capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 65
    assert "hideMounts is impermanence's/NixOS's name: freshroot calls it hide-mounts" in proc.stderr

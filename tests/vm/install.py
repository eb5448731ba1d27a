"""Put a freshroot source tree into a guest image, the way a distribution package would.

freshroot is standard library only, so installing it is copying the package to
/usr/lib/python3/dist-packages (on the guest's python3 path) and writing one small script
per entry point of pyproject.toml into /usr/bin. No pip, no network, nothing built.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SITE = "usr/lib/python3/dist-packages"


def entry_points(repo: Path = REPO) -> dict[str, str]:
    """pyproject.toml's [project.scripts]: name -> "module:function"."""
    with (repo / "pyproject.toml").open("rb") as f:
        scripts: dict[str, str] = tomllib.load(f)["project"]["scripts"]
    return scripts


def freshroot_overlay(dest: Path, repo: Path = REPO) -> Path:
    """A tree under ``dest`` that, copied over a guest root, installs freshroot from ``repo``."""
    shutil.copytree(
        repo / "src" / "freshroot",
        dest / SITE / "freshroot",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        dirs_exist_ok=True,
    )
    bin_dir = dest / "usr" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, target in entry_points(repo).items():
        module, function = target.split(":")
        script = bin_dir / name
        script.write_text(
            "#!/usr/bin/python3\n"
            f"# {name}: installed by the freshroot VM tests from {target}\n"
            "import sys\n"
            f"from {module} import {function}\n"
            f"sys.exit({function}())\n"
        )
        script.chmod(0o755)
    return dest

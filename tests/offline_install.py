"""Installing an outside plugin package in a test: pip builds it offline from a copy of its source (so no build
files land in the repository) into a folder that PYTHONPATH then names."""

import os
import shutil
import subprocess
import sys
from pathlib import Path


def install(package: Path, root: Path) -> tuple[Path, Path, dict[str, str]]:
    """Install the package folder ``package`` under ``root``; (the source copy, the site folder, the environment
    of a process that has the package)."""
    source, site = root / "source", root / "site"
    shutil.copytree(package, source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(site), str(source)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return source, site, {**os.environ, "PYTHONPATH": path, "COLUMNS": "200"}

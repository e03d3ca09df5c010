"""Run timm's own model tests (``tests/test_models.py`` of pytorch-image-models) on nasbench_pc's models.

CI calls ``python3 tests/timm_suite/run.py``. The tests come from the source distribution of the
installed timm version on the package index (``pip download --no-binary :all:``), so they always
match the timm we run against and are fetched, not copied into this repository. ``--timm-tests DIR``
uses an already unpacked ``tests/`` folder instead (offline runs). Extra arguments go to pytest.
Exit status: pytest's; non-zero when any of our models fails a test, is skipped, or was not collected.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def fetch_timm_tests(version: str, into: Path) -> Path:
    """Download timm's sdist for ``version`` and unpack its ``tests/`` folder; returns that folder."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                    f"timm=={version}", "--dest", str(into)], check=True)
    (sdist,) = into.glob(f"timm-{version}.tar.gz")
    prefix = f"timm-{version}/tests/"
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(prefix)]
        archive.extractall(into, members=members, filter="data")
    return into / prefix


def build_suite(timm_tests: Path, suite: Path) -> None:
    """Lay out ``suite/`` as pytest will see it: our conftest above timm's ``tests/`` package."""
    shutil.copytree(timm_tests, suite / "tests")
    shutil.copy(HERE / "conftest_timm.py", suite / "conftest.py")
    shutil.copy(HERE / "intermediates.py", suite / "tests" / "test_nasbench_pc_intermediates.py")
    (suite / "pytest.ini").write_text("[pytest]\n")  # rootdir here, not an outer project's config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timm-tests", type=Path, help="an unpacked timm tests/ folder (default: download it)")
    args, pytest_args = parser.parse_known_args(argv)
    version = importlib.metadata.version("timm")
    with tempfile.TemporaryDirectory(prefix="timm-suite-") as tmp:
        tmp_path = Path(tmp)
        timm_tests = args.timm_tests or fetch_timm_tests(version, tmp_path / "sdist")
        if not (timm_tests / "test_models.py").is_file():
            print(f"{timm_tests} holds no test_models.py; pass timm's tests/ folder.", file=sys.stderr)
            return 2
        suite = tmp_path / "suite"
        build_suite(timm_tests, suite)
        print(f"timm {version}: running its test_models.py on nasbench_pc's models", flush=True)
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                   "tests/test_models.py", "tests/test_nasbench_pc_intermediates.py", *pytest_args]
        return subprocess.run(command, cwd=suite).returncode


if __name__ == "__main__":
    sys.exit(main())

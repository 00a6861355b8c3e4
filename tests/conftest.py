"""Shared fixtures.

The test plugin distribution tests/data/muone_testplugin is pip-installed once per session into a
temporary target directory that is put on sys.path (and PYTHONPATH, for subprocesses and spawned
workers), so muone discovers it through its entry points like any third-party package.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def testplugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Install the test plugin package and make muone see it."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    src = ROOT / "tests" / "data" / "muone_testplugin"
    # copy so the build does not write egg-info into the source tree
    subprocess.run(["cp", "-r", str(src), str(build)], check=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(build / src.name)],
        check=True, capture_output=True,
    )
    sys.path.insert(0, str(target))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH", "")]))
    import importlib

    importlib.invalidate_caches()
    import muone.registry

    muone.registry._DEFAULT = None
    return target


@pytest.fixture
def muone_cli() -> list[str]:
    """The command prefix running muone's CLI in a subprocess."""
    return [sys.executable, "-m", "muone"]

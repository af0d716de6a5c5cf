import os
from pathlib import Path

import numpy as np
import pytest

import stcore  # noqa: F401  (first: it sets MKL's reproducibility mode before torch computes anything)
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("STCORE_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(2)


_LIBRARY_PATH = os.environ.get("LD_LIBRARY_PATH")


@pytest.fixture(autouse=True)
def _keep_library_path():
    """Starting R through rpy2 prepends R's library folders (/usr/lib/x86_64-linux-gnu among them)
    to LD_LIBRARY_PATH in this process; a Python subprocess started later (a Snakemake run) would
    then load the system's libpython instead of its own.  Restore the variable after each test."""
    yield
    if _LIBRARY_PATH is None:
        os.environ.pop("LD_LIBRARY_PATH", None)
    else:
        os.environ["LD_LIBRARY_PATH"] = _LIBRARY_PATH


@pytest.fixture
def hex_coords():
    """A 12 x 12 Visium-like hexagonal grid (unit spacing)."""
    ii, jj = np.meshgrid(np.arange(12), np.arange(12))
    return np.column_stack([(ii + 0.5 * (jj % 2)).ravel(), (jj * np.sqrt(3) / 2).ravel()])


def run_in_fresh_python(code: str) -> None:
    """Run ``code`` in a new interpreter from the repository root (nothing imported yet) and
    fail with its stderr unless it exits 0: for checks of what a step imports."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]


def need_data(*parts):
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (set STCORE_DATA to the folder of labelled slides)")
    return path


def need_tcmalloc() -> str:
    """The tcmalloc library the DAG preloads with STCORE_MALLOC=tcmalloc (rules/common.smk); skip
    where it is not installed, fail instead where STCORE_REQUIRE_TCMALLOC=1 (CI)."""
    import ctypes.util

    lib = ctypes.util.find_library("tcmalloc_minimal")
    if not lib:
        why = "tcmalloc is not installed (Debian/Ubuntu: apt-get install libtcmalloc-minimal4)"
        if os.environ.get("STCORE_REQUIRE_TCMALLOC") == "1":
            pytest.fail(f"STCORE_REQUIRE_TCMALLOC=1 but {why}")
        pytest.skip(why)
    return lib


def need_r():
    """Skip unless R's mclust answers through rpy2; fail instead where STCORE_REQUIRE_R=1 (CI)."""
    from stcore.agreement import r_available

    ok, why = r_available()
    if not ok:
        if os.environ.get("STCORE_REQUIRE_R") == "1":
            pytest.fail(f"STCORE_REQUIRE_R=1 but {why}")
        pytest.skip(why)

"""What a result was made from: seed, package versions, and hashes of the config and input.

``record`` gives flat ``{name: value}`` pairs that the evaluate step writes as columns of
``metrics.tsv`` (and so of ``results/table.tsv``), so every row of a results table can
be traced to the code, the settings and the slide that made it.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import re
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

from .formats import input_digest  # noqa: F401  (one digest: the DAG's and the provenance's)

__all__ = ["PACKAGES", "versions", "machine", "mkl_cnr_mode", "malloc", "config_digest", "input_digest", "data_digest",
           "record"]

# Packages whose versions change the numbers.
PACKAGES = ("stcore", "torch", "scanpy", "snakemake")

def versions(packages=PACKAGES) -> dict[str, str]:
    """Installed version of each package ('absent' when it is not installed)."""
    out = {}
    for name in packages:
        if name == "stcore":
            from . import __version__
            out[name] = __version__
            continue
        if name == "torch":       # torch's own string names its build (+cpu, +cu130), which its metadata drops
            out[name] = _torch_version()
            continue
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _torch_version() -> str:
    """``torch.__version__`` without importing torch (about two seconds of the evaluate step, which
    does not use it otherwise): read from the installed package's ``torch/version.py``."""
    if "torch" in sys.modules:
        return sys.modules["torch"].__version__
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return "absent"
    try:
        text = (Path(next(iter(spec.submodule_search_locations))) / "version.py").read_text()
    except OSError:
        text = ""
    found = re.search(r"^__version__\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]", text, re.M)
    if found:
        return found.group(1)
    import torch
    return torch.__version__


# oneMKL's CNR branch codes (mkl_cbwr_get) and its strict-mode flag.
_CNR_BRANCHES = {1: "OFF", 2: "AUTO", 3: "COMPATIBLE", 4: "SSE2", 6: "SSSE3", 7: "SSE4_1", 8: "SSE4_2",
                 9: "AVX", 10: "AVX2", 11: "AVX512_MIC", 12: "AVX512", 13: "AVX512_MIC_E1", 14: "AVX512_E1"}
_CNR_STRICT = 0x10000


def mkl_cnr_mode() -> str:
    """The conditional-numerical-reproducibility mode of the oneMKL inside torch, as
    MKL_CBWR spells it (``AUTO,STRICT`` by default, see ``stcore/__init__.py``); ``none``
    when torch's BLAS is not MKL, ``unknown`` when the mode cannot be read."""
    import torch

    if not torch.backends.mkl.is_available():
        return "none"
    try:
        import ctypes

        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        mode = int(lib.mkl_serv_cbwr_get(ctypes.c_int(-1)))      # MKL_CBWR_ALL
    except (OSError, AttributeError):
        return "unknown"
    name = _CNR_BRANCHES.get(mode & 0xFFFF, str(mode & 0xFFFF))
    return f"{name},STRICT" if mode & _CNR_STRICT else name


def malloc() -> str:
    """The memory allocator serving this process: ``tcmalloc`` where gperftools' library is
    mapped (the DAG preloads it with STCORE_MALLOC=tcmalloc, rules/common.smk), else ``glibc``
    (``unknown`` without /proc).  It changes the time, never a number."""
    try:
        with open("/proc/self/maps") as fh:
            return "tcmalloc" if "libtcmalloc" in fh.read() else "glibc"
    except OSError:
        return "unknown"


@cache
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _blas() -> str:
    import torch

    show = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([\w.]+)", show)
    if mkl:
        return f"MKL {mkl.group(1)}"
    info = re.search(r"BLAS_INFO=(\w+)", show)
    return info.group(1) if info else "unknown"


def machine() -> dict[str, str]:
    """What the numbers were computed on, beyond the package versions: the CPU model, the
    set of torch's CPU kernels in use (``AVX2``, ``AVX512``, ...: each CPU family gets its own,
    which sum in different orders), torch's BLAS and MKL's reproducibility mode.  Two results
    that differ here may differ in their last bits, and after many epochs in their labels."""
    import torch

    return {"cpu_model": _cpu_model(), "cpu_kernels": torch.backends.cpu.get_cpu_capability(),
            "blas": _blas(), "mkl_cnr": mkl_cnr_mode()}


def config_digest(config: dict) -> str:
    """sha256 of the config as canonical JSON (sorted keys), so equal settings give equal hashes."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def data_digest(x, spots, genes, coords, block: int = 1 << 22) -> str:
    """sha256 of a slide held in memory as the notebook API reads it: the spot ids and the gene ids
    in their order, the values (``x``, sparse or dense: each spot's non-zero values as float64 with
    their genes, so CSR, CSC, a dense array, float32 or int64 counts of the same values give one
    digest) and the coordinates read (float64), ``block`` entries at a time.  The same slide with
    its spots or genes in another order gives another digest: the result may differ as with
    another seed (docs/guarantees.md).  ``uns['stcore']['input_digest']`` of
    :func:`stcore.tl.domains`; a file's own digest is :func:`input_digest`."""
    import numpy as np
    import scipy.sparse as sp

    x = sp.csr_matrix(x)            # as stcore.io.as_csr gives it (a dense float16 X as float32)
    if not x.has_canonical_format or (x.nnz and not np.all(x.data)):    # entries stored twice, unsorted, or 0
        x = x.copy()
        x.sum_duplicates()
        x.eliminate_zeros()
    h = hashlib.sha256()
    for part, names in (("spots", spots), ("genes", genes)):
        h.update(f"{part}:{len(names)}\0".encode() + "\0".join(map(str, names)).encode() + b"\0")
    h.update(np.ascontiguousarray(x.indptr, dtype=np.int64).tobytes())
    for lo in range(0, x.nnz, block):
        h.update(np.ascontiguousarray(x.indices[lo:lo + block], dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(x.data[lo:lo + block], dtype=np.float64).tobytes())
    h.update(b"coords\0" + np.ascontiguousarray(coords, dtype=np.float64).tobytes())
    return h.hexdigest()


def record(*, seed: int | None, config: dict, input_sha256: str = "",
           machine_info: dict[str, str] | None = None) -> dict[str, object]:
    """Flat provenance columns: seed (none for a combination of runs), ``<package>_version`` for
    each of :data:`PACKAGES`,
    the :func:`machine` columns (``machine_info``: those of the machine that trained, as the
    train step recorded them; this process's machine when not given), ``config_sha256`` and
    ``input_sha256``."""
    row: dict[str, object] = {} if seed is None else {"seed": int(seed)}
    row |= {f"{k}_version": v for k, v in versions().items()}
    row |= machine_info if machine_info else machine()
    row["config_sha256"] = config_digest(config)
    row["input_sha256"] = input_sha256
    return row

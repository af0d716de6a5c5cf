"""stcore: spatial domains from spatial transcriptomics with a sparse graph contrastive autoencoder."""
import os as _os

# oneMKL's strict conditional numerical reproducibility (CNR) mode.  The only MKL routine the
# model calls is sgemm, and in strict mode oneMKL's sgemm gives the same bits for any number
# of threads on its AVX2 and AVX-512 code paths; without it, MKL may split a product's
# reduction across threads on some CPUs (seen on an Intel Xeon with AVX-512), so the loss
# changes in its last bits with the thread count.  MKL reads these variables at its first
# call, so they are set here, before stcore computes anything; a value the user set is kept.
# MKL_DYNAMIC=FALSE keeps MKL from choosing fewer threads than asked at run time.
# stcore.provenance.machine() reports the mode that is in effect.
_os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
_os.environ.setdefault("MKL_DYNAMIC", "FALSE")


def _common_x86_kernels():
    """``'avx2'`` on an x86-64 CPU (Linux) with AVX2 and FMA, else None."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return "avx2" if {"avx2", "fma"} <= set(line.partition(":")[2].split()) else None
    except OSError:
        pass
    return None


# torch's own kernels (sums, elementwise, sparse products) come in an AVX2 and an AVX-512 build
# that add in different orders, so the same training gave other bits, and after 600 epochs other
# labels, on CPUs with AVX-512 than on those without.  Every x86-64 CPU with AVX-512 also has AVX2:
# torch is asked for its AVX2 kernels, which all of them run, so CPUs with and without AVX-512 run
# the same torch kernels (oneMKL's products keep a path of their own per CPU vendor:
# docs/guarantees.md, "Across CPUs"; benchmarks/kernels_check.py; no measurable cost).  torch reads the variable at its first
# operation: set here, before stcore computes anything; a value the user set is kept, and
# stcore.provenance.machine() reports the kernels in effect (``cpu_kernels``).
_KERNELS = _common_x86_kernels()
if _KERNELS:
    _os.environ.setdefault("ATEN_CPU_CAPABILITY", _KERNELS)

from .errors import InputError  # noqa: E402
from .workflow import log_uncaught_in_job as _log_uncaught_in_job  # noqa: E402

_log_uncaught_in_job()      # in a pipeline job, an error while importing goes to the job's log too


def __getattr__(name: str):
    """The package's modules load on first use: ``stcore.read``, ``stcore.gr``, ``stcore.tl`` and
    ``stcore.pl`` (the notebook API), and the others the documentation names after ``import
    stcore`` (``stcore.simulate.write_visium``, ``stcore.export.domains_spatialdata``, ...), so that
    a pipeline step importing one module of stcore does not pay for anndata when it does not read
    a slide.  A name that is no module of the package is an AttributeError, as for any module."""
    import importlib
    import importlib.util

    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__version__ = "0.1.0"
__all__ = ["InputError", "read", "gr", "tl", "pl", "__version__"]

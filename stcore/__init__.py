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

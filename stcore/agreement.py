"""Does the R-free mixture stand in for R's mclust?  Both cluster the same features.

``mclust_r`` fits R's mclust (model EEE, its default hierarchical-agglomeration start)
through rpy2; it is optional and used only by the benchmark.  ``r_available`` says whether
it can run (and why not); nothing else in the package needs R.
"""
from __future__ import annotations

import logging

import numpy as np

__all__ = ["r_available", "mclust_r", "agreement_row"]

log = logging.getLogger(__name__)

INSTALL_HINT = "install R with mclust (Debian: apt-get install r-base-core r-cran-mclust) and pip install rpy2==3.5.17"


def r_available() -> tuple[bool, str]:
    """(True, '') when rpy2 imports and R's mclust loads, else (False, the reason)."""
    try:
        import rpy2.robjects as ro
        from rpy2.robjects.packages import importr

        importr("mclust")
        ro.r("invisible(NULL)")
    except Exception as exc:  # ImportError, or R / mclust missing
        return False, f"R mclust unavailable ({type(exc).__name__}: {str(exc).splitlines()[0][:100]}); {INSTALL_HINT}"
    return True, ""


def mclust_r(features: np.ndarray, n_clusters: int, *, seed: int = 0) -> np.ndarray:
    """Labels 0..n_clusters-1 from R ``mclust::Mclust(features, G=n_clusters, modelNames='EEE')``."""
    import rpy2.robjects as ro
    from rpy2.robjects import numpy2ri
    from rpy2.robjects.conversion import localconverter
    from rpy2.robjects.packages import importr

    mclust = importr("mclust")
    ro.r["set.seed"](int(seed))
    with localconverter(ro.default_converter + numpy2ri.converter):
        data = ro.conversion.get_conversion().py2rpy(np.asarray(features, dtype=np.float64))
    fit = mclust.Mclust(data, G=int(n_clusters), modelNames="EEE", verbose=False)
    if fit is ro.NULL:
        raise RuntimeError("R mclust EEE did not fit")
    labels = np.asarray(fit.rx2("classification"), dtype=int) - 1
    return labels


def agreement_row(features: np.ndarray, python_labels: np.ndarray, truth, n_clusters: int, *,
                  seed: int = 0) -> dict:
    """ARI between R's and the Python labelling of ``features``, and each against ``truth``
    (spots with a truth label only)."""
    from sklearn.metrics import adjusted_rand_score

    from .evaluate import _is_missing

    r_labels = mclust_r(features, n_clusters, seed=seed)
    row = {"ARI_R_vs_python": float(adjusted_rand_score(r_labels, python_labels))}
    if truth is not None:
        keep = ~_is_missing(truth)
        t = np.asarray(truth, dtype=object)[keep].astype(str)
        row["ARI_R_truth"] = float(adjusted_rand_score(t, r_labels[keep]))
        row["ARI_python_truth"] = float(adjusted_rand_score(t, np.asarray(python_labels)[keep]))
    return row

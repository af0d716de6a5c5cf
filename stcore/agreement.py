"""Is the R-free clustering R's mclust?  R and Python cluster the same features.

``mclust_r`` fits R's mclust (model EEE, its default hierarchical-agglomeration start, or
the agglomeration subset given) through rpy2; it is optional and used only by the comparison on labelled slides.
``r_available`` says whether it can run (and why not); nothing else in the package needs R.

``agreement_row`` compares, on one slide's features:
- R given the same agglomeration subset as ``stcore.mclust.mclust`` (same algorithm, same
  input: the labels should be the same);
- R with its own random subset (``set.seed(seed)``, as a GraphST user runs it) against
  ``mclust`` and against ``gmm_tied``; and R against itself with the next seed, which says
  how stable R's own result is on that slide.
"""
from __future__ import annotations

import logging

import numpy as np

__all__ = ["r_available", "mclust_r", "mclust_r_bic", "agreement_row", "AGREEMENT_COLUMNS"]

log = logging.getLogger(__name__)

INSTALL_HINT = "install R with mclust (Debian: apt-get install r-base-core r-cran-mclust) and pip install rpy2==3.5.17"

AGREEMENT_COLUMNS = ["ARI_Rsubset_vs_mclust", "ARI_R_vs_mclust", "ARI_R_vs_gmm_tied", "ARI_R_vs_Rnextseed",
                     "ARI_R_truth", "ARI_mclust_truth", "ARI_gmm_tied_truth"]


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


def mclust_r(features: np.ndarray, n_clusters: int, *, seed: int = 0, subset: np.ndarray | None = None) -> np.ndarray:
    """Labels 0..n_clusters-1 from R ``mclust::Mclust(features, G=n_clusters, modelNames='EEE')``
    after ``set.seed(seed)``; ``subset`` (0-based rows) fixes the agglomeration subset."""
    import rpy2.robjects as ro
    from rpy2.robjects import numpy2ri
    from rpy2.robjects.conversion import localconverter
    from rpy2.robjects.packages import importr

    mclust = importr("mclust")
    ro.r["set.seed"](int(seed))
    with localconverter(ro.default_converter + numpy2ri.converter):
        data = ro.conversion.get_conversion().py2rpy(np.asarray(features, dtype=np.float64))
    kwargs = {}
    if subset is not None:
        kwargs["initialization"] = ro.ListVector({"subset": ro.IntVector((np.asarray(subset) + 1).tolist())})
    fit = mclust.Mclust(data, G=int(n_clusters), modelNames="EEE", verbose=False, **kwargs)
    if fit is ro.NULL:
        raise RuntimeError("R mclust EEE did not fit")
    return np.asarray(fit.rx2("classification"), dtype=int) - 1


def mclust_r_bic(features: np.ndarray, n_clusters_range) -> tuple[int, dict[int, float]]:
    """R ``Mclust(features, G=n_clusters_range, modelNames='EEE')``: its chosen G and its BIC per G
    (the data must have at most 2000 rows, so that R agglomerates all of them, as
    :func:`stcore.mclust.mclust_bic` then does)."""
    import rpy2.robjects as ro
    from rpy2.robjects import numpy2ri
    from rpy2.robjects.conversion import localconverter
    from rpy2.robjects.packages import importr

    mclust = importr("mclust")
    with localconverter(ro.default_converter + numpy2ri.converter):
        data = ro.conversion.get_conversion().py2rpy(np.asarray(features, dtype=np.float64))
    gs = [int(g) for g in n_clusters_range]
    fit = mclust.Mclust(data, G=ro.IntVector(gs), modelNames="EEE", verbose=False)
    if fit is ro.NULL:
        raise RuntimeError("R mclust EEE did not fit")
    bic = np.asarray(fit.rx2("BIC")).ravel()
    return int(fit.rx2("G")[0]), {g: float(b) for g, b in zip(gs, bic) if np.isfinite(b)}


def agreement_row(features: np.ndarray, truth, n_clusters: int, *, seed: int = 0, n_init: int = 10) -> dict:
    """The :data:`AGREEMENT_COLUMNS` for one slide's clustering input (truth: spots with a
    label only; None for none)."""
    from .cluster import gmm_tied
    from .evaluate import ari, is_missing_label, label_text
    from .mclust import mclust, subset_rows

    ours = mclust(features, n_clusters, seed=seed)
    sk = gmm_tied(features, n_clusters, seed=seed, n_init=n_init)
    r_same = mclust_r(features, n_clusters, seed=seed, subset=subset_rows(len(features), seed))
    r_own = mclust_r(features, n_clusters, seed=seed)
    r_next = mclust_r(features, n_clusters, seed=seed + 1)
    row = {"ARI_Rsubset_vs_mclust": ari(r_same, ours),
           "ARI_R_vs_mclust": ari(r_own, ours),
           "ARI_R_vs_gmm_tied": ari(r_own, sk),
           "ARI_R_vs_Rnextseed": ari(r_own, r_next)}
    if truth is not None:
        keep = ~is_missing_label(truth)
        t = label_text(np.asarray(truth, dtype=object)[keep])
        row |= {"ARI_R_truth": ari(t, r_own[keep]),
                "ARI_mclust_truth": ari(t, ours[keep]),
                "ARI_gmm_tied_truth": ari(t, sk[keep])}
    return {k: float(v) for k, v in row.items()}

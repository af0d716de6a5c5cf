"""Highly variable genes and the expression transform the model is trained on.

Follows the reference method: seurat_v3 HVG on raw counts, then normalize_total (1e4),
log1p and per-gene scaling without centring, clipped at 10.  The matrix stays sparse.

Slides whose values are not counts (``values``: ``normalized``, e.g. MERFISH volume-normalised
values; ``log_normalized``) skip the steps already done to them: no library-size normalisation
(and, when log-normalised, no log1p); their genes are selected with flavour ``seurat`` (on
log values), since ``seurat_v3`` models raw counts.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import anndata as ad
import numpy as np
import scipy.sparse as sp

from .errors import InputError

__all__ = ["HVGParams", "select_hvg", "transform", "run_hvg"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HVGParams:
    """n_top_genes: genes to keep (3000); all genes are kept when the slide has fewer.
    flavor: scanpy HVG flavour ('seurat_v3' on raw counts, or 'seurat'/'cell_ranger' on
    normalised input). target_sum: library size after normalisation (1e4).
    max_value: clip after scaling (10).  values: what ``X`` holds (counts, normalized,
    log_normalized; the sample sheet's ``values``)."""

    n_top_genes: int = 3000
    flavor: str = "seurat_v3"
    target_sum: float = 1e4
    max_value: float = 10.0
    values: str = "counts"

    def __post_init__(self):
        if self.values not in VALUES:
            raise InputError(f"values '{self.values}' is not known", fix=f"use one of {list(VALUES)}")

    @property
    def selection_flavor(self) -> str:
        """seurat_v3 needs raw counts; other values select with seurat."""
        return "seurat" if self.values != "counts" and self.flavor == "seurat_v3" else self.flavor


VALUES = ("counts", "normalized", "log_normalized")


def select_hvg(adata: ad.AnnData, params: HVGParams) -> np.ndarray:
    """Boolean mask of the highly variable genes, computed on the raw counts in ``X``."""
    import scanpy as sc

    varying = _varying_genes(adata.X)
    if varying == 0:
        raise InputError("no gene varies across spots (every gene has the same value in every spot)",
                         fix="check that X holds the slide's expression (not one spot's row repeated, or a "
                             "placeholder)")
    if adata.n_vars <= params.n_top_genes:
        log.warning("slide has %d genes, not more than n_top_genes=%d: all genes are used",
                    adata.n_vars, params.n_top_genes)
        return np.ones(adata.n_vars, dtype=bool)
    tmp = ad.AnnData(adata.X.copy(), obs=adata.obs[[]], var=adata.var[[]])
    flavor = params.selection_flavor
    if flavor != params.flavor:
        log.info("values are %s, not counts: genes selected with hvg flavour %s", params.values, flavor)
    if flavor != "seurat_v3":
        if params.values == "counts":
            sc.pp.normalize_total(tmp, target_sum=params.target_sum)
        if params.values != "log_normalized":
            sc.pp.log1p(tmp)
        sc.pp.highly_variable_genes(tmp, flavor=flavor, n_top_genes=params.n_top_genes)
        return tmp.var["highly_variable"].to_numpy()
    # seurat_v3 fits a loess of log variance on log mean over the genes that vary.  With fewer
    # than MIN_VARYING_GENES of them scikit-misc's loess fails, with a signal (SIGSEGV) below 4.
    if varying < MIN_VARYING_GENES:
        raise InputError(f"only {varying} of {adata.n_vars} genes vary across spots: too few for seurat_v3's "
                         f"mean-variance trend (it needs {MIN_VARYING_GENES})",
                         fix="check that X holds the slide's expression, or set hvg.flavor to 'seurat'")
    # On very sparse counts the points are too few and too tied for scanpy's span 0.3, so the
    # span is widened before giving up.
    for span in _LOESS_SPANS:
        try:
            sc.pp.highly_variable_genes(tmp, flavor="seurat_v3", n_top_genes=params.n_top_genes, span=span)
            return tmp.var["highly_variable"].to_numpy()
        except ValueError as exc:       # loess: 'singular', 'svddc failed', 'trL>n'
            log.warning("seurat_v3 HVG: the loess fit with span %.1f failed (%s)", span, exc)
    raise InputError("seurat_v3 cannot fit the mean-variance trend (counts too sparse)",
                     fix="set hvg.flavor to 'seurat', or raise qc.min_counts to drop near-empty spots")


# Genes that must vary across spots for seurat_v3's loess (scikit-misc fails below 10 on small
# slides: a signal with 0-3, errors with 4-8; measured in tests/test_bad_input.py).
MIN_VARYING_GENES = 10


def _varying_genes(x) -> int:
    """How many genes take more than one value across the spots."""
    x = sp.csr_matrix(x)
    if x.shape[0] < 2:
        return 0
    return int((x.max(axis=0).toarray() != x.min(axis=0).toarray()).sum())


# Loess spans tried in turn by the seurat_v3 selection (scanpy's default first).
_LOESS_SPANS = (0.3, 0.5, 1.0)


def transform(x: sp.spmatrix, params: HVGParams) -> sp.csr_matrix:
    """normalize_total -> log1p -> divide each gene by its sd (ddof=1) -> clip; float32 CSR.
    Values that are not counts skip what was done to them already (see the module docstring)."""
    x = sp.csr_matrix(x, dtype=np.float64)
    if params.values == "counts":
        totals = np.asarray(x.sum(axis=1)).ravel()
        scale = np.divide(params.target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
        x = sp.csr_matrix(sp.diags(scale) @ x)
    if params.values != "log_normalized":
        x.data = np.log1p(x.data)
    n = x.shape[0]
    mean = np.asarray(x.mean(axis=0)).ravel()
    sq = np.asarray(x.multiply(x).mean(axis=0)).ravel()
    var = (sq - mean ** 2) * (n / max(n - 1, 1))
    sd = np.sqrt(np.clip(var, 0, None))
    sd[sd == 0] = 1.0
    x = sp.csr_matrix(x @ sp.diags(1.0 / sd))
    np.minimum(x.data, params.max_value, out=x.data)
    return x.astype(np.float32)


def run_hvg(adata: ad.AnnData, params: HVGParams) -> ad.AnnData:
    """HVG subset of ``adata`` with the transformed expression in ``X`` and raw counts in ``layers['counts']``."""
    mask = select_hvg(adata, params)
    out = adata[:, mask].copy()
    out.layers["counts"] = out.X.copy()
    out.X = transform(out.X, params)
    out.uns["hvg"] = {"n_top_genes": params.n_top_genes, "flavor": params.selection_flavor,
                      "target_sum": params.target_sum, "max_value": params.max_value, "values": params.values}
    return out

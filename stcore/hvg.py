"""Highly variable genes and the expression transform the model is trained on.

Follows the reference method: seurat_v3 HVG on raw counts, then normalize_total (1e4),
log1p and per-gene scaling without centring, clipped at 10.  The matrix stays sparse.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import anndata as ad
import numpy as np
import scipy.sparse as sp

__all__ = ["HVGParams", "select_hvg", "transform", "run_hvg"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HVGParams:
    """n_top_genes: genes to keep (3000); all genes are kept when the slide has fewer.
    flavor: scanpy HVG flavour ('seurat_v3' on raw counts, or 'seurat'/'cell_ranger' on
    normalised input). target_sum: library size after normalisation (1e4).
    max_value: clip after scaling (10)."""

    n_top_genes: int = 3000
    flavor: str = "seurat_v3"
    target_sum: float = 1e4
    max_value: float = 10.0


def select_hvg(adata: ad.AnnData, params: HVGParams) -> np.ndarray:
    """Boolean mask of the highly variable genes, computed on the raw counts in ``X``."""
    import scanpy as sc

    if adata.n_vars <= params.n_top_genes:
        log.warning("slide has %d genes, not more than n_top_genes=%d: all genes are used",
                    adata.n_vars, params.n_top_genes)
        return np.ones(adata.n_vars, dtype=bool)
    tmp = ad.AnnData(adata.X.copy(), obs=adata.obs[[]], var=adata.var[[]])
    if params.flavor != "seurat_v3":
        sc.pp.normalize_total(tmp, target_sum=params.target_sum)
        sc.pp.log1p(tmp)
        sc.pp.highly_variable_genes(tmp, flavor=params.flavor, n_top_genes=params.n_top_genes)
        return tmp.var["highly_variable"].to_numpy()
    # seurat_v3 fits a loess of log variance on log mean; on very sparse counts the points are
    # too few and too tied for scanpy's span 0.3, so the span is widened before giving up.
    for span in _LOESS_SPANS:
        try:
            sc.pp.highly_variable_genes(tmp, flavor="seurat_v3", n_top_genes=params.n_top_genes, span=span)
            return tmp.var["highly_variable"].to_numpy()
        except ValueError as exc:
            if "singular" not in str(exc):
                raise
            log.warning("seurat_v3 HVG: the loess fit with span %.1f is singular (%s)", span, exc)
    from .errors import InputError
    raise InputError("seurat_v3 cannot fit the mean-variance trend (counts too sparse)",
                     fix="set hvg.flavor to 'seurat', or raise qc.min_counts to drop near-empty spots")


# Loess spans tried in turn by the seurat_v3 selection (scanpy's default first).
_LOESS_SPANS = (0.3, 0.5, 1.0)


def transform(x: sp.spmatrix, params: HVGParams) -> sp.csr_matrix:
    """normalize_total -> log1p -> divide each gene by its sd (ddof=1) -> clip; float32 CSR."""
    x = sp.csr_matrix(x, dtype=np.float64)
    totals = np.asarray(x.sum(axis=1)).ravel()
    scale = np.divide(params.target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
    x = sp.csr_matrix(sp.diags(scale) @ x)
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
    out.uns["hvg"] = {"n_top_genes": params.n_top_genes, "flavor": params.flavor,
                      "target_sum": params.target_sum, "max_value": params.max_value}
    return out

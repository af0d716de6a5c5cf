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
from .validate import VALUES, check_values_kind

__all__ = ["HVGParams", "select_hvg", "seurat_v3", "transform", "run_hvg", "used_genes"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HVGParams:
    """n_top_genes: genes to keep (3000); all genes are kept when the slide has fewer.
    flavor: HVG flavour ('seurat_v3' on raw counts, :func:`seurat_v3`; or scanpy's
    'seurat'/'cell_ranger' on normalised input). target_sum: library size after normalisation (1e4).
    scale: divide each gene by its sd and clip at ``max_value`` (True, as the reference); False
    keeps the log1p values unscaled.  max_value: clip after scaling (10).  values: what ``X``
    holds (counts, normalized, log_normalized; the sample sheet's ``values``)."""

    n_top_genes: int = 3000
    flavor: str = "seurat_v3"
    target_sum: float = 1e4
    scale: bool = True
    max_value: float = 10.0
    values: str = "counts"

    def __post_init__(self):
        check_values_kind(self.values)

    @property
    def selection_flavor(self) -> str:
        """seurat_v3 needs raw counts; other values select with seurat."""
        return "seurat" if self.values != "counts" and self.flavor == "seurat_v3" else self.flavor



def select_hvg(adata: ad.AnnData, params: HVGParams) -> np.ndarray:
    """Boolean mask of the highly variable genes, computed on the raw counts in ``X``."""
    varying = _varying_genes(adata.X)
    if varying == 0:
        raise InputError("no gene varies across spots (every gene has the same value in every spot)",
                         fix="check that X holds the slide's expression (not one spot's row repeated, or a "
                             "placeholder)")
    if adata.n_vars == params.n_top_genes:        # as asked (the demo's 3000 of 3000): no warning
        log.info("slide has %d genes, n_top_genes=%d: all genes are used", adata.n_vars, params.n_top_genes)
        return np.ones(adata.n_vars, dtype=bool)
    if adata.n_vars < params.n_top_genes:
        log.warning("slide has %d genes, not more than n_top_genes=%d: all genes are used",
                    adata.n_vars, params.n_top_genes)
        return np.ones(adata.n_vars, dtype=bool)
    flavor = params.selection_flavor
    if flavor != params.flavor:
        log.info("values are %s, not counts: genes selected with hvg flavour %s", params.values, flavor)
    if flavor != "seurat_v3":
        import scanpy as sc

        tmp = ad.AnnData(adata.X.copy(), obs=adata.obs[[]], var=adata.var[[]])
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
    x = sp.csr_matrix(adata.X)
    for span in _LOESS_SPANS:
        try:
            return seurat_v3(x, params.n_top_genes, span=span)
        except ValueError as exc:       # loess: 'singular', 'svddc failed', 'trL>n'
            log.warning("seurat_v3 HVG: the loess fit with span %.1f failed (%s)", span, exc)
    raise InputError("seurat_v3 cannot fit the mean-variance trend (counts too sparse)",
                     fix="set hvg.flavor to 'seurat', or raise qc.min_counts to drop near-empty spots")


def seurat_v3(x: sp.csr_matrix, n_top_genes: int, *, span: float = 0.3, block: int = 1 << 22) -> np.ndarray:
    """Boolean mask of the ``n_top_genes`` genes of highest variance after the variance
    stabilisation of Seurat v3 (Stuart et al. 2019), on raw counts ``x`` (spots x genes, CSR):

    a loess (degree 2, ``span``; scikit-misc) of log10 variance on log10 mean over the genes
    that vary gives each gene an expected sd; every count is clipped at mean + sd * sqrt(N);
    genes are ranked by the variance of their standardised clipped counts.

    The same numbers as scanpy 1.11's ``highly_variable_genes(flavor='seurat_v3')``, without
    importing scanpy (about 2 s of the hvg job) or compiling its numba kernels.  scanpy splits
    the column sums over as many partial sums as numba has threads: on counts (integers) every
    sum is exact in any order; on other values this adds them up as scanpy does on two threads
    (the setting of every result in docs/), whatever the machine's core count.  Checked
    against scanpy in tests/test_exact_rewrites.py."""
    norm_gene_var = seurat_v3_variance(x, span=span, block=block)
    # argsort twice gives ranks (0: the most variable), as a 1 x G array as scanpy ranks it.
    ranks = np.argsort(np.argsort(-norm_gene_var.reshape(1, -1), axis=1), axis=1)[0]
    return ranks < n_top_genes


def seurat_v3_variance(x: sp.csr_matrix, *, span: float = 0.3, block: int = 1 << 22) -> np.ndarray:
    """The variance of each gene's standardised clipped counts that :func:`seurat_v3` ranks
    (scanpy's ``var['variances_norm']``); ``block`` entries at a time."""
    from skmisc.loess import loess

    n = x.shape[0]
    mean, var = _mean_var_columns(x, block=block)
    not_const = var > 0
    estimat_var = np.zeros(x.shape[1], dtype=np.float64)
    model = loess(np.log10(mean[not_const]), np.log10(var[not_const]), span=span, degree=2)
    model.fit()
    estimat_var[not_const] = model.outputs.fitted_values
    reg_std = np.sqrt(10**estimat_var)
    clip_val = reg_std * np.sqrt(n) + mean
    # Sum and sum of squares of the clipped counts, entry by entry in storage order.
    squares, sums = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    for lo in range(0, x.nnz, block):
        cols = x.indices[lo:lo + block]
        clipped = np.minimum(x.data[lo:lo + block].astype(np.float64), clip_val[cols])
        np.add.at(sums, cols, clipped)
        clipped *= clipped
        np.add.at(squares, cols, clipped)
    return (1 / ((n - 1) * np.square(reg_std))) * ((n * np.square(mean)) + squares - 2 * sums * mean)


def _mean_var_columns(x: sp.csr_matrix, parts: int = 2, block: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """Column means and unbiased variances of ``x``: row r's entries go to partial sum
    r % ``parts`` in storage order, the partial sums are then added in turn from 0 (scanpy's
    numba kernel on ``parts`` threads); squares in the entries' own type, as the kernel
    squares them (integers as 64-bit integers).  About ``block`` entries at a time.  (The
    transform's :func:`_column_means` adds up in another order, scipy's, which it reproduces.)"""
    n, g = x.shape
    sums, sq = np.zeros((parts, g)), np.zeros((parts, g))
    for r0, r1, lo, hi in _row_blocks(x.indptr, block):
        part = np.repeat(np.arange(r0, r1) % parts, np.diff(x.indptr[r0:r1 + 1]))
        values, cols = x.data[lo:hi], x.indices[lo:hi]
        if values.dtype.kind in "iub":
            values = values.astype(np.int64)
        # float64 operands before adding (np.add.at's fast path; the kernel converts them too)
        squares, values = (values * values).astype(np.float64), values.astype(np.float64)
        for k in range(parts):
            on = part == k
            np.add.at(sums[k], cols[on], values[on])
            np.add.at(sq[k], cols[on], squares[on])
    total, total_sq = np.zeros(g), np.zeros(g)
    for k in range(parts):
        total, total_sq = total + sums[k], total_sq + sq[k]
    mean = total / n
    var = total_sq / n - (total / n) ** 2
    if n != 1:
        var *= n / (n - 1)
    return mean, var


def _row_blocks(indptr: np.ndarray, block: int):
    """(first row, end row, first entry, end entry) of consecutive runs of whole rows of a CSR
    matrix holding about ``block`` entries each (a row longer than ``block`` is a run alone)."""
    n_rows, nnz = len(indptr) - 1, int(indptr[-1])
    starts = np.searchsorted(indptr, np.arange(0, nnz, block), side="right") - 1
    bounds = np.unique(np.append(starts, n_rows))
    for r0, r1 in zip(bounds[:-1], bounds[1:]):
        yield int(r0), int(r1), int(indptr[r0]), int(indptr[r1])


# Genes that must vary across spots for seurat_v3's loess (scikit-misc fails below 10 on small
# slides: a signal with 0-3, errors with 4-8; measured in tests/test_bad_input.py).
MIN_VARYING_GENES = 10


def _varying_genes(x, block: int = 1 << 22) -> int:
    """How many genes take more than one value across the spots: each gene's largest and
    smallest stored value, ``block`` entries at a time, and 0 where it has fewer stored values
    than spots (scipy's ``max(axis=0)`` / ``min(axis=0)`` each make a CSC copy of the slide:
    1.5 GB and 8 s at 10^6 spots)."""
    x = sp.csr_matrix(x)
    n, g = x.shape
    if n < 2:
        return 0
    if not x.has_canonical_format:      # duplicate entries add up, as in scipy
        x = x.copy()
        x.sum_duplicates()
    high, low, stored = np.full(g, -np.inf), np.full(g, np.inf), np.zeros(g, dtype=np.int64)
    for lo in range(0, x.nnz, block):
        cols, values = x.indices[lo:lo + block], x.data[lo:lo + block].astype(np.float64)
        np.maximum.at(high, cols, values)
        np.minimum.at(low, cols, values)
        stored += np.bincount(cols, minlength=g)
    zeros = stored < n          # genes with a spot at 0
    high[zeros], low[zeros] = np.maximum(high[zeros], 0), np.minimum(low[zeros], 0)
    return int((high != low).sum())


# Loess spans tried in turn by the seurat_v3 selection (scanpy's default first).
_LOESS_SPANS = (0.3, 0.5, 1.0)


def transform(x: sp.spmatrix, params: HVGParams) -> sp.csr_matrix:
    """normalize_total -> log1p -> divide each gene by its sd (ddof=1) -> clip (the last two
    only with ``params.scale``); float32 CSR.
    Values that are not counts skip what was done to them already (see the module docstring).

    Works on one float64 copy of ``x``, in place (``x`` itself is never written): at 10^6
    spots each further copy is 2.2 GB of the hvg job's peak.  Every value is the same bits as
    the same steps with scipy's products by diagonal matrices (tests/test_exact_rewrites.py)."""
    x = sp.csr_matrix(x).astype(np.float64)           # a copy: data, indices and indptr
    if not x.has_canonical_format:
        x.sum_duplicates()
    if params.values == "counts":
        totals = np.asarray(x.sum(axis=1)).ravel()
        scale = np.divide(params.target_sum, totals, out=np.zeros_like(totals), where=totals > 0)
        _scale_entries(x, scale, rows=True)
    if params.values != "log_normalized":
        np.log1p(x.data, out=x.data)
    if params.scale:
        _scale_genes(x, params.max_value)
    return sp.csr_matrix((x.data.astype(np.float32), x.indices, x.indptr), shape=x.shape)   # x's indices


def _scale_genes(x: sp.csr_matrix, max_value: float) -> None:
    """Divide each column of ``x`` by its sd (ddof=1; 1 where 0), then clip at ``max_value``; in place."""
    n = x.shape[0]
    mean = _column_means(x)
    sq = _column_means(x, squared=True)
    var = (sq - mean ** 2) * (n / max(n - 1, 1))
    sd = np.sqrt(np.clip(var, 0, None))
    sd[sd == 0] = 1.0
    _scale_entries(x, 1.0 / sd, rows=False)
    np.minimum(x.data, max_value, out=x.data)


def _scale_entries(x: sp.csr_matrix, factor: np.ndarray, *, rows: bool, block: int = 1 << 22) -> None:
    """``x[i, j] *= factor[i]`` (rows) or ``factor[j]`` (columns) in place, ``block`` entries at
    a time, then drop the entries that became 0: the values and the stored entries of
    ``diags(factor) @ x`` or ``x @ diags(factor)`` (each entry one product; scipy drops zeros)."""
    if rows:
        for r0, r1, lo, hi in _row_blocks(x.indptr, block):
            x.data[lo:hi] *= np.repeat(factor[r0:r1], np.diff(x.indptr[r0:r1 + 1]))
    else:
        for lo in range(0, x.nnz, block):
            hi = min(lo + block, x.nnz)
            x.data[lo:hi] *= factor[x.indices[lo:hi]]
    x.eliminate_zeros()


def _column_means(x: sp.csr_matrix, *, squared: bool = False, block: int = 1 << 22) -> np.ndarray:
    """Column means of ``x`` (or of its squares), the same bits as scipy's ``mean(axis=0)``:
    each value times 1/n, then each column's values added up in storage order from 0.  scipy
    forms a scaled copy of the whole matrix for it (2.2 GB at 10^6 spots); this adds up
    ``block`` entries at a time into the same sums (np.add.at, in order, like np.bincount)."""
    sums = np.zeros(x.shape[1])
    for lo in range(0, x.nnz, block):
        values = x.data[lo:lo + block] * x.data[lo:lo + block] if squared else x.data[lo:lo + block].copy()
        values *= 1.0 / x.shape[0]
        np.add.at(sums, x.indices[lo:lo + block], values)
    return sums


def run_hvg(adata: ad.AnnData, params: HVGParams) -> ad.AnnData:
    """HVG subset of ``adata`` with the transformed expression in ``X`` and raw counts in ``layers['counts']``."""
    mask = select_hvg(adata, params)
    out = adata[:, mask].copy()
    # transform() never writes into its input, so the counts layer is the subset's own matrix,
    # not a copy of it (at 10^6 spots a copy is 1.5 GB of the step's peak).
    counts = out.X
    out.X = transform(counts, params)
    out.layers["counts"] = counts
    out.uns["hvg"] = {**used_genes(int(mask.sum()), params.n_top_genes), "flavor": params.selection_flavor,
                      "target_sum": params.target_sum, "max_value": params.max_value, "values": params.values}
    return out


def used_genes(used: int, asked: int) -> dict:
    """The record of how many genes were used: ``n_top_genes`` the number selected, and where that is
    fewer than asked (a slide of fewer genes: all are used) ``n_top_genes_asked`` beside it."""
    return {"n_top_genes": used} if used == asked else {"n_top_genes": used, "n_top_genes_asked": int(asked)}

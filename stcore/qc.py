"""Quality control of spots and genes on raw counts."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import anndata as ad
import numpy as np
import pandas as pd

__all__ = ["QCParams", "qc_masks", "run_qc"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QCParams:
    """Thresholds; a spot is kept when it passes all of them.

    min_counts: least total counts per spot (default 0).
    min_genes: least detected genes (non-zero values) per spot (default 0).
    min_spots: least spots in which a gene is detected for the gene to be kept (default 1).
    max_mito_pct: largest share (percent) of counts from mitochondrial genes (default 100: off).
        Below 100 it needs genes named with ``mito_prefix``; a slide without any (Ensembl ids
        as gene names, say) is an :class:`stcore.InputError`, not a filter that keeps every spot.
    mito_prefix: gene-name prefixes that mark mitochondrial genes (case-insensitive).
    """

    min_counts: float = 0
    min_genes: int = 0
    min_spots: int = 1
    max_mito_pct: float = 100.0
    mito_prefix: tuple[str, ...] = ("MT-", "mt-")


def _detected_genes(x) -> np.ndarray:
    """Genes with a non-zero value in each spot: a CSR matrix's stored entries less its explicitly
    stored zeros (a stored entry is not a detected gene)."""
    if not hasattr(x, "indptr"):
        return np.asarray((x != 0).sum(axis=1)).ravel()
    if not x.has_canonical_format:          # an entry stored twice is one gene
        x = x.copy()
        x.sum_duplicates()
    genes = np.diff(x.indptr)
    zeros = np.flatnonzero(x.data == 0)
    if zeros.size:
        genes = genes - np.bincount(np.searchsorted(x.indptr, zeros, side="right") - 1, minlength=x.shape[0])
    return genes


def qc_masks(adata: ad.AnnData, params: QCParams, values: str = "counts") -> tuple[np.ndarray, np.ndarray, dict]:
    """Boolean masks of kept spots and kept genes, and a small report.  ``values``: what X holds
    (the sample sheet's values column).  ``min_counts`` is a total of raw counts, so it filters
    counts only: normalised values sum to one total in every spot and log-normalised ones to a
    sum of logs, neither a spot's counts (the report's ``min_counts_applied`` says which).  The
    mitochondrial share of log-normalised values is taken of their expm1, the normalised values,
    whose share is the counts'."""
    x = adata.X
    counts = np.asarray(x.sum(axis=1)).ravel()
    genes = _detected_genes(x)
    mito = _named_mito(adata.var_names, params)
    if not mito.any() and _filters_mito(params):
        _no_mito_genes(adata, params)
    linear = x
    if values == "log_normalized" and mito.any() and _filters_mito(params):
        linear = x.copy()
        if hasattr(linear, "data"):
            linear.data = np.expm1(linear.data)
        else:
            linear = np.expm1(linear)
    total = np.asarray(linear.sum(axis=1)).ravel() if linear is not x else counts
    mito_counts = np.asarray(linear[:, mito].sum(axis=1)).ravel() if mito.any() else np.zeros_like(counts)
    mito_pct = np.divide(100 * mito_counts, total, out=np.zeros_like(counts, dtype=float), where=total > 0)
    by_counts = values == "counts"
    spot_ok = (genes >= params.min_genes) & (mito_pct <= params.max_mito_pct)
    if by_counts:
        spot_ok &= counts >= params.min_counts
    spot_ok &= counts > 0
    spots_per_gene = np.asarray((x[spot_ok] > 0).sum(axis=0)).ravel()
    gene_ok = spots_per_gene >= params.min_spots
    report = {
        "spots_in": int(adata.n_obs), "genes_in": int(adata.n_vars),
        "spots_kept": int(spot_ok.sum()), "genes_kept": int(gene_ok.sum()),
        "spots_removed_empty": int((counts == 0).sum()),
        "mito_genes": int(mito.sum()), "params": asdict(params),
        "min_counts_applied": bool(by_counts or not params.min_counts),
    }
    return spot_ok, gene_ok, report


def _named_mito(names, params: QCParams) -> np.ndarray:
    """Which of ``names`` start with one of ``params.mito_prefix`` (case-insensitive), also behind
    the genome a reference of several genomes puts in front of each gene (Cell Ranger's
    'GRCh38_MT-CO1', 'mm10___mt-Co1', 'hg19_MT-CO1': a name, then one or more '_')."""
    import re

    if not params.mito_prefix:
        return np.zeros(len(names), dtype=bool)
    prefixes = "|".join(re.escape(p) for p in params.mito_prefix)
    return np.asarray(pd.Index(names).astype(str).str.contains(rf"^(?:[A-Za-z0-9.]+_+)?(?:{prefixes})",
                                                                 case=False, regex=True))


def _filters_mito(params: QCParams) -> bool:
    """Whether ``max_mito_pct`` removes anything: below 100 (100, the default, or None: off)."""
    return params.max_mito_pct is not None and float(params.max_mito_pct) < 100


def _no_mito_genes(adata: ad.AnnData, params: QCParams) -> None:
    """``qc.max_mito_pct`` filters but no gene is mitochondrial by name: refused, since the filter
    would keep every spot without a word (the default, 100, is off, so the user asked for it)."""
    from .errors import InputError

    names = adata.var_names.astype(str)
    prefixes = "/".join(params.mito_prefix)
    ens = names[names.str.upper().str.startswith("ENS")]
    why = f" (the names look like Ensembl ids, e.g. '{ens[0]}')" if len(ens) > len(names) / 2 else ""
    # R's make.names (read.csv's check.names, a data.frame of genes as columns) writes 'MT-CO1' as 'MT.CO1'
    dotted = names[names.str.fullmatch(r"(?i)mt[._][A-Za-z0-9]+(?:[._][A-Za-z0-9]+)*")]
    if len(dotted) >= 2 and not why:
        sep = dotted[0][2]
        raise InputError(
            f"qc.max_mito_pct={params.max_mito_pct:g} filters on mitochondrial genes, but no gene name starts with "
            f"{prefixes}; {len(dotted)} start with 'MT{sep}' (first: '{dotted[0]}'): mitochondrial genes whose '-' was "
            f"written '{sep}', as R's make.names (read.csv's check.names) writes it, so no spot would be removed",
            fix=f"write their '{sep}' as '-' and write the file again: adata.var_names = adata.var_names.str.replace("
                f"r'^(MT|mt|Mt)\\{sep}', r'\\1-', regex=True); or set qc.max_mito_pct: 100 (off) in the config")
    where = ""
    for col in adata.var.columns:                     # a column that holds the symbols, as 10x's gene_symbols
        if _named_mito(adata.var[col], params).any():
            where = f" (var['{col}'] holds them)"
            break
    fly = names[names.str.match(r"mt:")]
    if len(fly) and not where:
        # FlyBase names Drosophila's mitochondrial genes 'mt:CoI', 'mt:ND1', ...
        raise InputError(
            f"qc.max_mito_pct={params.max_mito_pct:g} filters on mitochondrial genes, but no gene name starts with "
            f"{prefixes}; {len(fly)} start with 'mt:' (first: '{fly[0]}'): Drosophila's mitochondrial genes as FlyBase "
            "names them, so no spot would be removed",
            fix="write their 'mt:' as 'mt-' and write the file again: adata.var_names = adata.var_names.str.replace("
                "r'^mt:', 'mt-', regex=True); or set qc.max_mito_pct: 100 (off) in the config")
    if not why and not where:
        # names that are not Ensembl ids, and no column of mitochondrial names: a panel or a subset of genes
        # without them (DLPFC 151673's 5,000 genes, STARmap's 166), whose names need no change
        shown = ", ".join(f"'{n}'" for n in names[:3])
        raise InputError(
            f"qc.max_mito_pct={params.max_mito_pct:g} filters on mitochondrial genes, but no gene name starts with "
            f"{prefixes} (names such as {shown}), and no var column holds such names: the slide measures no "
            "mitochondrial gene (a gene panel, or a matrix they were left out of), so no spot would be removed",
            fix="set qc.max_mito_pct: 100 (off) in the config; if the names are not gene symbols, store the symbols in "
                "var_names")
    raise InputError(
        f"qc.max_mito_pct={params.max_mito_pct:g} filters on mitochondrial genes, but no gene name starts "
        f"with {prefixes}{why}, so no spot would be removed",
        fix=f"store gene symbols in var_names{where}, or set qc.max_mito_pct: 100 (off) in the config")


def run_qc(adata: ad.AnnData, params: QCParams, values: str = "counts", *,
           path: str | None = None) -> tuple[ad.AnnData, dict]:
    """Filter ``adata`` by :func:`qc_masks`; returns the filtered copy and the report.  Where
    ``qc.min_counts`` is set on values that are not counts, a warning says it is not applied."""
    spot_ok, gene_ok, report = qc_masks(adata, params, values)
    if not report["min_counts_applied"]:
        kind = "normalised values sum to one total in every spot" if values == "normalized" else \
            "log-normalised values sum to a total of logs"
        log.warning("%sqc.min_counts=%g is not applied: it filters spots by their total raw counts, but values is %s, "
                    "and %s, not a spot's counts (qc.min_genes and qc.max_mito_pct are applied). Fix: give the raw "
                    "counts (values counts) to filter by counts, or set qc.min_counts: 0", f"{path}: " if path else "",
                    params.min_counts, values, kind)
    log.info("QC keeps %d of %d spots and %d of %d genes", report["spots_kept"], report["spots_in"],
             report["genes_kept"], report["genes_in"])
    return adata[spot_ok][:, gene_ok].copy(), report


def prepare_slide(path: str, fmt: str, params: QCParams, *, truth: str = "", n_clusters: int | str = 2,
                  n_neighbors: int = 3, values: str = "counts", hvg_flavor: str = "seurat_v3",
                  integer_counts: bool | None = None, bin_size: int | None = None) -> tuple[ad.AnnData, dict]:
    """Read a slide, check everything later stages rely on, and apply QC.

    Raises :class:`stcore.InputError` naming ``path`` when the slide cannot be used:
    unreadable file, bad coordinates or counts, duplicate spot ids, a missing or empty truth
    column, ``n_clusters`` < 2, ``max_mito_pct`` below 100 with no mitochondrial gene name, QC
    removing every spot or gene, or too few spots left for the graph or for ``n_clusters``.  The
    sha256 of the input is kept in ``uns['provenance']``.
    The slide's checks are those of :mod:`stcore.validate`, which :func:`stcore.tl.domains`
    runs too.  ``values`` and ``hvg_flavor``: what X holds and the HVG flavour, which decide
    whether the values must be whole numbers (:func:`stcore.validate.needs_integer`);
    ``integer_counts`` overrides that decision.  ``bin_size``: a stereo slide's square bins, in DNBs
    (None: :data:`stcore.formats.STEREO_BIN`).
    """
    from .errors import InputError
    from .evaluate import is_missing_label
    from .io import read_slide
    from .provenance import input_digest
    from .validate import (check_counts, check_logged_mark, check_n_clusters, check_truth, check_values_match,
                           counts_beside, needs_integer, output_key)

    n_clusters = check_n_clusters(n_clusters, path=path)
    auto = n_clusters == "auto"           # chosen later, by BIC in the cluster step
    adata = read_slide(path, fmt, bin_size=bin_size)
    integer = needs_integer(values, hvg_flavor) if integer_counts is None else integer_counts
    try:
        check_counts(adata.X, path, integer=integer, values=values, spots=adata.obs_names, genes=adata.var_names)
        check_values_match(adata.X, values, path=path, whole=True if integer else None, marked="log1p" in adata.uns)
    except InputError as exc:          # the raw counts kept beside a normalised or scaled X, as Seurat's conversions do
        raise (counts_beside(adata, exc, path=path, file="spatialdata" if str(fmt).lower().endswith("spatialdata")
                             else True) or exc) from None
    check_logged_mark(adata, adata.X, values, path=path)
    output_key(adata, path=path)          # the column domains.h5ad will write (refused now, not after training)
    if truth:
        for line in check_truth(adata, truth, path=path, fmt=fmt):
            log.warning("%s: %s", path, line)
    n_labelled = int((~is_missing_label(adata.obs[truth])).sum()) if truth else 0
    try:
        adata, report = run_qc(adata, params, values, path=path)
    except InputError as exc:
        raise exc.located(path=path) from None
    n = adata.n_obs
    if n == 0:
        raise InputError(f"QC removed every spot (of {report['spots_in']})", path=path,
                         fix="lower the qc thresholds in the config")
    if report["genes_kept"] == 0:
        raise InputError(f"QC removed every gene (of {report['genes_in']})", path=path,
                         fix="lower qc.min_spots in the config")
    if truth and is_missing_label(adata.obs[truth]).all():     # labels before QC (checked above), none after
        raise InputError(f"QC removed every annotated spot (the {n_labelled} spots with a label in truth column "
                         f"'{truth}' all fail its thresholds); every score would be n/a",
                         path=path, fix="lower the qc thresholds in the config (qc.min_counts, qc.min_genes, "
                                        "qc.max_mito_pct), or leave the truth column empty")
    if n <= n_neighbors:
        raise InputError(f"{n} spots after QC, not more than the {n_neighbors} graph neighbours", path=path,
                         fix="lower graph.n_neighbors or check the slide")
    if not auto:
        check_n_clusters(n_clusters, n, path=path, after_qc=True)
    # Carried through every later stage's h5ad so results can name the exact input.
    adata.uns["provenance"] = {"input_path": str(path), "format": str(fmt),
                               "input_sha256": input_digest(path, getattr(fmt, "value", fmt))}
    report["input_sha256"] = adata.uns["provenance"]["input_sha256"]
    return adata, report

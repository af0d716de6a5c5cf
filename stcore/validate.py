"""Checks of a slide and of the settings, shared by the workflow's jobs and the notebook API.

The workflow's ``qc`` job (:func:`stcore.qc.prepare_slide`, through the readers of
:mod:`stcore.io`), its ``hvg`` job (:class:`stcore.hvg.HVGParams`), its ``export`` job
(:func:`stcore.export.domains_adata`) and :func:`stcore.tl.domains` call these functions, so
the same bad slide gets the same message on either path.  Each raises
:class:`stcore.errors.InputError` (one line: the file or key, what is wrong, the fix); the
workflow adds the sample id.

- values: :func:`check_values` (what ``X`` holds: ``counts``, ``normalized`` or
  ``log_normalized``, the sample sheet's ``values``), :func:`needs_integer`;
- coordinates: :func:`check_coordinates` (present under the key, numeric, finite, not all at one
  point; two columns, or a named choice of two when there are more; of one slide: not several
  slides' spots in one object, :func:`check_one_slide`);
- spots: :func:`check_in_tissue` (none outside the tissue, Space Ranger's ``in_tissue`` 0);
- tissue images: :func:`images_out_of_register` (the spots of an ``.h5ad`` off its ``uns['spatial']``
  images, at an image's scale or beyond its edge: a warning; :func:`image_register_problem`, the rule
  ``stcore.pl.domains`` draws by);
- ids: :func:`check_ids` (unique spot ids without tabs or line breaks; unique gene ids);
  :func:`check_slide` runs the slide's checks in turn;
- settings: :func:`check_settings` (the ``train:`` and ``cluster:`` keys against the config
  schema shipped in the package, :data:`CONFIG_SCHEMA`), :func:`check_n_clusters` and
  :func:`check_clustering` (the number of domains, the method and its clustering, before any
  training);
- output keys: :func:`check_key`, :func:`key_is_free`, :func:`output_key` (a column that stcore
  did not write is never overwritten).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import InputError
from .plan.settings import RENAMED

if TYPE_CHECKING:
    import anndata as ad

__all__ = ["VALUES", "CONFIG_SCHEMA", "config_schema", "needs_integer", "check_values_kind", "check_values", "as_x_y",
           "check_values_match", "check_counts", "check_logged_mark",
           "check_coordinates", "check_one_slide", "check_in_tissue", "check_ids", "check_slide", "check_settings",
           "check_n_clusters", "check_clustering", "check_key", "key_is_free", "output_key", "clustered_by",
           "CLUSTER_COLUMNS", "coordinate_of_spots", "measured_per_spot", "annotation_pattern",
           "unordered_annotation"]

log = logging.getLogger(__name__)

# What a slide's X can hold (the sample sheet's `values` column; tl.domains' `values=`).
VALUES = ("counts", "normalized", "log_normalized")
# The config schema: the one file the workflow's parse step (rules/common.smk) and
# check_settings read.  Package data (pyproject.toml), so an installed stcore carries it.
CONFIG_SCHEMA = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"
_SCHEMA_NAME = "stcore/schemas/config.schema.yaml"


# --- values -----------------------------------------------------------------------------------

def needs_integer(values: str = "counts", flavor: str = "seurat_v3") -> bool:
    """Whether the values must be whole numbers: raw counts whose genes seurat_v3 selects (it
    models counts).  The qc job and :func:`stcore.tl.domains` decide by this one rule."""
    return values == "counts" and flavor == "seurat_v3"


def check_values_kind(values: str, *, path: str | None = None) -> str:
    """``values`` itself: one of :data:`VALUES`."""
    if values not in VALUES:
        raise InputError(f"values '{values}' is not known", path=path, fix=f"use one of {list(VALUES)}")
    return values


def check_values(x, values: str = "counts", *, flavor: str = "seurat_v3", path: str | None = None,
                 spots=None, genes=None, marked: bool = False) -> None:
    """Raise unless ``x`` (spots x genes, sparse or dense) can be taken as ``values``:
    a known kind (:data:`VALUES`); no NaN, infinite or negative value; whole numbers where
    :func:`needs_integer` says so (log-normalised values given as counts are refused here); and
    values that are not what ``values`` says by their spots' totals (:func:`check_values_match`;
    ``marked``: scanpy's log1p marked the slide, as there)."""
    check_values_kind(values, path=path)
    integer = needs_integer(values, flavor)
    check_counts(x, path, integer=integer, values=values, spots=spots, genes=genes)
    check_values_match(x, values, path=path, whole=True if integer else None, marked=marked)


def _non_finite(x, spots=None, genes=None) -> tuple[str, str | None]:
    """Where the NaN or infinite values of ``x`` lie, in words, and the fix where they fill whole
    genes (a table reindexed to genes it did not measure: NaN in every spot) or whole spots (values
    divided by a spot's total or volume of 0), else None.  ``spots``, ``genes``: their names."""
    import scipy.sparse as sp

    if sp.issparse(x):
        coo = sp.coo_matrix(x)
        bad = ~np.isfinite(coo.data)
        rows, cols = coo.row[bad], coo.col[bad]
    else:
        rows, cols = np.nonzero(~np.isfinite(np.asarray(x)))
    n, g = x.shape
    per_gene, per_spot = np.bincount(cols, minlength=g), np.bincount(rows, minlength=n)

    def first(names, i) -> str:
        return f"'{names[int(i)]}'" if names is not None else f"#{int(i)}"

    whole_genes, whole_spots = np.flatnonzero(per_gene == n), np.flatnonzero(per_spot == g)
    if whole_genes.size and per_gene[per_gene < n].sum() == 0:
        return (f"{whole_genes.size} of its {g} genes are NaN or infinite in every spot (first: "
                f"{first(genes, whole_genes[0])}): genes the slide did not measure (a table reindexed to other genes, "
                "or joined with another's?)",
                "drop those genes: adata = adata[:, np.isfinite(np.asarray(adata.X.sum(axis=0))).ravel()].copy()")
    if whole_spots.size and per_spot[per_spot < g].sum() == 0:
        return (f"{whole_spots.size} of its {n} spots are NaN or infinite in every gene (first: "
                f"{first(spots, whole_spots[0])}): values divided by a spot's total or volume of 0?",
                "drop those spots: adata = adata[np.isfinite(np.asarray(adata.X.sum(axis=1))).ravel()].copy()")
    spread = np.unique(rows).size, np.unique(cols).size
    return (f"{rows.size} of them, in {spread[0]} spots and {spread[1]} genes (first: spot {first(spots, rows[0])}, "
            f"gene {first(genes, cols[0])})", None)


def check_counts(x, path: str | None = None, *, integer: bool = True, values: str = "counts",
                 spots=None, genes=None) -> None:
    """Raise if ``x`` has NaN, infinite or negative values, True/False values (dtype bool: detection,
    not counts), no value other than 0, or (``integer``) non-integer ones.  ``spots``, ``genes``:
    their names, for the message."""
    data = x.data if hasattr(x, "indptr") else np.asarray(x)
    if values == "counts":
        what, fix = "the count matrix", "store raw counts in X"
    else:
        what, fix = f"X (values '{values}')", "store the slide's normalised values in X (before any centring)"
    if not np.isfinite(data).all():
        where, whole = _non_finite(x, spots, genes)
        raise InputError(f"{what} holds NaN or infinite values: {where}", path=path, fix=whole or fix)
    if data.dtype == bool:
        # binarised detection (X > 0) stored as booleans: each True would be read as a count of 1, every
        # spot's depth as its number of detected genes and every gene's variance as its detection rate's
        raise InputError(f"{what} holds True/False values (dtype bool): which genes were detected in each spot, not "
                         "how many counts; each would be taken as a count of 1", path=path,
                         fix="store the raw counts in X (those the detections were made from), not X > 0")
    if x.shape[0] and x.shape[1] and not np.any(data):
        # an X of zeros, the values in a layer or .raw (counts_beside names them): every spot would
        # be dropped as empty, or put into domains without any signal
        raise InputError(f"{what} holds no value other than 0 ({x.shape[0]} spots x {x.shape[1]} genes): no spot "
                         "has any signal", path=path,
                         fix="store the slide's raw counts in X" if values == "counts" else
                         f"store the slide's {values.replace('_', '-')} values in X")
    if (data < 0).any():
        if data.dtype in (np.int8, np.int16):
            # counts cast to a small integer type (X.astype(np.int8)): those above its largest number
            # wrap round to negative ones, which would otherwise be named as scaled values
            top, n = np.iinfo(data.dtype).max, int((data < 0).sum())
            raise InputError(f"{what} is stored as {data.dtype} and holds {n} negative value{'s' if n > 1 else ''} "
                             f"(down to {int(data.min())}): counts above {top} do not fit {data.dtype} and wrap round "
                             f"to negative numbers when cast to it (X.astype(np.{data.dtype})), not scaled values",
                             path=path, fix=f"store the counts as int32 or float32 from their source (e.g. adata.X = "
                                            f"adata.X.astype(np.float32) on the counts before the {data.dtype} cast)")
        if values == "counts":
            raise InputError("the count matrix holds negative values; raw counts are needed", path=path,
                             fix="store raw (non-negative integer) counts in X, not scaled values")
        raise InputError(f"{what} holds negative values (scaled or centred values?)", path=path,
                         fix="store non-negative normalised values in X, before scaling")
    if integer and not np.array_equal(data, np.round(data)):
        off = _rounding_off(data)
        if off is not None:
            raise InputError(f"the count matrix holds whole numbers up to {float(data.max()):g} stored with rounding "
                             f"error (each within {off:.2g} of a whole number, as a float conversion or np.expm1 of a "
                             "float32 log1p leaves them); raw counts are needed", path=path,
                             fix="round them to whole numbers before writing the file (adata.X.data = "
                                 "np.rint(adata.X.data)) and keep values counts")
        raise InputError("the count matrix holds non-integer values; raw counts are needed", path=path,
                         fix="store raw integer counts in X; or say what X holds in the sample sheet's values "
                             "column (in stcore.tl.domains: values=...): log_normalized after normalize_total and "
                             "log1p (most published .h5ad files), normalized after a normalisation without the log "
                             "(e.g. MERFISH volume-normalised); hvg.flavor 'seurat' (hvg_flavor='seurat') only for "
                             "counts that are not whole numbers (e.g. ambient-corrected)")


def counts_beside(adata: ad.AnnData, refusal: InputError, *, path: str | None = None,
                  file: bool | str = False) -> InputError | None:
    """Where X was refused for non-integer or negative values or for holding zeros only
    (:func:`check_counts`), or for values scaled per gene (:func:`check_values_match`), and a layer or
    ``adata.raw`` holds whole numbers, as scanpy's tutorials and Seurat's conversions (SeuratDisk,
    sceasy: X the log-normalised data, ``.raw`` the counts) leave them: the refusal that names them,
    with the fix for the notebook API (pass the layer) or, ``file``, for the workflow's file (store
    them in X and write it again; ``file='spatialdata'``: in the store's table, ``adata`` then the
    table); else None."""
    said = str(refusal)
    if "wrap round to negative numbers" in said:       # counts cast to int8: the cast is the cause, not scaling
        return None
    scaled = "negative values" in said
    per_gene = "values scaled per gene" in said
    zeros = "no value other than 0" in said
    if not (scaled or per_gene or zeros or "non-integer values" in said):
        return None

    def whole(m) -> bool:
        data = m.data if hasattr(m, "indptr") else np.asarray(m)
        return (bool(np.any(data)) and bool(np.array_equal(data, np.round(data)))
                and bool((data >= 0).all()))

    write = (" in the store's table (adata = sdata.tables['table']) and write the store again (sdata.write)"
             if file == "spatialdata" else " and write the file again (adata.write_h5ad)" if file else "")
    found = None
    for name, m in adata.layers.items():
        if whole(m):
            found = (f"layers['{name}']", f"store them in X: adata.X = adata.layers['{name}']{write}" if file
                     else f"pass layer='{name}'")
            break
    raw = adata.raw
    if found is None and raw is not None and whole(raw.X):
        if list(raw.var_names) == list(adata.var_names):
            found = ("adata.raw.X", f"store them in X: adata.X = adata.raw.X{write}" if file else
                     "put them in a layer and pass it: adata.layers['counts'] = adata.raw.X, layer='counts'")
        else:
            found = ("adata.raw.X", f"run on the raw counts of all {raw.n_vars} genes: adata = adata.raw.to_adata() "
                                    f"(it keeps obs and obsm){write}")
    if found is None:
        return None
    if zeros:
        return InputError(f"X holds no value other than 0, and {found[0]} holds whole numbers: the raw counts?",
                          path=path, fix=found[1])
    if scaled or per_gene:
        what = ("negative values (scaled or centred, as after sc.pp.scale)" if scaled else
                "values scaled per gene (each gene's standard deviation 1, as after sc.pp.scale)")
        return InputError(f"X holds {what}, and {found[0]} holds whole numbers: the raw counts?", path=path,
                          fix=found[1] + " (stcore selects the genes and normalises from the counts)")
    return InputError(f"X holds non-integer values, and {found[0]} holds whole numbers: the raw counts?", path=path,
                      fix=found[1] + ("; or say what X holds in the sample sheet's values column: log_normalized "
                                      "(after normalize_total and log1p) or normalized" if file else
                                      "; or say what X holds: values='log_normalized' (after normalize_total and "
                                      "log1p) or values='normalized'"))


# A kind of values is recognised by its spots' totals: normalised values (scanpy's normalize_total)
# sum to one total in every spot, log-normalised ones do after expm1.  Raw counts' totals vary by
# tens of percent between spots; a total within this relative sd of the others' is "one total".
ONE_TOTAL_CV = 1e-3


def _one_total(x, *, expm1: bool, rows: int = 65536, scale: float = 1.0) -> bool:
    """Whether every spot with any signal sums to the same total (``expm1``: of expm1 of its
    values, each times ``scale`` first: ``log(2)`` undoes a log2(1 + x)), a block of rows at a time
    (no float64 copy of the whole matrix)."""
    import scipy.sparse as sp

    totals = []
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, x.shape[0], rows):
            block = x[start:start + rows]
            values = block.data if sp.issparse(block) else np.asarray(block)
            values = np.expm1(values.astype(np.float64) * scale) if expm1 else values.astype(np.float64)
            if sp.issparse(block):
                block = sp.csr_matrix(block)
                totals.append(np.add.reduceat(np.r_[values, 0.0], block.indptr[:-1]) * (np.diff(block.indptr) > 0))
            else:
                totals.append(values.sum(axis=1))
        totals = np.concatenate(totals) if totals else np.zeros(0)
        totals = totals[totals > 0]
        return (totals.size >= 2 and bool(np.isfinite(totals).all())
                and float(totals.std() / totals.mean()) < ONE_TOTAL_CV)


def _rounded_one_total(x, *, rows: int = 65536) -> tuple[float, float] | None:
    """Where whole numbers ``x`` are normalised values rounded (normalize_total, then np.rint): the
    one total their spots sum to and the largest distance of a spot's total from it, else None.
    Rounding moves a spot's total by at most half a unit per stored value; raw counts' totals vary
    at least as a Poisson count does (a variance as large as the total), and between spots by tens
    of percent.  So: twenty spots or more with signal, their totals not all equal (counts
    downsampled to one depth are equal, or short of it), each within half a unit per stored value
    of their median, values of 2 or more on average (rounding's total is then not the count of
    its values), and values that skip most whole numbers as multiples of a factor do
    (:func:`_value_coverage`; raw counts of one depth in every spot, as a simulation without
    library sizes gives them, have one total too, but hold every whole number)."""
    import scipy.sparse as sp

    totals, stored = [], []
    for start in range(0, x.shape[0], rows):
        block = x[start:start + rows]
        if sp.issparse(block):
            block = sp.csr_matrix(block)
            values = np.r_[block.data.astype(np.float64), 0.0]
            totals.append(np.add.reduceat(values, block.indptr[:-1]) * (np.diff(block.indptr) > 0))
            stored.append(np.diff(block.indptr).astype(np.float64))
        else:
            block = np.asarray(block)
            totals.append(block.sum(axis=1, dtype=np.float64))
            stored.append(np.count_nonzero(block, axis=1).astype(np.float64))
    if not totals:
        return None
    totals, stored = np.concatenate(totals), np.concatenate(stored)
    keep = totals > 0
    totals, stored = totals[keep], stored[keep]
    if totals.size < 20 or np.unique(totals).size == 1:
        return None
    total = float(np.median(totals))
    off = np.abs(totals - total)
    if not bool((off <= 0.5 * stored + 0.5).all()) or total < 2 * float(np.median(stored)):
        return None
    if _value_coverage(x, keep) >= 0.5:
        return None
    return total, float(off.max())


def _value_coverage(x, keep: np.ndarray, sample: int = 2000) -> float:
    """The median over spots (up to ``sample`` of the spots ``keep``, evenly spaced) of the share of
    whole numbers from a spot's smallest value to its 90th percentile that the spot holds.  Raw
    counts hold nearly every one (1, 2, 3, ...); normalised values rounded hold only the multiples
    of their spot's factor (8, 16, 24, ... for a factor of 8), a share of about one over it."""
    import scipy.sparse as sp

    if sp.issparse(x) and x.format != "csr":
        x = sp.csr_matrix(x)
    spots = np.flatnonzero(keep)
    spots = spots[:: max(1, spots.size // sample)]
    shares = []
    for i in spots:
        row = x[int(i)]
        values = row.data if sp.issparse(row) else np.asarray(row).ravel()
        values = np.rint(values[values != 0])
        low, high = float(values.min()), float(np.quantile(values, 0.9))
        shares.append(np.unique(values[values <= high]).size / (high - low + 1))
    return float(np.median(shares)) if shares else 1.0


def _rounding_off(data: np.ndarray, block: int = 1 << 22) -> float | None:
    """The largest distance of ``data`` from whole numbers when every value is a whole number but for
    float rounding (within 1e-3 + 1e-5 of its size: float32 keeps about 7 digits), else None.  A block
    of values at a time; values that are not counts stop it at the first block."""
    data = np.asarray(data).ravel()
    largest = 0.0
    for start in range(0, data.size, block):
        part = data[start:start + block].astype(np.float64)
        off = np.abs(part - np.rint(part))
        if not bool((off <= 1e-3 + 1e-5 * np.abs(part)).all()):
            return None
        largest = max(largest, float(off.max()))
    return largest if data.size else None


#: log1p of a spot's values after normalize_total stays below this (log1p(1e6) = 13.8 for a total
#: of a million): larger values are not log-normalised.
LOG_NORMALIZED_MAX = 50.0


#: Other bases a log of values is taken in (numpy's log2, log10; R's log2(x + 1)), and the factor
#: that turns such values into log1p's: log1p(y) = log_b(1 + y) * ln(b).
OTHER_LOG_BASES = {2: float(np.log(2.0)), 10: float(np.log(10.0))}


def _log_of_whole(data: np.ndarray, sample: int = 1_000_000, scale: float = 1.0, *,
                  power: float | None = None) -> bool:
    """Whether ``data`` (the stored values, zeros left out) is log1p of whole numbers: expm1 of
    the values within 0.01 of a whole number on average (float32 rounding leaves about 1e-4 on
    counts up to a few thousand; log-normalised values sit about 0.5 away), and none of them below
    0.5 (raw counts stored are 1 or more; values near 0 are near the whole number 0 after any
    transform).  ``power``: of whole numbers under that power instead (2 for a square root: the
    values squared).  Up to ``sample`` values, evenly spaced, are looked at."""
    data = np.asarray(data, dtype=np.float64).ravel()
    data = data[:: max(1, data.size // sample)]
    data = data[data != 0]
    if data.size == 0:
        return False
    with np.errstate(over="ignore", invalid="ignore"):        # values too large for the transform: not it
        back = np.power(data, power) if power is not None else np.expm1(data * scale)
        return bool(np.mean(np.abs(back - np.rint(back))) < 0.01 and back.min() >= 0.5)


#: Transforms of raw counts that leave each spot's depth in the values (no normalisation per spot):
#: what the values are, what shows it, what they are of, the fix (how the counts come back), and the
#: test (:func:`_log_of_whole`'s ``scale`` or ``power``).  Any of them is refused whatever ``values``
#: says.  The log1p of whole numbers is also what Seurat's SCTransform leaves in its SCT assay's data
#: (log1p of its corrected counts, whole numbers at one depth), whose expm1 is not the raw counts.
COUNT_TRANSFORMS = (
    ("the log1p of whole numbers", "expm1 of every value is whole",
     "raw counts logged without normalising each spot, or SCTransform's corrected counts logged (Seurat's SCT "
     "assay data)",
     "store the raw counts in X with values counts (np.rint(np.expm1(X)) where raw counts were logged; for "
     "SCTransform's data, the counts of Seurat's Spatial or RNA assay, as expm1 gives SCT's corrected counts), or "
     "normalise each spot before the log (scanpy's normalize_total, then log1p)", {"scale": 1.0}),
    ("log2(1 + x) values", "2^X - 1 of every value is a whole number", "raw counts logged without normalising each spot",
     "store the raw counts in X (np.rint(np.exp2(X) - 1)) with values counts", {"scale": OTHER_LOG_BASES[2]}),
    ("log10(1 + x) values", "10^X - 1 of every value is a whole number",
     "raw counts logged without normalising each spot",
     "store the raw counts in X (np.rint(10 ** X - 1)) with values counts", {"scale": OTHER_LOG_BASES[10]}),
    ("the square roots of whole numbers", "the square of every value is whole",
     "raw counts square-rooted without normalising each spot",
     "store the raw counts in X (its values squared and rounded: adata.X.data = np.rint(adata.X.data ** 2) for a "
     "sparse X) with values counts", {"power": 2.0}),
)


def _refuse_transformed_counts(data: np.ndarray, values: str, path: str | None) -> None:
    """Refuse values that are a transform of raw counts (:data:`COUNT_TRANSFORMS`): logged or
    square-rooted without normalising each spot, as ``log_normalized`` (taken as normalised and
    logged), ``normalized`` (logged again, each spot's depth kept) or ``counts`` whose hvg flavour
    takes values that are not whole numbers (normalised and logged over the transform)."""
    for what, shown, of, fix, test in COUNT_TRANSFORMS:
        if not _log_of_whole(data, **test):
            continue
        if values == "log_normalized":
            after = "" if what.startswith("the log1p") else ", the natural log (log1p) of normalised values"
        elif values == "normalized":
            after = ": they would be logged (log1p) over the transform, each spot's depth kept"
        else:
            after = (" with an hvg flavour for counts that are not whole numbers: they would be normalised and "
                     "logged over the transform")
        raise InputError(f"X holds {what} ({shown}): {of}, but values is {values}{after}", path=path, fix=fix)


def _scale_factor(data: np.ndarray) -> int:
    """The greatest common divisor of the non-zero whole numbers ``data`` (1 when a value is 1, as
    in every slide of raw counts), or 1 where they take one value only (a constant matrix: named
    by the hvg step)."""
    data = np.asarray(data).ravel()
    if bool((data[:1 << 20] == 1).any()):      # raw counts hold 1s among their first values: no copy made
        return 1
    data = data[data != 0]
    if data.size == 0 or bool((data == 1).any()):
        return 1
    values = np.unique(np.rint(data).astype(np.int64))
    return int(np.gcd.reduce(values)) if values.size > 1 else 1


#: Values other than 0 below which a matrix without a 1 is left alone (:func:`_smallest_without_ones`).
NO_ONES_MIN_VALUES = 100


def _smallest_without_ones(x, data: np.ndarray) -> float | None:
    """The smallest value of the whole numbers ``x`` (``data``: its stored values) where they hold
    zeros and at least :data:`NO_ONES_MIN_VALUES` other values, none of them 1, else None.  Raw
    counts that hold zeros hold 1s: a gene's counts at any mix of Poisson rates hold P(1) = rate x
    P(0) of each rate's spots, and 1 is the commonest value after 0 on every shared slide of counts;
    counts multiplied by a factor that is not whole (1.5) and rounded hold none.  (Multiples of a
    whole factor are :func:`_scale_factor`'s.)"""
    if bool((data[:1 << 20] == 1).any()):          # raw counts hold 1s among their first values: no copy made
        return None
    values = data[data != 0]
    if values.size < NO_ONES_MIN_VALUES or bool((values == 1).any()):
        return None
    if values.size >= x.shape[0] * x.shape[1]:      # no zero: deep panels hold hardly a 1 (_pseudocount's)
        return None
    return float(values.min())


#: Values a spot of counts with 1 added to each stored value holds all of (:func:`_stored_values_plus_one`):
#: its counts 1 to 4, each one more.  No spot of counts multiplied by a factor of 1.5 or more (the factors
#: that leave no 1) and rounded holds them all: 1.5 to 1.75 leave no 4 or 5 (np.rint(1.5 * [1, 2, 3, 4]) is
#: 2, 3, 4, 6), 1.75 and more no 3.
PLUS_ONE_VALUES = (2, 3, 4, 5)

#: Share of the spots of :data:`SPOT_SMALLEST_MIN_VALUES` stored values or more that hold all of
#: :data:`PLUS_ONE_VALUES`, from which a slide whose smallest value is 2 is taken for counts with 1 added
#: to each stored value (DLPFC 151673, its first 800 spots, ``X.data += 1``: 796 of 800).
PLUS_ONE_SPOTS_SHARE = 0.5


def _stored_values_plus_one(x, *, rows: int = 65536) -> tuple[int, int] | None:
    """Where the whole numbers ``x``, zeros kept and no 1 held (:func:`_smallest_without_ones` found 2 the
    smallest), are counts with 1 added to each stored value (``adata.X.data += 1`` on a sparse matrix):
    (spots holding all of :data:`PLUS_ONE_VALUES`, spots of :data:`SPOT_SMALLEST_MIN_VALUES` stored values or
    more), where the first is :data:`PLUS_ONE_SPOTS_SHARE` of the second or more; else None (counts
    rescaled and rounded hold none such).  A block of rows at a time."""
    import scipy.sparse as sp

    holding, spots = 0, 0
    for start in range(0, x.shape[0], rows):
        block = sp.csr_matrix(x[start:start + rows])
        block.eliminate_zeros()
        stored = np.diff(block.indptr)
        per_row = np.repeat(np.arange(block.shape[0]), stored)
        held = np.ones(block.shape[0], dtype=bool)
        for value in PLUS_ONE_VALUES:
            held &= np.bincount(per_row[block.data == value], minlength=block.shape[0]) > 0
        deep = stored >= SPOT_SMALLEST_MIN_VALUES
        spots += int(deep.sum())
        holding += int((held & deep).sum())
    return (holding, spots) if spots and holding >= PLUS_ONE_SPOTS_SHARE * spots else None


#: Values of a spot's smallest value (2 or more, no 1 held) from which the spot is taken for counts
#: scaled up and rounded (:func:`_spots_without_ones`): a gene's Poisson counts of rate r hold value
#: m - 1 m / r times as often as m, and the rates that give a value of m often lie near m, so raw counts
#: holding 50 values of m hold some of m - 1 (below a chance of e^-10 where every one is of rate 10).
SPOT_SMALLEST_MIN_VALUES = 50

#: Share of the spots with counts from which spots holding no 1 (:data:`SPOT_SMALLEST_MIN_VALUES`)
#: refuse a slide: none of the six shared slides holds one such spot.
SPOTS_WITHOUT_ONES_SHARE = 0.01


def _spots_without_ones(x, *, rows: int = 65536) -> tuple[int, int, int, float, int] | None:
    """Where some spots of the whole numbers ``x`` hold no value of 1 but :data:`SPOT_SMALLEST_MIN_VALUES`
    values or more of their smallest, 2 or more, in :data:`SPOTS_WITHOUT_ONES_SHARE` of the spots with
    counts or more, as normalised values rounded to whole numbers leave each spot scaled up by 1.5 or
    more (normalize_total to the median total, or counts divided by size factors, then np.rint: a count
    of 1 becomes 2 or more): (such spots, spots with counts, the first's row, its smallest value, how
    often it holds it); else None.  On every shared slide of raw counts, each spot's smallest value is
    1 or held fewer than 20 times; a block of rows at a time."""
    import scipy.sparse as sp

    found, spots, first = 0, 0, None
    for start in range(0, x.shape[0], rows):
        block = sp.csr_matrix(x[start:start + rows])
        block.eliminate_zeros()
        filled = np.diff(block.indptr) > 0
        if not filled.any():
            continue
        starts = block.indptr[:-1][filled]
        smallest = np.minimum.reduceat(block.data, starts)
        per_row = np.repeat(np.flatnonzero(filled), np.diff(block.indptr)[filled])
        at_smallest = np.bincount(per_row, weights=block.data == np.repeat(smallest, np.diff(block.indptr)[filled]),
                                  minlength=block.shape[0])[filled]
        hit = (smallest >= 2) & (at_smallest >= SPOT_SMALLEST_MIN_VALUES)
        spots += int(filled.sum())
        found += int(hit.sum())
        if first is None and hit.any():
            i = int(np.flatnonzero(hit)[0])
            first = (start + int(np.flatnonzero(filled)[i]), float(smallest[i]), int(at_smallest[i]))
    if first is None or found < SPOTS_WITHOUT_ONES_SHARE * spots:
        return None
    return (found, spots, *first)


def _refuse_rounded_at_the_median(x, values: str, path: str | None) -> None:
    """Raise where the whole numbers ``x`` are normalised values rounded at each spot's own scale
    (:func:`_spots_without_ones`), given as ``values`` counts, normalized or log_normalized.  Read as normalised values
    they lose what the rounding took (DLPFC 151673 so, graphst at 100 epochs, seed 0: ARI 0.246, where
    the values before rounding give 0.398), so the fix is the raw counts."""
    scaled_up = _spots_without_ones(x)
    if scaled_up is None:
        return
    found, spots, row, smallest, held = scaled_up
    what = "the count matrix holds" if values == "counts" else "X holds"
    taken = {"counts": "they would be taken as counts of other depths than measured",
             "normalized": "not normalised values as measured: the rounding took every value below 0.5 and moved "
                           "the others",
             "log_normalized": "not log-normalised values, nor normalised values as measured: the rounding took every "
                               "value below 0.5 and moved the others"}[values]
    raise InputError(f"{what} whole numbers, but {found} of its {spots} spots hold no value of 1 and "
                     f"{SPOT_SMALLEST_MIN_VALUES} or more of their smallest value, 2 or more (first: row {row}, {held} "
                     f"values of {smallest:g}), where raw counts holding so many values of their smallest hold smaller "
                     "ones too: normalised values rounded to whole numbers (normalize_total to the median total, or "
                     "counts divided by size factors, then rounding), whose spots scaled up by 1.5 or more hold no 1; "
                     f"{taken}", path=path,
                     fix="store the raw counts in X with values counts (normalised values rounded cannot be turned "
                         "back into counts exactly: take them from the file they came from)")


#: Zeros that raw counts holding a matrix's 1s would hold at the least (:func:`_pseudocount`), above
#: which a matrix of no zero is taken for counts with 1 added: the chance that counts hold none is
#: below exp(-20), 2e-9.
PSEUDOCOUNT_ZEROS = 20.0

#: Values of 1 from which a count matrix holding no value above 1 is taken for binarised detection
#: (X > 0): a gene counted twice in a spot is common in every slide of counts (the five shared slides
#: of counts: 35% to 83% of the values other than 0 are above 1), and a slide of so many values
#: without one is not counts.
BINARY_MIN_VALUES = 10_000


def _pseudocount(x) -> str | None:
    """Where the whole numbers ``x`` hold no zero and their smallest value is 1, as counts with 1
    added to every value (a pseudocount) do, what shows it; else None.  Raw counts hold zeros: 0 is
    the most common value of the real slides (31-87% of the values, 1 next), so 1 more common than 2
    shows it; and where the counts held fewer zeros than ones (a deep panel) the 1s do: a gene whose
    counts are Poisson at any mix of rates holds at least as many zeros as its 1s over its mean
    (P(1) / P(0) is a mean of the rates weighted towards the low ones), so raw counts with these 1s
    would hold at least :data:`PSEUDOCOUNT_ZEROS` zeros (the bound is 0.08-0.86 times the zeros the
    five shared slides of counts hold).  Deep panels with no zero hold hardly a 1 (a gene of mean 15: 5 in a million values)."""
    n = x.shape[0] * x.shape[1]
    data = x.data if hasattr(x, "indptr") else np.asarray(x).ravel()
    if n == 0 or data.size < n or float(data.min()) != 1:         # implicit zeros, or a 0 (or none is 1)
        return None
    ones, twos = int(np.count_nonzero(data == 1)), int(np.count_nonzero(data == 2))
    if ones > twos > 0:
        return f"and 1 is its most common ({ones / n:.0%} of the values), where raw counts hold zeros most"
    per_gene = np.asarray((x == 1).sum(axis=0), dtype=np.float64).ravel()
    zeros = float((per_gene / np.asarray(x.mean(axis=0), dtype=np.float64).ravel()).sum())
    if zeros < PSEUDOCOUNT_ZEROS:
        return None
    return (f"and {ones} values are 1 ({ones / n:.1%}), where raw counts with as many 1s hold at least {zeros:.0f} "
            "zeros (each gene's 1s over its mean: the fewest zeros counts give)")


#: Share of the genes that vary from which values are taken as scaled per gene (sc.pp.scale): each
#: such gene's sd is 1, but where the scaling clipped its largest values (max_value=10, sparse genes).
#: Scaled without clipping every gene is at 1, clipped at 10 67-99% on the six shared slides; their
#: counts, normalised and log-normalised values hold at most 0.6% of such genes.
SCALED_GENES_SHARE = 0.25


def _scaled_per_gene(x, *, rows: int = 65536) -> tuple[float, int] | None:
    """Where the values ``x`` were divided by each gene's standard deviation (sc.pp.scale, here without
    centring: non-negative), the share of the genes that vary whose sd is 1 (within 1e-3, with n - 1 as
    scanpy divides, or n as scikit-learn's StandardScaler), and the number of those genes; else None.
    A block of rows at a time (no float64 copy of the whole matrix)."""
    import scipy.sparse as sp

    n, g = x.shape
    if n < 3:
        return None
    sums, squares = np.zeros(g), np.zeros(g)
    for start in range(0, n, rows):
        block = x[start:start + rows]
        if sp.issparse(block):
            block = sp.csr_matrix(block)
            values = block.data.astype(np.float64)
            sums += np.bincount(block.indices, weights=values, minlength=g)
            squares += np.bincount(block.indices, weights=values * values, minlength=g)
        else:
            block = np.asarray(block, dtype=np.float64)
            sums += block.sum(axis=0)
            squares += (block * block).sum(axis=0)
    mean = sums / n
    var = np.clip(squares / n - mean * mean, 0, None)
    varying = var > 1e-12 * np.maximum(mean * mean, 1e-12)
    if varying.sum() < 10:
        return None
    var = var[varying]
    share = max(float(np.mean(np.abs(np.sqrt(var * n / (n - 1)) - 1) < 1e-3)),
                float(np.mean(np.abs(np.sqrt(var) - 1) < 1e-3)))
    return (share, int(varying.sum())) if share >= SCALED_GENES_SHARE else None


#: Normalised values whose 90th percentile (of the values other than 0) lies below this are of a
#: scale where log1p is nearly linear (log1p(0.1) = 0.095): a spot's fractions (normalize_total to
#: 1), not values of a count's depth.  The shared MERFISH file's volume-normalised values: 10.0.
SMALL_SCALE = 0.1


def warn_small_scale(data: np.ndarray, *, path: str | None = None, sample: int = 1_000_000) -> str | None:
    """Where normalised values (``values`` normalized, logged by the hvg step with log1p) are of a scale
    at which log1p is nearly linear (:data:`SMALL_SCALE`), warn and return the line; else None."""
    data = np.asarray(data).ravel()
    data = data[:: max(1, data.size // sample)]
    data = data[data != 0]
    if data.size == 0:
        return None
    high = float(np.quantile(data.astype(np.float64), 0.9))
    if high >= SMALL_SCALE:
        return None
    line = (f"X holds normalised values of a small scale (90% of them below {high:.3g}, as a spot's fractions of its "
            "total are: normalize_total to 1): log1p, which the hvg step takes of values normalized, is nearly linear "
            "there, so they would be used almost unlogged. Fix: scale them to a count's depth before the run, e.g. "
            "adata.X = adata.X * 1e4 (10,000 a spot, normalize_total's usual target)")
    log.warning("%s%s", f"{path}: " if path else "", line)
    return line


#: How count-derived values are undone, to tell what they are without one total: values normalised
#: by a size factor per spot (scran's and scater's logNormCounts, DESeq2's factors, scanpy's
#: normalize_total, with exclude_highly_expressed or not) are a spot's whole counts times one unit (1
#: over its factor), so under the right inverse a spot's values are whole multiples of its smallest (a
#: count of 1, which nearly every spot of counts holds), and under a wrong one they are not: the name
#: of what they are, the inverse (``scale``: expm1 of the values times it; None: the values as they
#: are) and the ``values`` they are read right as (log2 and log10 ones: none, the fix multiplies them).
VALUE_INVERSES = (
    ("normalised values, not logged", "each spot's values", None, "normalized"),
    ("log-normalised values (the natural log, log1p)", "expm1 of each spot's values", 1.0, "log_normalized"),
    ("log2(1 + x) values", "2^X - 1 of each spot's values", OTHER_LOG_BASES[2], None),
    ("log10(1 + x) values", "10^X - 1 of each spot's values", OTHER_LOG_BASES[10], None),
)

#: Spots drawn for the test of :func:`_unit_multiples`, and the fewest that must hold enough values.
UNIT_SPOTS, UNIT_MIN_SPOTS = 400, 20
#: Share of those spots from which an inverse fits; below :data:`UNIT_MISFIT` the declared one does not.
#: On the five shared slides of counts normalised to size factors of mean 1, to 10,000, to the median
#: total or to a million, each logged in base e or 2 or not, the right inverse fits 99-100% of the spots
#: drawn and a wrong one 1% at most; normalised to 1 a spot, the unit is tiny and log1p nearly linear,
#: so several fit (up to 100%) and nothing is told; the MERFISH file's values fit none.
UNIT_FIT, UNIT_MISFIT = 0.75, 0.25


def _unit_multiples(x, sample: int = UNIT_SPOTS, largest: float = 64.0) -> tuple[dict, int] | None:
    """For each of :data:`VALUE_INVERSES`, the share of the spots drawn (up to ``sample``, evenly
    spaced, among those holding five distinct values or more) whose values under that inverse are
    whole multiples of the spot's smallest: the distinct values up to ``largest`` times it, each
    within 0.02 of a whole multiple at the median (float32 rounding leaves 1e-4).  None where fewer
    than :data:`UNIT_MIN_SPOTS` spots hold enough values.  Only the rows drawn are read."""
    import scipy.sparse as sp

    if sp.issparse(x):
        stored = np.diff(x.indptr) if x.format == "csr" else np.asarray((x != 0).sum(axis=1)).ravel()
    else:
        stored = np.count_nonzero(np.asarray(x), axis=1)
    rows = np.flatnonzero(stored >= 5)
    if rows.size < UNIT_MIN_SPOTS:
        return None
    rows = rows[:: max(1, rows.size // sample)]
    block = x[rows]
    block = sp.csr_matrix(block) if sp.issparse(block) else np.asarray(block)
    fits = {name: 0 for name, *_ in VALUE_INVERSES}
    spots = 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for i in range(len(rows)):
            row = block.data[block.indptr[i]:block.indptr[i + 1]] if sp.issparse(block) else block[i]
            levels = np.unique(np.asarray(row, dtype=np.float64))
            levels = levels[levels > 0]
            if levels.size < 5:
                continue
            spots += 1
            for name, _, scale, _ in VALUE_INVERSES:
                back = levels if scale is None else np.expm1(levels * scale)
                ratios = back[1:] / back[0]
                ratios = ratios[ratios <= largest]
                fits[name] += ratios.size >= 3 and float(np.median(np.abs(ratios - np.rint(ratios)))) < 0.02
    if spots < UNIT_MIN_SPOTS:
        return None
    return {name: n / spots for name, n in fits.items()}, spots


def _refuse_misread_transform(x, values: str, path: str | None, *, marked: bool = False) -> None:
    """Refuse values whose transform is plainly another than ``values`` says, told without one total
    (:func:`_unit_multiples`): one inverse fits the spots, and the one ``values`` reads them with does
    not.  Normalised values given as counts are left alone: normalize_total gives the counts' values
    of them; log1p values of a slide that scanpy's log1p ``marked`` are :func:`check_logged_mark`'s."""
    found = _unit_multiples(x)
    if found is None:
        return
    shares, spots = found
    fitting = [inverse for inverse in VALUE_INVERSES if shares[inverse[0]] >= UNIT_FIT]
    if len(fitting) != 1:
        return
    what, shown, scale, right = fitting[0]
    declared = next((name for name, *_, read in VALUE_INVERSES if read == values), None)
    if right == values or (declared is not None and shares[declared] >= UNIT_MISFIT) or (
            values == "counts" and scale is None) or (marked and right == "log_normalized"):
        return
    seen = (f"in {shares[what]:.0%} of {spots} spots drawn {shown} are whole multiples of its smallest, as counts "
            "divided by a size factor are")
    if declared is not None:
        read = next(told for name, told, *_ in VALUE_INVERSES if name == declared)
        seen += f" ({read}, as values {values} reads them: in {shares[declared]:.0%})"
    if values == "log_normalized":
        after = ("they would be taken as already logged" if scale is None else
                 f"each would be taken as {1 / scale:.3g} times its natural log")
    elif values == "normalized":
        after = "they would be logged (log1p) again"
    else:
        after = "they would be normalised and logged again"
    sheet = "(the sample sheet's values column; in stcore.tl.domains values='{0}')"
    if scale is None:
        fix = f"set values to normalized {sheet.format('normalized')}, or store their log1p in X (scanpy's log1p)"
    elif right is not None:
        fix = f"set values to log_normalized {sheet.format('log_normalized')}"
    else:
        base = 2 if scale == OTHER_LOG_BASES[2] else 10
        fix = (f"store the natural log: adata.X = adata.X * np.log({base}) (log1p of the same normalised values), and "
               + ("keep values log_normalized" if values == "log_normalized" else
                  f"set values to log_normalized {sheet.format('log_normalized')}"))
    if scale == OTHER_LOG_BASES[2]:
        what += (", as scran's and scater's logNormCounts leave them (log2(counts / size factor + 1): a "
                 "SingleCellExperiment's logcounts, as zellkonverter converts it)")
    told = ", the natural log (log1p) of normalised values" if values == "log_normalized" and scale is not None else ""
    raise InputError(f"X holds {what}: {seen}, but values is {values}{told}: {after}", path=path, fix=fix)


def check_values_match(x, values: str, *, path: str | None = None, whole: bool | None = None,
                       marked: bool = False) -> None:
    """Raise where ``x`` is plainly not what ``values`` says, so a matrix is never transformed
    twice: normalised or log-normalised values (every spot one total, :data:`ONE_TOTAL_CV`) given
    as ``counts``, log-normalised ones as ``normalized``, whole numbers (raw counts) as
    ``normalized`` or ``log_normalized``, and raw counts logged or square-rooted without a
    normalisation per spot (:data:`COUNT_TRANSFORMS`) as any of them.  Values without one total (a
    gene subset, or normalised by size factors) are told by the inverse under which each spot's
    values are whole multiples of one unit (:func:`_refuse_misread_transform`): logged in another
    base, logged or not other than said; where no one inverse fits, taken as said.  ``whole``:
    whether the values are whole numbers, where the caller already checked (:func:`check_counts`
    with ``integer``); else found here.  ``marked``: scanpy's log1p marked the slide (``uns['log1p']``), whose log-normalised
    values given otherwise :func:`check_logged_mark` names (called next)."""
    data = x.data if hasattr(x, "indptr") else np.asarray(x)
    if data.size == 0:
        return
    off = None
    if whole is None:
        whole = np.array_equal(data, np.round(data))
        if not whole:
            off = _rounding_off(data)           # whole numbers but for float rounding: raw counts all the same
    rounded = _rounded_one_total(x) if whole else None
    if values in ("counts", "log_normalized") and rounded is not None:
        total, spread = rounded
        holds, taken, fix = (("the count matrix holds", "raw counts; they would be taken as counts of that depth in "
                              "every spot", "store the raw counts in X, or set values to normalized")
                             if values == "counts" else
                             ("X holds", "log-normalised values; they would be taken as already logged",
                              "set values to normalized"))
        raise InputError(f"{holds} whole numbers whose spots all sum to about one total ({total:g}, each within "
                         f"{spread:g} of it: what rounding each value leaves), as normalised values rounded to whole "
                         f"numbers do (normalize_total, then rounding), not {taken}", path=path,
                         fix=f"{fix} (the sample sheet's values column; in stcore.tl.domains values='normalized')")
    if values in ("normalized", "log_normalized") and whole and rounded is None:
        _refuse_rounded_at_the_median(x, values, path)
    if (values in ("normalized", "log_normalized") and (whole or off is not None) and float(data.max()) > 0
            and not (values == "normalized" and rounded is not None)):
        kind = "log-normalised" if values == "log_normalized" else "normalised"
        raise InputError(f"X holds whole numbers up to {float(data.max()):g}"
                         + (f" (each within {off:.2g} of one: float rounding)" if off is not None else "")
                         + f", raw counts rather than {kind} values, but values is {values}", path=path,
                         fix="set values to counts (the sample sheet's values column; in stcore.tl.domains "
                             "values='counts')" + (", after rounding them (adata.X.data = np.rint(adata.X.data))"
                                                   if off is not None else ""))
    if not whole and off is None:
        _refuse_transformed_counts(data, values, path)
        scaled = _scaled_per_gene(x)
        if scaled is not None:
            kind = {"counts": "counts", "normalized": "normalised values",
                    "log_normalized": "log-normalised values"}[values]
            raise InputError(f"X holds values scaled per gene: {scaled[0]:.0%} of its {scaled[1]} genes that vary have "
                             "a standard deviation of exactly 1, as sc.pp.scale leaves them (here without centring: "
                             f"zero_center=False, as GraphST's preprocess runs it), not {kind} (values is {values}); "
                             "the genes would be selected as if each varied alike, and the scaling done again over "
                             "it", path=path,
                             fix="store the raw counts in X (the slide before its preprocessing) with values counts, or "
                                 "the log-normalised values before the scaling with values log_normalized")
    if values == "log_normalized" and float(data.max()) > LOG_NORMALIZED_MAX:
        raise InputError(f"X holds values up to {float(data.max()):g}, but values is log_normalized: log1p of "
                         f"normalised values stays below {LOG_NORMALIZED_MAX:g} (log1p(1e6) = 13.8)", path=path,
                         fix="set values to counts for raw counts, or normalized for normalised values without the "
                             "log (the sample sheet's values column; in stcore.tl.domains values=...)")
    if values == "log_normalized":
        if _one_total(x, expm1=False) and not _one_total(x, expm1=True):
            raise InputError("X holds normalised values (every spot sums to one total, as after normalize_total), but "
                             "values is log_normalized: they would be taken as already logged", path=path,
                             fix="set values to normalized (the sample sheet's values column; in stcore.tl.domains "
                                 "values='normalized'), or store their log1p in X (scanpy's log1p)")
        if not _one_total(x, expm1=True):
            for base, scale in OTHER_LOG_BASES.items():
                if _one_total(x, expm1=True, scale=scale):
                    raise InputError(f"X holds log{base}(1 + x) values ({base}^X - 1 of every spot sums to one total): "
                                     f"normalised values logged in base {base}, but values is log_normalized, the "
                                     "natural log (log1p) of normalised values", path=path,
                                     fix=f"store the natural log: adata.X = adata.X * np.log({base}) (log1p of the "
                                         "same normalised values), and keep values log_normalized")
        _refuse_misread_transform(x, values, path, marked=marked)
        return
    if whole:
        if values == "counts":
            shown = _pseudocount(x)
            if shown is not None:
                raise InputError(f"the count matrix holds no zero: every value is 1 or more, {shown}: counts with 1 "
                                 "added to every value (a pseudocount); every gene would be taken as detected in every "
                                 "spot", path=path,
                                 fix="store the raw counts in X (if 1 was added: "
                                     + ("adata.X.data -= 1, then adata.X.eliminate_zeros())" if hasattr(x, "indptr")
                                        else "adata.X = scipy.sparse.csr_matrix(adata.X - 1))"))
            ones = int(np.count_nonzero(data))
            if ones >= BINARY_MIN_VALUES and float(data.max()) == 1:
                raise InputError(f"the count matrix holds only 0s and 1s ({ones} values of 1, none above): which "
                                 "genes were detected in each spot (binarised, X > 0), not how many counts, where raw "
                                 "counts of so many values hold some above 1; each would be taken as a count of 1",
                                 path=path, fix="store the raw counts in X (those the detections were made from)")
            factor = _scale_factor(data)
            if factor > 1:
                raise InputError(f"the count matrix holds whole numbers that are all multiples of {factor} (no value "
                                 "is 1, as in every slide of raw counts): counts multiplied by a factor (or rescaled "
                                 "and rounded); they would be taken as deeper counts than measured", path=path,
                                 fix=f"store the raw counts in X (if they were multiplied by {factor}: adata.X = "
                                     f"adata.X / {factor})")
            smallest = _smallest_without_ones(x, data)
            plus_one = _stored_values_plus_one(x) if smallest == 2 else None
            if plus_one is not None:
                raise InputError(f"the count matrix holds whole numbers and zeros, but no value is 1 (the smallest is "
                                 f"2), and {plus_one[0]} of its {plus_one[1]} spots of {SPOT_SMALLEST_MIN_VALUES} "
                                 f"values or more hold each of {', '.join(map(str, PLUS_ONE_VALUES))}, as counts "
                                 "with 1 added to every value other than 0 leave them (adata.X.data += 1 on a sparse "
                                 "matrix, the zeros kept), and counts rescaled and rounded never do; "
                                 "they would be taken as counts one higher, a count of 1 as 2", path=path,
                                 fix="store the raw counts in X (if 1 was added to the stored values: "
                                     + ("adata.X.data -= 1)" if hasattr(x, "indptr") else "adata.X[adata.X > 0] -= 1)"))
            if smallest is not None:
                raise InputError(f"the count matrix holds whole numbers and zeros, but no value is 1 (the smallest is "
                                 f"{smallest:g}), where raw counts that hold zeros hold 1s too: counts rescaled by a "
                                 "factor that is not whole and rounded (np.rint(X * 1.5) holds no 1); they would be "
                                 "taken as deeper counts than measured", path=path,
                                 fix="store the raw counts in X (counts rescaled and rounded cannot be divided back "
                                     "exactly: take them from the file they came from)")
            _refuse_rounded_at_the_median(x, values, path)
        return
    if _one_total(x, expm1=True) and not _one_total(x, expm1=False):
        raise InputError("X holds log-normalised values (every spot's expm1 sums to one total, as after "
                         f"normalize_total and log1p), but values is {values}: they would be normalised and logged "
                         "again", path=path,
                         fix="set values to log_normalized (the sample sheet's values column; in stcore.tl.domains "
                             "values='log_normalized'), or store raw counts in X")
    if values == "counts" and _one_total(x, expm1=False):
        raise InputError("X holds normalised values (every spot sums to one total, as after normalize_total), but "
                         "values is counts: they would be normalised again", path=path,
                         fix="set values to normalized (the sample sheet's values column; in stcore.tl.domains "
                             "values='normalized'), or store raw counts in X")
    _refuse_misread_transform(x, values, path, marked=marked)
    if values == "normalized":
        warn_small_scale(data, path=path)


def check_logged_mark(adata: ad.AnnData, x, values: str, *, path: str | None = None) -> None:
    """Raise where scanpy's ``log1p`` marked the slide (``uns['log1p']``, which ``sc.pp.log1p`` sets)
    and X's values look logged (not all whole numbers, none above :data:`LOG_NORMALIZED_MAX`), but
    ``values`` is not ``log_normalized``: they would be logged again.  The spots' totals tell
    log-normalised values of every gene (:func:`check_values_match`); this mark tells them after the
    genes were subset (``sc.pp.highly_variable_genes(subset=True)``), whose totals are one no more.
    ``x``: the matrix read (X; not a layer, which the mark does not speak of)."""
    if values == "log_normalized" or "log1p" not in adata.uns:
        return
    data = x.data if hasattr(x, "indptr") else np.asarray(x)
    if data.size == 0 or float(data.max()) > LOG_NORMALIZED_MAX or np.array_equal(data, np.round(data)):
        return
    raise InputError(f"X holds logged values: scanpy's log1p marked the slide (uns['log1p'] is set) and its values are "
                     f"not whole numbers, up to {float(data.max()):.3g}, but values is {values}: they would be logged "
                     "again", path=path,
                     fix="set values to log_normalized (the sample sheet's values column; in stcore.tl.domains "
                         "values='log_normalized'); if X was not logged since, del adata.uns['log1p']")


# --- coordinates and ids ----------------------------------------------------------------------

# Names other tools give the coordinate columns of obs (x first): a cell segmentation's centroids,
# CosMx's slide coordinates (not its CenterX_local_px, each field of view's own), Space Ranger's
# full-resolution pixels (column, row), Seurat's image columns, Visium's array grid.
COORDINATE_COLUMNS = (("x", "y"), ("x_centroid", "y_centroid"), ("center_x", "center_y"), ("x_coord", "y_coord"),
                      ("centerx_global_px", "centery_global_px"),
                      ("pxl_col_in_fullres", "pxl_row_in_fullres"), ("imagecol", "imagerow"),
                      ("array_col", "array_row"))


def _coordinate_columns(columns) -> tuple[str, str] | None:
    """The first pair of :data:`COORDINATE_COLUMNS` that ``columns`` holds (any case), as named there."""
    by_lower = {str(c).lower(): str(c) for c in columns}
    for x, y in COORDINATE_COLUMNS:
        if x in by_lower and y in by_lower:
            return by_lower[x], by_lower[y]
    return None


# Names other tools give the coordinates in obsm (case ignored): AnnData's embedding prefix
# ('X_spatial'), Giotto's and Seurat's exports ('spatial_coords', 'coords', 'xy', 'centroids').
COORDINATE_KEY = re.compile(r"^(x_)?(spatial|spatial_coords?|spatial_coordinates|coords?|coordinates|xy|centroids?|"
                            r"positions?|locations?)$", re.IGNORECASE)


def as_x_y(value, obs=None):
    """``value`` (an ``obsm`` entry) with its columns as x, y: a data frame of two columns named as a
    pair of :data:`COORDINATE_COLUMNS` in the other order, y first (Seurat's ``GetTissueCoordinates``
    gives ``imagerow, imagecol``; ``array_row, array_col`` as Space Ranger writes them), is taken by
    its names; so is an array of two columns that holds such a pair of ``obs`` (the spots' own
    columns) y first (``adata.obs[['imagerow', 'imagecol']].to_numpy()``); anything else as it is."""
    import pandas as pd

    if isinstance(value, pd.DataFrame) and value.shape[1] == 2:
        pair = _coordinate_columns(value.columns)
        if pair and [str(c) for c in value.columns] == [pair[1], pair[0]]:
            return value[list(value.columns[::-1])]
    elif obs is not None and np.ndim(value) == 2 and np.shape(value)[1] == 2 and len(value) == len(obs):
        by_lower = {str(c).lower(): c for c in obs.columns}
        try:
            xy = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            return value
        for x, y in COORDINATE_COLUMNS:
            if x not in by_lower or y not in by_lower:
                continue
            try:
                cols = obs[[by_lower[x], by_lower[y]]].to_numpy(dtype=float)
            except (TypeError, ValueError):
                continue
            if (np.allclose(xy, cols[:, ::-1], equal_nan=True) and not np.allclose(xy, cols, equal_nan=True)):
                return xy[:, ::-1]          # the obs pair, y first: taken as x, y
    return value


# Visium's spots lie 100 um apart and are 55 um across: their spacing is about 1.8 diameters (Visium
# HD's bins, 1).  Coordinates whose spacing is below half the scale factors' spot diameter are not
# the image's full-resolution pixels (at the hires image's scale, 0.05-0.3 of them: 0.05-0.5).
MIN_SPACING_DIAMETERS = 0.5
VISIUM_SPACING_DIAMETERS = 100 / 55


def image_out_of_register(xy: np.ndarray, key: str, shape: tuple, factor: float,
                          diameter: float | None = None, scales: Mapping | None = None,
                          swapped: bool = False) -> tuple[str, float | None, bool] | None:
    """Whether spots at ``xy`` (full-resolution pixels, as Space Ranger gives them) fall off their
    tissue image ``key`` (its ``shape``) at ``tissue_<key>_scalef`` ``factor``: 1% of the spots or more
    beyond the image's edge, or (``diameter``, the scale factors' ``spot_diameter_fullres``) spots
    closer together than :data:`MIN_SPACING_DIAMETERS` of it, coordinates at another scale (an
    image's).  The problem (None where the spots fit) and the factor the coordinates were scaled by,
    where it is this image's or, ``scales`` (the slide's scale factors), another image's of the slide
    (``tissue_lowres_scalef`` where the hires image is drawn) (else None), and (``swapped``) whether the
    spots off the image all lie on it with x and y swapped (said so), for the caller's fix."""
    from scipy.spatial import cKDTree

    from .graph import spot_spacing

    xy = np.asarray(xy, dtype=float)
    if not factor or not len(xy):
        return None
    h, w = shape[:2]
    at = xy * float(factor)
    margin = 0.02 * max(h, w)

    def off(p: np.ndarray) -> int:
        return int(((p[:, 0] < -margin) | (p[:, 0] > w + margin) | (p[:, 1] < -margin) | (p[:, 1] > h + margin)).sum())

    outside = off(at)
    if outside >= max(1, 0.01 * len(xy)):
        reach = at.max(axis=0)
        # x and y swapped (the pixel row first) on an image longer one way: the spots fall off it, and the other
        # way round every one lies on it
        turned = swapped and off(at[:, ::-1]) == 0
        return (f"tissue_{key}_scalef {float(factor):g} puts {outside} of the {len(xy)} spots outside the {key} image "
                f"({w} x {h} pixels; the spots reach {reach[0]:.0f} x {reach[1]:.0f})"
                + ("; with the two coordinates swapped every spot lies on it: x and y are swapped (the pixel row "
                   "first), or the image was turned a quarter" if turned else ""), None, turned)
    spacing = float("nan")
    if diameter and np.isfinite(diameter) and len(xy) > 1:
        # the spacing of 20,000 spots drawn at random (a large slide's whole knn: seconds per figure)
        drawn = xy if len(xy) <= 20000 else xy[np.random.default_rng(0).choice(len(xy), 20000, replace=False)]
        spacing = spot_spacing(xy) if drawn is xy else float(np.median(cKDTree(xy).query(drawn, k=2)[0][:, 1]))
    if np.isfinite(spacing) and spacing < MIN_SPACING_DIAMETERS * diameter:
        # scaled by this image's factor, else by another image's of the slide (the lowres image's where the
        # hires one is drawn): Visium's spots 1.8 diameters apart, or Visium HD's bins 1
        others = [(str(k)[len("tissue_"):-len("_scalef")], v) for k, v in (scales or {}).items()
                  if re.fullmatch(r"tissue_\w+_scalef", str(k)) and str(k) != f"tissue_{key}_scalef"]
        at_scale = None
        for name, f in [(key, factor)] + others:
            try:
                f = float(f)
            except (TypeError, ValueError):
                continue
            if f > 0 and any(abs(np.log(spacing / (apart * diameter) / f)) < np.log(1.5)
                             for apart in (VISIUM_SPACING_DIAMETERS, 1.0)):
                at_scale = (name, f)
                break
        scaled = at_scale[1] if at_scale else spacing / (VISIUM_SPACING_DIAMETERS * diameter)
        return (f"the spots lie {spacing:.3g} apart (the median distance to the nearest), where the scale factors' "
                f"spot_diameter_fullres is {diameter:.3g} (Visium's spots lie 1.8 diameters apart, Visium HD's bins 1): "
                "the coordinates are not the image's full-resolution pixels"
                + (f" but at the {at_scale[0]} image's scale (tissue_{at_scale[0]}_scalef {at_scale[1]:g})"
                   if at_scale else "")
                + f", and the spots would be drawn on {scaled:.0%} of the tissue's extent",
                at_scale[1] if at_scale else None, False)
    return None


def tissue_image(adata: ad.AnnData, library_id: str | None, img_key: str | None):
    """(image, scale factor, spot diameter in full-resolution pixels, library, image key, the library's
    scale factors) from ``uns['spatial']`` as scanpy's Visium reader stores it, or None when it holds no
    image."""
    import pandas as pd

    spatial = adata.uns.get("spatial")
    if not isinstance(spatial, dict) or not spatial:
        return None
    if library_id is None:
        if len(spatial) == 1:
            library_id = next(iter(spatial))
        else:
            # one slide taken out of slides joined with their libraries (anndata.concat(..., label='library_id',
            # uns_merge='unique') of scanpy's Visium reads keeps every library): the library its spots name
            named = {str(v) for v in pd.unique(adata.obs[LIBRARY_KEY].dropna())} if LIBRARY_KEY in adata.obs else set()
            if len(named) != 1 or next(iter(named)) not in {str(k) for k in spatial}:
                return None
            library_id = next(k for k in spatial if str(k) in named)
    entry = spatial.get(library_id, {})
    images, scale = entry.get("images", {}), entry.get("scalefactors", {})
    if not isinstance(images, Mapping) or not isinstance(scale, Mapping):
        return None
    keys = [img_key] if img_key else ["hires", "lowres"]
    for k in keys:
        if k in images and f"tissue_{k}_scalef" in scale:
            return (np.asarray(images[k]), float(scale[f"tissue_{k}_scalef"]),
                    float(scale.get("spot_diameter_fullres", np.nan)), str(library_id), k, scale)
    return None


def image_register_problem(image, xy: np.ndarray, basis: str) -> tuple[str, str] | None:
    """Where the spots at ``xy`` (``obsm[basis]``) do not fit the tissue ``image`` (:func:`tissue_image`'s)
    at its scale factor (:func:`image_out_of_register`: coordinates at an image's scale, this one's or
    another of the slide's, rather than full-resolution pixels; beyond its edge, as for another slide's
    image; x and y swapped): the problem and its fix, else None.  ``stcore.pl.domains`` draws the map
    without the image; the workflow's qc job and :func:`stcore.tl.domains` say so of the slide given."""
    pixels, factor, diameter, _, key, scales = image
    found = image_out_of_register(xy, key, pixels.shape, factor, diameter, scales, swapped=True)
    if found is None:
        return None
    problem, scaled, swapped = found
    if swapped:                 # every spot on the image with x and y swapped
        return problem, (f"store x then y: adata.obsm['{basis}'] = adata.obsm['{basis}'][:, ::-1] (x is Space "
                         "Ranger's pxl_col_in_fullres, y its pxl_row_in_fullres), or, where the image was turned, the "
                         "image Space Ranger wrote")
    return problem, (f"store the spots' full-resolution pixel coordinates in obsm['{basis}'] (as Space Ranger's "
                     "tissue_positions give them"
                     + (f": adata.obsm['{basis}'] = adata.obsm['{basis}'] / {scaled:g}" if scaled else "")
                     + "), or the scale factors of the image they were measured on")


def images_out_of_register(adata: ad.AnnData, xy: np.ndarray, key: str = "spatial", *, path: str | None = None,
                           outcome: str) -> tuple[str, list[str]] | None:
    """The tissue images of ``uns['spatial']`` (those :func:`tissue_image` finds for the slide's spots)
    that the spots at ``xy`` (``obsm[key]``) do not fit (:func:`image_register_problem`), said in one
    warning naming ``path``, the library, the first image's problem, ``outcome`` (what the caller does,
    with ``{images}``, the images' names in words, ``{it}`` and ``{are}``) and the fix: the library and
    the images' keys, else None.  An image drawn under spots it does not fit puts them in its corner or
    off it (``sc.pl.spatial``), without a word."""
    first = tissue_image(adata, None, None)
    if first is None:
        return None
    library = first[3]
    spatial = adata.uns["spatial"]
    stored = spatial[next(k for k in spatial if str(k) == library)]["images"]
    found, off = None, []
    for k in stored:
        image = tissue_image(adata, library, str(k))
        problem = image_register_problem(image, xy, key) if image is not None else None
        if problem is not None:
            found = found or problem
            off.append(str(k))
    if not off:
        return None
    log.warning("%suns['spatial']['%s']: %s; %s. Fix: %s", f"{path}: " if path else "", library, found[0],
                outcome.format(images=(f"the {off[0]} image" if len(off) == 1 else
                                       f"the {', '.join(off[:-1])} and {off[-1]} images"),
                               it="it" if len(off) == 1 else "them", are="is" if len(off) == 1 else "are"),
                found[1])
    return library, off


def _one_parity(grid) -> bool:
    """Whether every spot's grid indices (``obs[['array_col', 'array_row']]``) sum to numbers of one
    parity, as on Visium's hexagonal grid (each row's spots on every other column, the next row's
    between them); a square grid's (Visium HD's bins) take both."""
    try:
        values = np.asarray(grid, dtype=float)
    except (TypeError, ValueError):
        return True
    values = values[np.isfinite(values).all(axis=1)]
    return len(np.unique(np.mod(values.sum(axis=1), 2))) <= 1


def _refuse_visium_grid_indices(adata: ad.AnnData, xy: np.ndarray, key: str, path: str | None) -> None:
    """Refuse coordinates that are Visium's hexagonal grid indices as they are (``obs['array_col']``,
    ``obs['array_row']``, either order, every spot's pair of one parity): its columns lie 50 um apart
    and its rows 86.6 um, so the tissue is squashed 1.73 times along y and a spot's nearest are not
    its grid neighbours.  The same fix as for the indices left in ``obs`` (:func:`check_coordinates`)."""
    pair = _coordinate_columns(adata.obs.columns)
    if not pair or [p.lower() for p in pair] != ["array_col", "array_row"] or adata.n_obs < 3:
        return
    try:
        grid = adata.obs[list(pair)].to_numpy(dtype=float)
    except (TypeError, ValueError):
        return
    if not np.isfinite(grid).all() or np.ptp(grid[:, 1]) == 0 or not _one_parity(grid):
        return
    if not (np.array_equal(xy, grid) or np.array_equal(xy, grid[:, ::-1])):
        return
    raise InputError(f"obsm['{key}'] holds Visium's grid indices as they are (obs['{pair[0]}'], obs['{pair[1]}']): "
                     "its columns lie 50 um apart, its rows 86.6 um, so the tissue would be squashed 1.73 times "
                     "along y and a spot's nearest spots would not be its neighbours on the grid", path=path,
                     fix=f"store the full-resolution pixels of Space Ranger's tissue_positions (stcore.read.visium "
                         f"reads them), or scale the rows: adata.obsm['{key}'] = adata.obs[['{pair[0]}', "
                         f"'{pair[1]}']].to_numpy(float) * [1, 3 ** 0.5]")


def _coordinate_key(adata: ad.AnnData, key: str) -> str | None:
    """The first ``obsm`` key other than ``key`` named as coordinates are (:data:`COORDINATE_KEY`)
    that holds two or more numbers per spot, or None."""
    for other in adata.obsm.keys():
        if other == key or not COORDINATE_KEY.match(str(other)):
            continue
        try:
            value = np.asarray(adata.obsm[other], dtype=float)
        except (TypeError, ValueError):
            continue
        if value.ndim == 2 and value.shape[1] >= 2:
            return str(other)
    return None


def dims_columns(value, dims: Sequence):
    """The columns ``dims`` of an obsm entry (``spatial_dims``): by name in a data frame unless
    every one is a whole number, else by position.  How ``tl.domains`` reads the coordinates and
    ``pl.domains`` draws them."""
    import pandas as pd

    dims = list(dims)
    if isinstance(value, pd.DataFrame) and not all(isinstance(d, (int, np.integer)) for d in dims):
        return value[dims]
    return np.asarray(value)[:, [int(d) for d in dims]]


def check_coordinates(adata: ad.AnnData, key: str = "spatial", *, dims: Sequence | None = None,
                      path: str | None = None, warn_shared: bool = True) -> np.ndarray:
    """The spots' coordinates ``obsm[key]`` as an n_spots x 2 float array, or an error: missing,
    not numeric, not one row per spot, NaN or infinite, all at one point, or more than two
    columns without ``dims`` naming the two to use (positions, or column names of a data
    frame, e.g. ``(0, 1)`` or ``('x', 'y')``).  Spots that share a position are warned of
    (:func:`warn_shared_positions`; ``warn_shared=False``: not here, the caller calls it and keeps
    what it found)."""
    import pandas as pd

    if key not in adata.obsm:
        have = f" (obsm holds {list(adata.obsm.keys())})" if len(adata.obsm) else ""
        other = _coordinate_key(adata, key)
        if other:
            columns = np.shape(adata.obsm[other])[1]
            stored = f"adata.obsm['{other}']" + ("[:, :2]" if columns > 2 else "")
            raise InputError(f"no spot coordinates (obsm['{key}'] is missing){have}; they are under another key: "
                             f"obsm['{other}'] ({columns} numbers per spot)", path=path,
                             fix=f"store them under '{key}': adata.obsm['{key}'] = {stored}"
                                 + (" (the x and y columns)" if columns > 2 else "")
                                 + f" (stcore.tl.domains also reads them with spatial_key='{other}')")
        pair = _coordinate_columns(adata.obs.columns)
        if pair:
            # Visium's grid indices: columns 50 um apart, rows 86.6 um (a hexagonal grid, every spot's row and
            # column of one parity); as they are, the tissue would be squashed 1.73 times along y, and a spot's 6
            # nearest not its 6 neighbours.  Visium HD's bins (and the ST array's spots) lie on a square grid: one
            # index per bin each way, taken as they are (scaled as Visium's, a square grid looks hexagonal)
            grid = [p.lower() for p in pair] == ["array_col", "array_row"]
            hexagonal = grid and _one_parity(adata.obs[list(pair)])
            raise InputError(f"no spot coordinates (obsm['{key}'] is missing){have}; obs has columns "
                             f"'{pair[0]}' and '{pair[1]}'"
                             + ((" (Visium's grid indices: its columns lie 50 um apart, its rows 86.6 um)" if hexagonal
                                 else " (the grid indices of a square grid, as Visium HD's bins lie: its rows and "
                                      "columns one bin apart)") if grid else ""), path=path,
                             fix=f"store them as the coordinates: adata.obsm['{key}'] = "
                                 f"adata.obs[['{pair[0]}', '{pair[1]}']].to_numpy(float)"
                                 + ((" * [1, 3 ** 0.5] (the rows' spacing; or the full-resolution pixels of Space "
                                     "Ranger's tissue_positions)" if hexagonal else
                                     " (times the bin size in um for microns, e.g. * 8 for 8 um bins; or the "
                                     "full-resolution pixels of Space Ranger's tissue_positions)") if grid else ""))
        raise InputError(f"no spot coordinates (obsm['{key}'] is missing){have}", path=path,
                         fix=f"store the x, y coordinates as an n_spots x 2 array in obsm['{key}']")
    value = whole = adata.obsm[key] if dims is not None else as_x_y(adata.obsm[key], adata.obs)
    depths, dropped = None, []
    if dims is not None:
        dims = list(dims)
        if len(dims) != 2:
            raise InputError(f"spatial_dims {dims} names {len(dims)} columns of obsm['{key}'], not 2", path=path,
                             fix="name the two columns that hold x and y, e.g. spatial_dims=(0, 1)")
        named = isinstance(value, pd.DataFrame) and not all(isinstance(d, (int, np.integer)) for d in dims)
        if not named and not all(isinstance(d, (int, np.integer)) for d in dims):
            raise InputError(f"spatial_dims {dims} names columns, but obsm['{key}'] is an array without column names "
                             f"({_columns(adata.obsm[key])})", path=path,
                             fix="give the two columns' positions, e.g. spatial_dims=(0, 1)")
        try:
            value = dims_columns(value, dims)
        except (KeyError, IndexError):
            raise InputError(f"spatial_dims {dims}: obsm['{key}'] has no such columns "
                             f"({_columns(adata.obsm[key])})", path=path,
                             fix="name two of its columns") from None
        columns = list(value.columns) if named else [int(d) % np.shape(adata.obsm[key])[1] for d in dims]
        if columns[0] == columns[1]:
            raise InputError(f"spatial_dims {dims} names one column of obsm['{key}'] twice, as x and as y: every spot "
                             "would lie on one line, its neighbours those of one coordinate", path=path,
                             fix="name the two columns that hold x and y, e.g. spatial_dims=(0, 1)")
    try:
        xy = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"obsm['{key}'] is not numeric", path=path,
                         fix="store the x, y coordinates as numbers") from None
    if xy.ndim != 2 or xy.shape[1] < 2:
        raise InputError(f"obsm['{key}'] has shape {xy.shape}, expected n_spots x 2", path=path,
                         fix="store one (x, y) row per spot")
    if dims is not None and np.ndim(whole) == 2 and np.shape(whole)[1] > 2:
        # the columns left out may be the sections' z: naming x and y would lay them on one another
        names = list(getattr(whole, "columns", []))
        kept = [int(d) % np.shape(whole)[1] if isinstance(d, (int, np.integer)) else names.index(d) for d in dims]
        try:
            every = np.asarray(whole, dtype=float)
        except (TypeError, ValueError):
            every = None
        if every is not None:
            _refuse_sections_in_coordinates(every, whole, key, path, kept=kept)
            _refuse_a_constant_column(every, whole, key, path, kept=kept, dims=dims)
            left = [c for c in range(every.shape[1]) if c not in kept]
            depths = every[:, left]
            # the columns left out that may give the spots' depth: named so, or the third of x, y, z
            dropped = [(f"obsm['{key}']['{names[c]}']" if names else f"obsm['{key}'][:, {c}]", every[:, c])
                       for c in left if (str(names[c]).lower() in CELL_DEPTH_COLUMNS if names
                                         else every.shape[1] == 3 and c == 2)]
    if xy.shape[1] > 2:
        _refuse_sections_in_coordinates(xy, value, key, path)
        _refuse_a_constant_column(xy, value, key, path)
        named = _coordinate_columns(value.columns) if isinstance(value, pd.DataFrame) else None
        if isinstance(value, pd.DataFrame):      # a data frame's columns by name ([:, :2] does not index one)
            pair = named or tuple(str(c) for c in value.columns[:2])
            example = (f"adata.obsm['{key}'] = adata.obsm['{key}'][{list(pair)}].to_numpy(float)"
                       + ("" if named else " when the others are z or extra fields"))
        else:
            pair, example = (0, 1), f"obsm['{key}'][:, :2] when the others are z or extra fields"
        raise InputError(f"obsm['{key}'] has {xy.shape[1]} columns ({_columns(value)}); which two are the "
                         "plane's x and y is not known", path=path,
                         fix=(f"store only x and y in obsm['{key}']: {example}" if named else
                              f"store only x and y in obsm['{key}'] (e.g. {example})")
                             + f", or in stcore.tl.domains name them: spatial_dims={pair!r}")
    if not np.isfinite(xy).all():
        bad = int((~np.isfinite(xy)).any(axis=1).sum())
        narrow = _narrow_float(value)
        if narrow is not None and np.isinf(xy).any():     # beyond the type's largest number: float16's 65504
            largest = float(np.finfo(narrow).max)
            raise InputError(f"{bad} spots have infinite coordinates (obsm['{key}']): it is stored as {narrow.name}, "
                             f"whose largest number is {largest:g}, and their coordinates were beyond it when they were "
                             f"written as {narrow.name}", path=path,
                             fix=f"store the coordinates as float64 from their source (adata.obsm['{key}'] = "
                                 "positions.to_numpy('float64'))")
        raise InputError(f"{bad} spots have NaN or infinite coordinates (obsm['{key}'])", path=path,
                         fix="drop those spots or fill in their coordinates")
    if adata.n_obs > 1 and np.ptp(xy, axis=0).max() == 0:
        raise InputError("all spots sit at one point", path=path,
                         fix=f"check that obsm['{key}'] holds the real coordinates")
    if adata.n_obs > 2 and np.ptp(xy, axis=0).min() > 0:
        # x and y that vary together, every spot on one slanted line: one coordinate given twice (obs[['x', 'x']],
        # array_row twice), or one scaled; the graph would join spots by that one coordinate
        centred = xy - xy.mean(axis=0)
        spread = np.linalg.eigvalsh(centred.T @ centred)
        if spread[0] <= 1e-12 * spread[1]:
            same = np.array_equal(xy[:, 0], xy[:, 1])
            raise InputError(f"every spot lies on one line: the two columns of obsm['{key}'] vary together "
                             + ("(they are equal: one coordinate given twice?)" if same else
                                "(one is the other scaled and shifted: one coordinate given twice?)")
                             + "; the spatial graph would join spots by that one coordinate", path=path,
                             fix=f"store the spots' x and y in obsm['{key}'], e.g. adata.obsm['{key}'] = "
                                 "adata.obs[['x', 'y']].to_numpy(float)")
    _refuse_visium_grid_indices(adata, xy, key, path)
    _refuse_lost_precision(adata, value, xy, key, path)
    check_one_slide(adata, xy=xy, path=path, depths=depths, key=key)
    warn_volume(adata, xy, dropped, path=path)
    if warn_shared:
        warn_shared_positions(adata, xy, key, path=path)
    return xy


def _narrow_float(value) -> np.dtype | None:
    """The narrowest float type of fewer than 64 bits (float32, float16) that holds a column of
    ``value`` (an array or a data frame), else None."""
    dtypes = list(value.dtypes) if hasattr(value, "dtypes") else [getattr(value, "dtype", None)]
    narrow = []
    for d in dtypes:
        try:
            d = np.dtype(d)
        except TypeError:
            continue
        if d.kind == "f" and d.itemsize < 8:
            narrow.append(d)
    return min(narrow, key=lambda d: d.itemsize) if narrow else None


def _refuse_lost_precision(adata: ad.AnnData, value, xy: np.ndarray, key: str, path: str | None) -> None:
    """Refuse coordinates stored in fewer than 64 bits (float32) at magnitudes where the type's step
    is as coarse as the spots' spacing (more than a quarter of the median distance between
    neighbouring distinct positions): absolute coordinates of a large array (Stereo-seq, Visium HD,
    around 2e7, where float32 holds every 2nd number) rounded when written.  Where spots were rounded
    onto one another the spatial graph would join them at distance 0; where none were, each was moved
    by up to half a step against its neighbours, which changes which spots are nearest (a square grid
    of spacing 2.5 steps: a third of the 3 nearest neighbours of every spot lie beyond the grid's
    nearest four; spots at random, 3 steps: 8-10% of them changed)."""
    dtype = _narrow_float(value)
    if dtype is None or len(xy) < 2:
        return
    largest = float(np.abs(xy).max())
    step = float(np.spacing(dtype.type(largest)))
    extent = float(np.prod(np.ptp(xy, axis=0)))
    if step < np.sqrt(extent / len(xy)) / 100:       # far finer than any spacing of these spots: no tree built
        return
    from scipy.spatial import cKDTree

    distinct = np.unique(xy, axis=0)
    if len(distinct) < 2:
        return
    spacing = float(np.median(cKDTree(distinct).query(distinct, k=2)[0][:, 1]))
    if step < spacing / 4:
        return
    fix = (f"store the coordinates as float64 from their source (adata.obsm['{key}'] = "
           "positions.to_numpy('float64')), or subtract their smallest x and y in float64 before storing "
           f"them as {dtype.name} (xy - xy.min(axis=0))")
    stored = (f"obsm['{key}'] is stored as {dtype.name}, which holds numbers near {largest:.3g} only to a step of "
              f"{step:g}, as coarse as the spots' spacing (neighbouring distinct positions lie {spacing:g} apart)")
    order = np.lexsort((xy[:, 1], xy[:, 0]))
    same = np.all(xy[order][1:] == xy[order][:-1], axis=1)
    if not same.any():
        raise InputError(f"{stored}: each coordinate was rounded by up to {step / 2:g} when written as {dtype.name}, "
                         f"which moves the spots by up to {step / 2 / spacing:.0%} of their spacing against their "
                         "neighbours; the spatial graph would join other spots than the nearest", path=path, fix=fix)
    in_group = np.zeros(len(order), dtype=bool)
    in_group[1:] |= same
    in_group[:-1] |= same
    first, second = order[np.argmax(same)], order[np.argmax(same) + 1]
    raise InputError(f"{stored}: {int(in_group.sum())} spots share their position with another (first: "
                     f"'{adata.obs_names[first]}' and '{adata.obs_names[second]}' at ({xy[first, 0]:.10g}, "
                     f"{xy[first, 1]:.10g})), rounded onto one another when the coordinates were written as "
                     f"{dtype.name}; the spatial graph would join them at distance 0", path=path, fix=fix)


#: ``obs`` columns that give each spot's depth beside the plane of its coordinates (a cell's z).
CELL_DEPTH_COLUMNS = ("z", "z_section", "z_centroid", "centroid_z", "center_z", "z_location", "z_um")
#: A depth is a volume's where a spot's nearest neighbour in the plane lies further from it in depth
#: than this many times their distance in the plane (the medians): a block 25 deep or more with cells
#: about 10 apart; a section 10 deep (MERFISH's) stays below 1.
VOLUME_DEPTH_RATIO = 2.0


def warn_volume(adata: ad.AnnData, xy: np.ndarray, dropped=(), *, path: str | None = None) -> str | None:
    """Warn where the spots' depth (an ``obs`` column of :data:`CELL_DEPTH_COLUMNS`, or ``dropped``:
    (name, values) of coordinates' columns left out by ``spatial_dims``) shows a volume rather than a
    section: each spot's nearest neighbour in the plane ``xy`` lies further from it in depth than
    :data:`VOLUME_DEPTH_RATIO` times their distance in the plane (the medians).  The spatial graph of
    x and y alone would join cells at other depths.  Returns the warning, or None."""
    import pandas as pd

    from .graph import spot_spacing

    found = list(dropped)
    for column in adata.obs.columns:
        values = adata.obs[column]
        if (str(column).lower() in CELL_DEPTH_COLUMNS and pd.api.types.is_numeric_dtype(values.dtype)
                and not pd.api.types.is_bool_dtype(values.dtype)):
            found.append((f"obs['{column}']", values.to_numpy(dtype=float)))
    if not found or len(xy) < 2 * MIN_SECTION_SPOTS:
        return None
    nearest = _nearest_other_spot(xy)
    spacing = float(np.median(np.linalg.norm(xy - xy[nearest], axis=1)))
    for name, depth in found:
        depth = np.asarray(depth, dtype=float)
        known = np.isfinite(depth) & np.isfinite(depth[nearest])
        if not known.any() or spacing <= 0:
            continue
        gap = float(np.median(np.abs(depth - depth[nearest])[known]))
        if gap <= VOLUME_DEPTH_RATIO * spacing:
            continue
        low, high = float(np.nanmin(depth)), float(np.nanmax(depth))
        # slabs twice as deep as the spots lie apart in the volume (the median distance to the nearest in x, y
        # and depth): a section's few cells deep
        inside = np.isfinite(depth)
        apart = spot_spacing(np.column_stack([xy[inside], depth[inside]])) if inside.sum() > 1 else spacing
        cut = f"{low + 2 * apart:.4g}"
        select = (f"adata[adata.obs['{name[5:-2]}'] < {cut}].copy()" if name.startswith("obs[")
                  else f"adata[adata.{name} < {cut}].copy()")
        # an array's column left out by spatial_dims: the third of x, y, z, read as the spots' z
        taken = " (the column spatial_dims leaves out, taken for the spots' z)" if "[:, " in name else ""
        text = (f"{name}{taken} gives the spots' depth over {high - low:.3g} ({low:.3g} to {high:.3g}): a volume, not a "
                f"section: each spot's nearest neighbour in the plane of the coordinates lies {gap:.3g} from it in "
                f"depth (the median), {gap / spacing:.2g} times their distance in the plane ({spacing:.3g}); the "
                "spatial graph of x and y alone joins cells at other depths, as if the volume were pressed flat")
        log.warning("%s%s. Fix: give the volume as slabs thin enough that a spot's neighbours in the plane are its "
                    "neighbours in depth, one slide each, e.g. %s (in the workflow one row of the sample sheet per "
                    "slab, the same group to train them together)", f"{path}: " if path else "", text, select)
        return text
    return None


def warn_shared_positions(adata: ad.AnnData, xy: np.ndarray, key: str = "spatial", *, path: str | None = None,
                          said: str | None = None) -> str | None:
    """Warn where spots share a position (:func:`shared_positions`) and return what was found
    (None where no spots do).  ``said``: what an earlier call on these spots found and warned of
    (``stcore.gr.spatial_graph`` keeps it in ``uns[<key_added>_neighbors]['shared_positions']``);
    the same finding is not said again (``gr.spatial_graph`` then ``tl.domains`` said it twice)."""
    shared = shared_positions(adata, xy)
    if shared and shared != said:
        log.warning("%s%s. Fix: drop the repeated spots, or correct their coordinates in obsm['%s']",
                    f"{path}: " if path else "", shared, key)
    return shared


def _refuse_sections_in_coordinates(xy: np.ndarray, value, key: str, path: str | None, kept=()) -> None:
    """Coordinates of more than two columns where one of them takes few values, each held by
    :data:`MIN_SECTION_SPOTS` spots or more, spaced as sections are (not the planes of one
    section, :func:`_planes_of_one_section`): the spots of several sections at their z.  Refused
    as such, since dropping that column would lay the sections on one another.  ``kept``: the
    columns a caller named as x and y (``spatial_dims``); a sections' column among them is theirs
    to name."""
    import pandas as pd

    if xy.shape[0] < 2 * MIN_SECTION_SPOTS or not np.isfinite(xy).all():
        return
    found = []
    for k in range(xy.shape[1]):
        counts = pd.Series(xy[:, k]).value_counts()
        if not (2 <= len(counts) <= xy.shape[0] // 2 and int(counts.min()) >= MIN_SECTION_SPOTS):
            continue
        plane = np.delete(xy, k, axis=1)
        if plane.shape[1] != 2 or not (np.ptp(plane, axis=0) > 0).all():
            continue
        if not _planes_of_one_section(counts.index.to_numpy(float), plane, _nearest_other_spot(plane)):
            found.append((k, np.sort(counts.index.to_numpy(float))))
    if len(found) != 1 or found[0][0] in kept:
        return
    k, levels = found[0]
    shown = ", ".join(f"{v:g}" for v in levels[:5]) + (", ..." if len(levels) > 5 else "")
    cols = getattr(value, "columns", None)
    name = f"obsm['{key}']['{cols[k]}']" if cols is not None else f"obsm['{key}'][:, {k}]"
    keep = [j for j in range(xy.shape[1]) if j != k]
    rest = (f"part.obsm['{key}'][{[str(cols[j]) for j in keep]}]" if cols is not None
            else f"part.obsm['{key}'][:, {keep}]")
    raise InputError(f"obsm['{key}'] has {xy.shape[1]} columns ({_columns(value)}), and {name} takes only "
                     f"{len(levels)} values ({shown}), each held by many spots: the spots of several sections, at "
                     "their z; taking the other two columns would lay the sections on one another, and one spatial "
                     "graph over them would join spots of different sections", path=path,
                     fix=f"split the object by that column and give one section at a time, e.g. part = "
                         f"adata[adata.{name} == {float(levels[0])!r}].copy(); part.obsm['{key}'] = {rest}; in the workflow "
                         "one row of the sample sheet per section (the same group to train them together)")


def _refuse_a_constant_column(every: np.ndarray, value, key: str, path: str | None, *, kept=None, dims=None) -> None:
    """Coordinates of more than two columns of which exactly two vary, the others one value for every
    spot (z, x, y of one plane, z first as image tools give centroids): refused naming the two that vary,
    where no columns were named (``kept`` None) or where ``dims`` (``spatial_dims``, the columns ``kept``)
    names a constant one: taken, every spot would lie on one line, its neighbours those of one coordinate."""
    if every.shape[0] < 2 or not np.isfinite(every).all():
        return
    varies = [c for c in range(every.shape[1]) if np.ptp(every[:, c]) > 0]
    if len(varies) != 2:
        return
    cols = getattr(value, "columns", None)

    def name(c) -> str:
        return f"obsm['{key}']['{cols[c]}']" if cols is not None else f"obsm['{key}'][:, {c}]"

    pair = tuple(str(cols[c]) for c in varies) if cols is not None else tuple(varies)
    constant = [c for c in range(every.shape[1]) if c not in varies]
    if kept is None:
        stored = (f"adata.obsm['{key}'][{[str(cols[c]) for c in varies]}].to_numpy(float)" if cols is not None
                  else f"adata.obsm['{key}'][:, {varies}]")
        raise InputError(f"obsm['{key}'] has {every.shape[1]} columns ({_columns(value)}), and "
                         + ", ".join(f"{name(c)} holds one value ({every[0, c]:g}) for every spot" for c in constant)
                         + f": x and y are the two that vary, {name(varies[0])} and {name(varies[1])}", path=path,
                         fix=f"store only x and y in obsm['{key}']: adata.obsm['{key}'] = {stored}, or in "
                             f"stcore.tl.domains name them: spatial_dims={pair!r}")
    flat = [c for c in kept if c in constant]
    if not flat:
        return
    out = next(c for c in varies if c not in kept)
    raise InputError(f"spatial_dims {list(dims)!r} names {name(flat[0])}, which holds one value ({every[0, flat[0]]:g}) "
                     f"for every spot, and leaves out {name(out)}, which varies: every spot would lie on one line, its "
                     "neighbours those of one coordinate", path=path,
                     fix=f"name the two columns that vary: spatial_dims={pair!r}")


def shared_positions(adata: ad.AnnData, xy: np.ndarray) -> str | None:
    """What is wrong where spots share their (x, y) position, or None: how many spots and
    positions, the first two spots' names, and how many of them repeat another spot's counts too
    (the same spot twice in the data).  The spatial graph links such spots as neighbours at
    distance 0, and a repeated spot counts twice in every score."""
    order = np.lexsort((xy[:, 1], xy[:, 0]))
    same = np.all(xy[order][1:] == xy[order][:-1], axis=1)
    if not same.any():
        return None
    in_group = np.zeros(len(order), dtype=bool)
    in_group[1:] |= same
    in_group[:-1] |= same
    first, second = order[np.argmax(same)], order[np.argmax(same) + 1]
    pairs = np.flatnonzero(same)[:10000]
    x = adata.X
    repeated = 0
    if x is not None:
        for k in pairs:
            a, b = x[order[k]], x[order[k + 1]]
            repeated += int((a != b).nnz == 0 if hasattr(a, "nnz") else np.array_equal(np.asarray(a), np.asarray(b)))
    places = int(in_group.sum() - same.sum())
    text = (f"{int(in_group.sum())} spots share their position with another spot "
            f"({places} position{'s' if places != 1 else ''}; first: '{adata.obs_names[first]}' and "
            f"'{adata.obs_names[second]}' at ({xy[first, 0]:g}, {xy[first, 1]:g}))")
    if repeated:
        text += (f"; {repeated} of {min(len(pairs), int(same.sum()))} such pairs also have the same counts: "
                 "one spot twice")
    return text + ("; the spatial graph links them as neighbours at distance 0, and a repeated spot counts twice "
                   "in every score")


#: Slides of fewer spots are not judged by :func:`warn_no_spatial_pattern` (spots at random reach a
#: Moran's I of 0.17 at 200 spots one time in a thousand, 0.3 at 64).
PATTERN_MIN_SPOTS = 200
#: :func:`warn_no_spatial_pattern` warns below this many standard deviations of Moran's I above its
#: mean for spots at random positions on the same graph.
PATTERN_SDS = 3.5


def spatial_pattern(x, adj, n_components: int = 5) -> float:
    """The largest Moran's I, over the spatial graph ``adj`` (spots x spots, its edges of weight 1),
    of the first ``n_components`` principal components of ``x`` (spots x genes, the transformed
    expression).  A tissue's expression follows its structure: 0.49-0.91 on the six shared slides
    (DLPFC, MERFISH, STARmap, osmFISH; the workflow's HVG transform and graph); the same spots at
    their positions in another order give 0.045 or less.  The decomposition starts from a fixed vector and draws nothing from numpy's or torch's
    random state."""
    import scipy.sparse as sp

    w = _edge_weights(adj)
    k = min(n_components, x.shape[1] - 1, x.shape[0] - 1)
    if k < 1 or w.nnz == 0:
        return float("nan")
    x = sp.csr_matrix(x, dtype=np.float64)
    mean = np.asarray(x.mean(axis=0)).ravel()
    pcs = _centred_components(x, mean, k)
    z = pcs - pcs.mean(axis=0)
    own = np.einsum("ij,ij->j", z, z)
    keep = own > 0
    if not keep.any():
        return float("nan")
    moran = x.shape[0] / w.sum() * np.einsum("ij,ij->j", z, w @ z)[keep] / own[keep]
    return float(moran.max())


def _edge_weights(adj):
    """``adj`` as Moran's I weighs it: each edge 1, no spot its own neighbour."""
    import scipy.sparse as sp

    w = sp.csr_matrix(adj, dtype=np.float64)
    w.data[:] = 1.0
    w.setdiag(0)
    w.eliminate_zeros()
    return w


def random_pattern_limit(adj, sds: float = PATTERN_SDS) -> float:
    """Moran's I over the graph ``adj`` that spots at random positions stay below: its mean plus
    ``sds`` standard deviations under randomness (Cliff and Ord's variance under normality, from
    the graph alone: about ``sds`` x sqrt(2 / edges), 0.06 at 1,500 spots and 3 neighbours each)."""
    w = _edge_weights(adj)
    n = w.shape[0]
    s0 = w.sum()
    if n < 3 or s0 == 0:
        return float("nan")
    both = w + w.T
    s1 = 0.5 * both.multiply(both).sum()
    s2 = float(((np.asarray(w.sum(axis=1)).ravel() + np.asarray(w.sum(axis=0)).ravel()) ** 2).sum())
    mean = -1.0 / (n - 1)
    var = (n * n * s1 - n * s2 + 3 * s0 * s0) / ((n * n - 1) * s0 * s0) - mean * mean
    return float(mean + sds * np.sqrt(max(var, 0.0)))


def _centred_components(x, mean: np.ndarray, k: int) -> np.ndarray:
    """The spots' scores on the first ``k`` principal components of the sparse ``x`` (centred by
    ``mean`` without forming a dense copy: a linear operator, as scanpy's sparse PCA)."""
    from scipy.sparse.linalg import LinearOperator, svds

    n, g = x.shape
    op = LinearOperator((n, g), dtype=np.float64,
                        matvec=lambda v: x @ v - mean @ v,
                        rmatvec=lambda v: x.T @ v - mean * v.sum(),
                        matmat=lambda m: x @ m - np.outer(np.ones(n), mean @ m),
                        rmatmat=lambda m: x.T @ m - np.outer(mean, m.sum(axis=0)))
    u, s, _ = svds(op, k=k, v0=np.ones(min(n, g)) / np.sqrt(min(n, g)))
    return u * s


def warn_no_spatial_pattern(x, adj, key: str = "spatial", *, path: str | None = None) -> float | None:
    """Warn where the expression shows no spatial pattern over the graph of ``obsm[key]``
    (:func:`spatial_pattern` below what spots at random positions reach on this graph,
    :func:`random_pattern_limit`; a weak pattern above it, as a noisy slide's, passes): the
    coordinates in another order than the spots, as a positions table's ``.to_numpy()`` not
    reindexed to ``obs_names`` leaves them; the domains would follow no structure of the tissue.
    Returns the Moran's I (None for fewer than :data:`PATTERN_MIN_SPOTS` spots)."""
    n = x.shape[0]
    if n < PATTERN_MIN_SPOTS:
        return None
    found = spatial_pattern(x, adj)
    limit = random_pattern_limit(adj)
    if np.isfinite(found) and found < limit:
        log.warning("%sthe expression shows no spatial pattern over obsm['%s']: the largest Moran's I of its first 5 "
                    "principal components over the spatial graph is %.3f (a tissue's: 0.49-0.91 on the shared "
                    "DLPFC, MERFISH, STARmap and osmFISH slides; spots at random positions on this graph: below %.3f at %d spots); "
                    "the coordinates may be in another order than the spots (a positions table's .to_numpy() not "
                    "reindexed to obs_names), and the domains would follow no structure of the tissue. Fix: store "
                    "the coordinates in the spots' order, e.g. adata.obsm['%s'] = "
                    "positions.loc[adata.obs_names, ['x', 'y']].to_numpy(float)",
                    f"{path}: " if path else "", key, found, limit, n, key)
    return found


def annotation_pattern(xy: np.ndarray, labels) -> tuple[float, float, int] | None:
    """The largest Moran's I, over the workflow's spatial graph of the annotated spots
    (:func:`stcore.graph.spatial_adjacency`), of any label's indicator (1 on its spots, 0 on the
    others), the value labels in a random order stay below on that graph
    (:func:`random_pattern_limit`), and the annotated spots; None for fewer than
    :data:`PATTERN_MIN_SPOTS` annotated spots or fewer than two labels.  An annotation follows the
    tissue: 0.47 (MERFISH's cell classes) to 1.03 on the six shared slides, the same labels in a
    random order 0.022 or less (their limits 0.034-0.079).  Sparse: the labels' indicators and the
    graph, no spots x labels dense matrix."""
    import scipy.sparse as sp

    from .evaluate import is_missing_label, label_text
    from .graph import spatial_adjacency

    labels = np.asarray(labels, dtype=object)
    keep = ~is_missing_label(labels)
    n = int(keep.sum())
    if n < PATTERN_MIN_SPOTS:
        return None
    codes = np.unique(label_text(labels[keep]), return_inverse=True)[1].ravel()
    k = int(codes.max()) + 1
    if k < 2:
        return None
    adj = spatial_adjacency(np.asarray(xy, dtype=float)[keep])
    w = _edge_weights(adj)
    s0 = float(w.sum())
    if s0 == 0:
        return None
    x = sp.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, k))
    s_kk = np.asarray((x.T @ w @ x).diagonal()).ravel()
    c_k = np.bincount(codes, weights=np.asarray(w.sum(axis=1)).ravel(), minlength=k)
    n_k = np.bincount(codes, minlength=k).astype(np.float64)
    p = n_k / n
    moran = n / s0 * (s_kk - 2 * p * c_k + p * p * s0) / (n_k * (1 - p))
    return float(moran.max()), random_pattern_limit(adj), n


def unordered_annotation(xy: np.ndarray, labels, column: str) -> str | None:
    """The warning where the annotation obs[``column``] shows no spatial pattern
    (:func:`annotation_pattern` below its limit): its labels, or the coordinates, in another order than
    the spots, as a table's ``.values`` not reindexed to ``obs_names`` leaves them; else None."""
    pattern = annotation_pattern(xy, labels)
    if pattern is None or not pattern[0] < pattern[1]:
        return None
    return (f"truth column '{column}' shows no spatial pattern: the largest Moran's I of its labels over the spatial "
            f"graph is {pattern[0]:.3f} (an annotation's: 0.47-1.03 on the six shared slides; labels in a random order "
            f"on this graph: below {pattern[1]:.3f} at {pattern[2]} spots); the labels or the coordinates may be in "
            "another order than the spots (a table's .to_numpy() or .values not reindexed to obs_names), and every "
            "score would compare the domains with other spots' labels. Fix: assign them by spot id, e.g. "
            f"adata.obs['{column}'] = labels.reindex(adata.obs_names), or adata.obsm['spatial'] = "
            "positions.loc[adata.obs_names, ['x', 'y']].to_numpy(float)")


LIBRARY_KEY = "library_id"      # the obs column naming each spot's slide (scanpy's and squidpy's library_key)
# Other obs columns that name each spot's slide or section where several were joined into one
# object: AnnData.concatenate's batch_key ('batch'), anndata.concat's label= as users spell it,
# Seurat's per-sample identity ('orig.ident', kept in obs by SeuratDisk and sceasy), and the section columns of the published MERFISH tables: the Moffitt et al. hypothalamus table
# ('Animal_ID', 'Bregma'), the Allen Brain Cell atlas ('brain_section_label', 'donor_label', and
# 'z' / 'z_section', each section's position).
SLIDE_COLUMNS = ("batch", "slide", "slide_id", "slide_name", "sample", "sample_id", "sample_name", "library",
                 "orig.ident", "library_name", "section", "section_id", "section_name", "section_label", "brain_section_label",
                 "slice", "slice_id", "slice_name", "dataset", "bregma", "animal_id", "donor_id", "donor_label",
                 "z", "z_section")
# Of those, the ones that give a depth in the coordinates' units (the planes of one section, or
# the sections' positions).
DEPTH_COLUMNS = ("z", "z_section")
# Columns naming each cell's field of view (CosMx's 'fov', kept by squidpy's read.nanostring): the
# fields of view of one slide lie side by side in its coordinates; on one another, the coordinates
# are each field's own (CenterX_local_px), not the slide's.
FOV_COLUMNS = ("fov", "fov_id", "fov_name")
# Columns naming each spot's imaging plane (an index, not a depth in the coordinates' units: MERSCOPE's
# global_z): one tissue's planes, judged by :func:`_stacked_planes`.
PLANE_COLUMNS = ("plane", "z_plane", "zplane", "z_index", "z_slice", "z_level", "global_z")
# Planes whose spots lie nearer than this share of one plane's spacing to a spot of the next (the
# medians) are the same positions measured in each plane; distinct cells lie about one spacing apart.
STACKED_SHARE = 0.25
# A slide column whose groups lie among each other: more than this share of the spots have their
# nearest neighbour in another group (two joined Visium slides: most; one slide's regions, or
# slides placed side by side: only the spots along a border).
MIXED_SHARE = 0.25
# A column of numbers (a float 'bregma', 'section' or 'z') names sections only where each of its
# values is held by at least this many spots; a measured value (a depth per cell, a count) has
# values held by one spot or a few.
MIN_SECTION_SPOTS = 10


def _slide_columns(adata: ad.AnnData, xy: np.ndarray | None, side_by_side: bool = False):
    """The ``obs`` columns that name two slides or more, as :func:`check_one_slide` judges them (its
    rule, in its order): (column, its values, their codes, the share of the spots whose nearest
    neighbour lies in another group or None, the spots' nearest other spot or None, the reason
    said, whether the column holds numbers, whether it names fields of view).  ``side_by_side``: a
    column named as slides counts also where its groups lie side by side."""
    import pandas as pd

    spatial = adata.uns.get("spatial")
    libraries = {str(k) for k in spatial} if isinstance(spatial, Mapping) else set()
    region_key = spatialdata_region_key(adata)
    nearest = None
    for column in adata.obs.columns:
        values = adata.obs[column]
        numeric = pd.api.types.is_numeric_dtype(values.dtype)
        fov = str(column).lower() in FOV_COLUMNS      # one slide's fields of view: side by side, whatever uns holds
        by_library = not fov and (column == LIBRARY_KEY or (len(libraries) >= 2 and not numeric))
        numeric = numeric and not pd.api.types.is_bool_dtype(values.dtype)
        by_name = xy is not None and _names_slides(adata, column, region_key)
        if not (by_library or by_name):           # the other columns are not read at all
            continue
        unique = pd.unique(values.dropna())
        if len(unique) < 2:
            continue
        present = [str(v) for v in unique]
        codes = pd.Categorical(values.astype(object).where(values.notna(), None)).codes
        mixed = None
        if by_library and (column == LIBRARY_KEY or set(present) <= libraries):
            reason = ""
        elif by_name and len(present) <= adata.n_obs // 2:
            if pd.api.types.is_float_dtype(values.dtype) and not _sections_of_numbers(values):
                continue
            if nearest is None:
                nearest = _nearest_other_spot(xy)
            if (numeric and str(column).lower() in DEPTH_COLUMNS
                    and _planes_of_one_section(np.asarray(unique, dtype=float), xy, nearest)):
                continue
            known = codes >= 0
            mixed = float(np.mean(codes[known] != codes[nearest][known]))
            if str(column).lower() in PLANE_COLUMNS:
                stacked = _stacked_planes(xy, values)
                if stacked is None:
                    continue
                reason = (f" stacked at the same x, y: a spot's nearest in the next plane lies {stacked[0]:.3g} from "
                          f"it, where the spots of one plane lie {stacked[1]:.3g} apart (the medians): the same "
                          "positions measured in each plane")
                yield column, unique, codes, mixed, nearest, reason, numeric, fov
                continue
            if mixed <= MIXED_SHARE and not side_by_side:
                continue
            reason = (f", and they lie among each other: {mixed:.0%} of the spots have their nearest neighbour in "
                      "another slide")
        else:
            continue
        yield column, unique, codes, mixed, nearest, reason, numeric, fov


def check_one_slide(adata: ad.AnnData, *, xy: np.ndarray | None = None, path: str | None = None,
                    depths: np.ndarray | None = None, key: str = "spatial") -> None:
    """The spots come from one slide: refused when ``obs['library_id']``, or an ``obs`` column
    whose values are library ids of ``uns['spatial']``, names two slides or more (as
    ``anndata.concat(..., label='library_id')`` leaves several slides; their coordinates share
    one frame, so one spatial graph would join spots of different slides).  A slide taken out of
    such an object (one value left in the column, every library still in ``uns``) passes.
    With the coordinates ``xy``, also a column named as joined slides or sections are
    (:data:`SLIDE_COLUMNS`: ``AnnData.concatenate``'s ``batch``, ``anndata.concat(label='slide')``,
    MERFISH's ``bregma``, ``z``, ...) with two values or more whose spots lie among each other
    (more than :data:`MIXED_SHARE` of the spots' nearest neighbours in another group); groups
    that meet only along a border pass.  A column of numbers counts where it takes few values,
    each held by :data:`MIN_SECTION_SPOTS` spots or more; a ``z`` whose values lie closer together
    than half the spots' usual distance to their nearest neighbour gives the depths of one section
    imaged in several planes, and passes.  Slides joined without such a column are judged by
    :func:`_refuse_slides_joined_without_label`; ``depths``: the columns of the coordinates left
    out of ``xy`` (a section's planes, whose groups are not taken for slides)."""
    region_key = spatialdata_region_key(adata)
    for column, unique, codes, mixed, nearest, reason, numeric, fov in _slide_columns(adata, xy):
        present = [str(v) for v in unique]
        if numeric:                               # numbers are selected as numbers: == 0.21, not == '0.21'
            present = [repr(v.item() if hasattr(v, "item") else v) for v in unique]
            shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
            first = present[0]
        else:
            shown = ", ".join(f"'{v}'" for v in present[:5]) + (", ..." if len(present) > 5 else "")
            first = f"'{present[0]}'"
        if xy is not None:
            _refuse_local_coordinates(adata, xy, codes, key, column, shown, path, fov=fov, mixed=mixed,
                                      nearest=nearest)
        elements = (f" (the SpatialData elements its table annotates, uns['spatialdata_attrs']['region'])"
                    if column == region_key else "")
        if str(column).lower() in PLANE_COLUMNS:
            raise InputError(f"the spots come from {len(present)} planes (obs['{column}']: {shown}){reason}; one "
                             "spatial graph over them would join each spot to its copies in the other planes",
                             path=path,
                             fix="sum each position's counts over the planes (one spot per position), or give one "
                                 f"plane at a time, e.g. adata[adata.obs['{column}'] == {first}].copy()")
        raise InputError(f"the spots come from {len(present)} slides (obs['{column}']: {shown}){elements}{reason}; "
                         "one spatial graph over them would join spots of different slides", path=path,
                         fix=f"give one slide at a time, e.g. adata[adata.obs['{column}'] == {first}]"
                             ".copy(); in the workflow one row of the sample sheet per slide (the same group "
                             "to train them together)"
                             + (f"; a SpatialData store: one store per slide, e.g. sdata.subset([{first}], "
                                f"filter_tables=True).write('{present[0]}.zarr')" if elements else ""))
    if xy is not None:
        _refuse_slides_joined_without_label(adata, xy, path, depths)


def slide_column(adata: ad.AnnData, xy: np.ndarray | None = None, *, side_by_side: bool = False) -> str | None:
    """The ``obs`` column naming each spot's slide where the object holds several
    (:func:`check_one_slide`'s rule: ``obs['library_id']`` or a column of ``uns['spatial']``'s libraries
    with two values or more, as ``anndata.concat(..., label='library_id')`` leaves them; with ``xy``, a
    column named as slides are whose groups lie among each other, or with ``side_by_side`` also where
    they lie side by side (slides laid out in one frame, each at its own offset); not a column of one
    slide's fields of view), else None."""
    return next((found[0] for found in _slide_columns(adata, xy, side_by_side) if not found[7]), None)   # not fields of view


def spatialdata_region_key(adata: ad.AnnData) -> str | None:
    """The ``obs`` column naming the SpatialData element each row of a table annotates, where the
    table annotates several (``uns['spatialdata_attrs']``: ``region`` a list of two or more, its
    ``region_key``): the slides of a store joined by ``spatialdata.concatenate``, or one slide's
    fields of view (CosMx), judged as a slide column is (:func:`check_one_slide`); else None."""
    attrs = adata.uns.get("spatialdata_attrs")
    if not isinstance(attrs, Mapping):
        return None
    region, key = attrs.get("region"), attrs.get("region_key")
    if isinstance(region, str) or np.size(region) < 2 or not isinstance(key, str) or key not in adata.obs:
        return None
    return key



def _names_slides(adata: ad.AnnData, column, region_key: str | None) -> bool:
    """Whether ``obs[column]`` is named as a column of slides, sections or fields of view is
    (:data:`SLIDE_COLUMNS`, :data:`FOV_COLUMNS`, a SpatialData table's region key), whose groups are
    judged by where their spots lie."""
    name = str(column).lower()
    return (name in SLIDE_COLUMNS or name in FOV_COLUMNS or name in PLANE_COLUMNS
            or (region_key is not None and column == region_key))


def named_as_coordinates(key) -> bool:
    """Whether an ``obsm`` key is named as the spots' coordinates are: :data:`COORDINATE_KEY`, or
    holding 'spatial' or 'global' (squidpy's CosMx ``spatial_fov``, spatialdata-io's ``global``)."""
    return bool(COORDINATE_KEY.match(str(key))) or any(w in str(key).lower() for w in ("spatial", "global"))


def _side_by_side_in(adata: ad.AnnData, xy: np.ndarray, codes: np.ndarray, key: str) -> tuple[str, str] | None:
    """Other coordinates of the spots, named as coordinates are (an ``obsm`` key,
    :func:`named_as_coordinates`; a pair of
    :data:`COORDINATE_COLUMNS` in ``obs``), under which the groups ``codes`` lie side by side (no
    more than :data:`MIXED_SHARE` of the spots' nearest neighbours in another group): (where, the
    expression that stores them), or None."""
    known = codes >= 0
    candidates = [(f"obsm['{k}']", f"adata.obsm['{k}']", adata.obsm[k]) for k in adata.obsm.keys()
                  if k != key and named_as_coordinates(k)]
    pair = _coordinate_columns(adata.obs.columns)
    if pair:
        candidates.append((f"obs['{pair[0]}'], obs['{pair[1]}']", f"adata.obs[['{pair[0]}', '{pair[1]}']]"
                           ".to_numpy(float)", adata.obs[list(pair)]))
    for where, expr, value in candidates:
        try:
            other = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            continue
        if other.ndim != 2 or other.shape[0] != len(xy) or other.shape[1] < 2 or not np.isfinite(other[:, :2]).all():
            continue
        other = other[:, :2]
        if np.allclose(other, xy) or np.ptp(other, axis=0).min() == 0:
            continue
        nearest = _nearest_other_spot(other)
        if known.any() and float(np.mean(codes[known] != codes[nearest][known])) <= MIXED_SHARE:
            return where, expr + ("[:, :2]" if np.shape(value)[1] > 2 and where.startswith("obsm") else "")
    return None


def _refuse_local_coordinates(adata: ad.AnnData, xy: np.ndarray, codes: np.ndarray, key: str, column,
                              shown: str, path: str | None, *, fov: bool, mixed: float | None,
                              nearest: np.ndarray | None) -> None:
    """The groups of ``obs[column]`` lie on one another in ``obsm[key]`` because it holds coordinates
    local to each (a CosMx slide's fields of view: squidpy's ``read.nanostring`` stores each cell's
    position in its field of view as ``obsm['spatial']``, the slide's in ``obsm['spatial_fov']``):
    refused naming the coordinates that lay them side by side, where the object holds them, else
    (a column of fields of view) the slide's coordinates to store.  Nothing where neither applies."""
    known = codes >= 0
    if mixed is None:
        nearest = _nearest_other_spot(xy) if nearest is None else nearest
        mixed = float(np.mean(codes[known] != codes[nearest][known])) if known.any() else 0.0
    found = _side_by_side_in(adata, xy, codes, key)
    groups = "fields of view" if fov else "groups"
    n = len(np.unique(codes[known]))
    if found:
        where, expr = found
        hint = (f" (stcore.tl.domains also reads them with spatial_key='{where[6:-2]}')"
                if where.startswith("obsm") else "")
        raise InputError(f"obsm['{key}'] lays the {n} {groups} of obs['{column}'] ({shown}) on one another "
                         f"({mixed:.0%} of the spots have their nearest neighbour in another), where {where} put "
                         f"them side by side: obsm['{key}'] holds coordinates local to each (as squidpy's "
                         "read.nanostring stores a CosMx slide's fields of view, the slide's coordinates in "
                         "obsm['spatial_fov']); one spatial graph over them would join spots far apart", path=path,
                         fix=f"store the slide's coordinates as obsm['{key}']: adata.obsm['{key}'] = {expr}{hint}")
    if fov:
        raise InputError(f"the spots come from {n} fields of view (obs['{column}']: {shown}), and obsm['{key}'] lays "
                         f"them on one another: {mixed:.0%} of the spots have their nearest neighbour in another "
                         "field of view; it holds coordinates local to each field of view (CosMx's CenterX_local_px, "
                         "CenterY_local_px), not the slide's, and one spatial graph over them would join spots far "
                         "apart", path=path,
                         fix=f"store the slide's coordinates as obsm['{key}'] (CosMx: adata.obsm['{key}'] = "
                             "adata.obs[['CenterX_global_px', 'CenterY_global_px']].to_numpy(float))")


#: Space Ranger's grid position of each spot (scanpy's read_visium keeps them in obs): one spot at
#: each position of a slide.
GRID_COLUMNS = ("array_row", "array_col")
# The separators anndata.concat(..., index_unique=...) is given between a spot's id and its slide's key
# (a suffix), and Seurat's merge(add.cell.ids=) between the slide's name and the cell's (a prefix).
_ID_SUFFIX = re.compile(r"^(.+)([-_:|.])([^-_:|.]+)$")
_ID_PREFIX = re.compile(r"^([^-_:|.]+)([-_:|.])(.+)$")


def _id_suffixes(names, prefix: bool = False) -> tuple[str, np.ndarray] | None:
    """(separator, the suffix of each id) where every spot id ends in one separator and a suffix
    that takes two values or more, each held by :data:`MIN_SECTION_SPOTS` spots or more, as
    ``anndata.concat(..., index_unique='-')`` leaves ``<barcode>-<key>`` (a Visium barcode's own
    ``-1`` is one value for a whole slide), and where half the ids of each group or more differ from
    an id of another group only in it (index_unique= is needed where slides share spot ids: the
    same barcodes, cells numbered from 0 on each; ids that end in a label of their own,
    'cell12_Neuron', or number each label's cells apart, 'Neuron_1'..'Neuron_500', 'Astro_1'..
    'Astro_80', do not);
    else None.  ``prefix``: the same of the part before the first separator, as Seurat's
    ``merge(..., add.cell.ids=c('A', 'B'))`` names each slide's cells ``A_<barcode>``."""
    import pandas as pd

    found = [(_ID_PREFIX if prefix else _ID_SUFFIX).match(str(n)) for n in names]
    if not found or not all(found) or len({m.group(2) for m in found}) != 1:
        return None
    key, stem = (1, 3) if prefix else (3, 1)
    suffix = np.array([m.group(key) for m in found], dtype=object)
    counts = pd.Series(suffix).value_counts()
    if len(counts) < 2 or int(counts.min()) < MIN_SECTION_SPOTS:
        return None
    stems = pd.DataFrame({"group": suffix, "stem": [m.group(stem) for m in found]}).drop_duplicates()
    shared = stems["stem"].duplicated(keep=False)
    if shared.sum() < MIN_SECTION_SPOTS or float(shared.groupby(stems["group"]).mean().min()) < 0.5:
        return None
    return found[0].group(2), suffix


def _same_groups(values, other: np.ndarray) -> bool:
    """Whether ``values`` (an obs column) and ``other`` split the spots into the same groups."""
    import pandas as pd

    pairs = pd.DataFrame({"a": pd.Series(values).astype(object).to_numpy(), "b": other}).drop_duplicates()
    return bool(pairs["a"].is_unique and pairs["b"].is_unique)


def _refuse_slides_joined_without_label(adata: ad.AnnData, xy: np.ndarray, path: str | None,
                                        depths: np.ndarray | None = None) -> None:
    """Several slides joined without a column naming each spot's slide, as
    :func:`joined_without_label` finds them, are refused."""
    found = joined_without_label(adata, xy, depths)
    if found is None:
        return
    problem, split = found
    raise InputError(f"{problem}; one spatial graph over them would join spots of different slides", path=path,
                     fix=f"give one slide at a time, e.g. {split}join slides with anndata.concat(..., "
                         "label='library_id') to keep which slide each spot came from; in the workflow one row of "
                         "the sample sheet per slide")


def joined_without_label(adata: ad.AnnData, xy: np.ndarray,
                         depths: np.ndarray | None = None) -> tuple[str, str] | None:
    """Several slides joined without a column naming each spot's slide (``anndata.concat`` without
    ``label=``, ``index_unique='-'`` making the ids unique): refused where spots share a Visium grid
    position (``obs['array_row']``, ``obs['array_col']``: a slide has one spot at each), or where the
    ids' suffixes (:func:`_id_suffixes`) group the spots into sets that lie among each other
    (:data:`MIXED_SHARE`, as a slide column's groups are judged) and each span the tissue in both
    directions (ids ending in a coordinate, '<x>_<y>' as binned platforms name bins, give rows):
    (the problem, in words; an expression taking one slide out, or ''), else None."""
    import pandas as pd

    obs = adata.obs
    found = []
    if all(c in obs and pd.api.types.is_numeric_dtype(obs[c]) for c in GRID_COLUMNS):
        twice = int(obs[list(GRID_COLUMNS)].dropna().duplicated(keep=False).sum())
        if twice:
            found.append(f"{twice} spots share their Visium grid position (obs['array_row'], obs['array_col']) with "
                         "another spot, where a slide has one spot at each")
    prefix = False
    suffixes = _id_suffixes(adata.obs_names)
    if suffixes is None:
        prefix, suffixes = True, _id_suffixes(adata.obs_names, prefix=True)
    region_key = spatialdata_region_key(adata)
    named = [obs[c] for c in obs.columns if _names_slides(adata, c, region_key)]
    named += [] if depths is None else [depths[:, c] for c in range(depths.shape[1])]
    if suffixes is not None and any(_same_groups(v, suffixes[1]) for v in named):
        suffixes = None         # a column named as slides or sections (or a depth) holds these groups, judged so
    split = ""
    if suffixes is not None:
        sep, suffix = suffixes
        codes = pd.Categorical(suffix).codes
        nearest = _nearest_other_spot(xy)
        # a slide joined to itself (most spots at the position of a spot under another suffix) is the
        # warning of shared_positions; other spots at one position are left out of the share
        at = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "code": codes})
        twinned = (at.groupby(["x", "y"])["code"].transform("nunique") > 1).to_numpy()
        apart = np.any(xy != xy[nearest], axis=1)
        # each slide's spots span the tissue as the others' do; ids that end in a coordinate ('<x>_<y>', as
        # binned platforms name bins) group them into rows or columns, each of no width in one direction
        spread = at.groupby("code")[["x", "y"]].std(ddof=0).min() / np.maximum(xy.std(axis=0), 1e-12)
        mixed = (float(np.mean(codes[apart] != codes[nearest][apart]))
                 if apart.any() and twinned.mean() < 0.5 and float(spread.min()) >= 0.25 else 0.0)
        values = sorted(pd.unique(suffix))
        if mixed > MIXED_SHARE or found:
            shown = ", ".join(f"'{v}'" for v in values[:5]) + (", ..." if len(values) > 5 else "")
            if prefix:
                found.append(f"the spot ids start with {len(values)} prefixes ({shown} then '{sep}'), as Seurat's "
                             f"merge(add.cell.ids=) gives each slide's spots, and {mixed:.0%} of the spots have their "
                             "nearest neighbour under another prefix")
                split = f"adata[adata.obs_names.str.startswith('{values[0]}{sep}')].copy(); "
            else:
                found.append(f"the spot ids end in {len(values)} suffixes ('{sep}' then {shown}), as anndata.concat's "
                             f"index_unique= gives each slide's spots, and {mixed:.0%} of the spots have their "
                             "nearest neighbour under another suffix")
                split = f"adata[adata.obs_names.str.endswith('{sep}{values[0]}')].copy(); "
    if not found:
        return None
    return (f"the spots come from several slides joined without a column naming each spot's slide "
            f"(anndata.concat without label=): {'; '.join(found)}", split)


def _sections_of_numbers(values) -> bool:
    """Whether a column of numbers takes few values, each held by :data:`MIN_SECTION_SPOTS` spots
    or more (the sections' names or positions), rather than a measured value per spot."""
    counts = values.dropna().value_counts()
    return len(counts) >= 2 and int(counts.min()) >= MIN_SECTION_SPOTS


def _stacked_planes(xy: np.ndarray, planes) -> tuple[float, float] | None:
    """(a spot's distance to the nearest spot of the next plane, the spots' distance to the nearest of
    their own plane: the medians over the planes) where the first is below :data:`STACKED_SHARE` of the
    second: the planes of ``planes`` (each spot's plane) hold the same positions, each measured in every
    plane; else None (planes of distinct cells lie about one spacing apart)."""
    import pandas as pd
    from scipy.spatial import cKDTree

    codes = pd.Categorical(pd.Series(planes).to_numpy()).codes
    groups = [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]
    groups = [g for g in groups if len(g) >= 2]
    if len(groups) < 2:
        return None
    across, within = [], []
    for here, there in zip(groups[:-1], groups[1:]):
        across.append(float(np.median(cKDTree(xy[there]).query(xy[here], k=1)[0])))
        within.append(float(np.median(cKDTree(xy[here]).query(xy[here], k=2)[0][:, 1])))
    across_, within_ = float(np.median(across)), float(np.median(within))
    return (across_, within_) if within_ > 0 and across_ < STACKED_SHARE * within_ else None


def _planes_of_one_section(levels: np.ndarray, xy: np.ndarray, nearest: np.ndarray) -> bool:
    """Whether the values of a depth (``z``) lie closer together than half the spots' median
    distance to their nearest neighbour in the plane: the imaging planes of one thick section
    (MERFISH images a 10 um section in 1.5 um steps; cells lie about 10 um apart), not sections
    (cut 10 um or more apart, and each a whole tissue)."""
    levels = np.sort(levels[np.isfinite(levels)])
    if len(levels) < 2:
        return True
    spacing = float(np.median(np.linalg.norm(xy - xy[nearest], axis=1)))
    return float(np.min(np.diff(levels))) < spacing / 2


def _nearest_other_spot(xy: np.ndarray) -> np.ndarray:
    """Each spot's nearest other spot (a spot at the same point counts as nearest)."""
    from scipy.spatial import cKDTree

    n = xy.shape[0]
    idx = cKDTree(xy).query(xy, k=2)[1]
    first_is_self = idx[:, 0] == np.arange(n)
    return np.where(first_is_self, idx[:, 1], idx[:, 0])


def _columns(value) -> str:
    cols = getattr(value, "columns", None)
    return f"columns {list(cols)}" if cols is not None else f"shape {np.shape(value)}"


def check_ids(adata: ad.AnnData, *, path: str | None = None, make_genes_unique: bool = False,
              genes: bool = True) -> None:
    """Spot ids (``obs_names``) unique, not empty and without tab or line break (the results are
    tab-separated files); gene ids (``var_names``) unique.  ``make_genes_unique``: duplicate
    gene names are made unique by suffixing, with a warning (the workflow's readers: 10x
    files repeat gene symbols), instead of an error (the notebook API leaves a user's
    AnnData as it is).  ``genes=False``: the spot ids only (``stcore.gr.spatial_graph``, which
    reads no genes)."""
    dup = adata.obs_names[adata.obs_names.duplicated()]
    if len(dup):
        raise InputError(f"{len(dup)} duplicate spot ids (first: '{dup[0]}')", path=path,
                         fix="make spot ids unique, e.g. with AnnData.obs_names_make_unique()")
    names = adata.obs_names.astype(str)
    bad = names[(names == "") | names.str.contains(r"[\t\r\n]", regex=True)]
    if len(bad):
        raise InputError(f"{len(bad)} spot ids are empty or hold a tab or line break (first: {bad[0]!r}); the "
                         "results are tab-separated files", path=path,
                         fix="rename those spots (obs_names) to plain text")
    if not genes:
        return
    genes = adata.var_names[adata.var_names.duplicated()]
    if len(genes):
        if make_genes_unique:
            log.warning("%s: %d duplicate gene names made unique by suffixing", path, len(genes))
            adata.var_names_make_unique()
            return
        raise InputError(f"{len(genes)} duplicate gene ids (first: '{genes[0]}')", path=path,
                         fix="make gene ids unique, e.g. with AnnData.var_names_make_unique()")


def check_slide(adata: ad.AnnData, *, spatial_key: str = "spatial", dims: Sequence | None = None,
                path: str | None = None, make_genes_unique: bool = False,
                warn_shared: bool = True) -> np.ndarray:
    """A slide's checks in turn: not empty, :func:`check_coordinates` (``warn_shared``: its
    argument), :func:`check_in_tissue`, :func:`check_ids`.
    Returns the n_spots x 2 coordinates."""
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(f"empty matrix ({adata.n_obs} spots x {adata.n_vars} genes)", path=path,
                         fix="check that the file holds the expression matrix")
    xy = check_coordinates(adata, spatial_key, dims=dims, path=path, warn_shared=warn_shared)
    check_in_tissue(adata, path=path)
    check_ids(adata, path=path, make_genes_unique=make_genes_unique)
    said = control_features(adata.var_names)
    if said:
        log.warning("%s%s", f"{path}: " if path else "", said)
    return xy


#: Features of imaging panels that are not genes: Xenium's negative control probes and codewords
#: (``NegControlProbe_00042``, ``NegControlCodeword_0500``, ``UnassignedCodeword_0001``,
#: ``DeprecatedCodeword_...``, ``Intergenic_Region_...``, older ``BLANK_0006``), MERSCOPE's and
#: MERFISH's blank barcodes (``Blank-1``, ``Blank_1``), CosMx's negative probes and system controls
#: (``NegPrb3``, ``SystemControl12``).  They hold false-positive counts.
CONTROL_FEATURES = re.compile(r"^(blank[-_ .]?\d+$|negcontrol(probe|codeword)?[-_]|negprb\d*$|neg[-_]?control|"
                              r"unassignedcodeword[-_]|deprecatedcodeword[-_]|intergenic[-_]region[-_]|"
                              r"systemcontrol\d*$)", re.IGNORECASE)


def control_features(var_names) -> str | None:
    """A warning where gene names are control probes or blank codewords
    (:data:`CONTROL_FEATURES`, as a reader that keeps every feature gives them: scanpy's
    ``read_10x_h5(gex_only=False)``, a MERSCOPE ``cell_by_gene.csv`` read whole), else None.
    They count in each spot's total and take part in the gene selection and the features as genes
    do (a panel of fewer genes than ``n_top_genes`` uses every one); the workflow's Xenium reader
    drops them."""
    import pandas as pd

    names = pd.Index(var_names).astype(str)
    found = names[[bool(CONTROL_FEATURES.match(n)) for n in names]]
    if not len(found):
        return None
    prefixes = tuple(dict.fromkeys(re.match(r"[A-Za-z]*", n).group(0) for n in found))
    first = ", ".join(f"'{n}'" for n in found[:3])
    return (f"{len(found)} of the {len(names)} genes are control probes or blank codewords, not genes "
            f"(first: {first}); they count in each spot's total and take part in the gene selection and the features as genes do. "
            f"Fix: drop them before the run: adata = adata[:, ~adata.var_names.str.startswith({prefixes!r})].copy() "
            "(format xenium reads a Xenium bundle without them)")


def check_in_place(adata: ad.AnnData, call: str, *, copy: bool = True, writes: str = "its results") -> None:
    """Refuse results written in place into a view of a slide opened backed (``read_h5ad(path,
    backed='r')[mask]``): anndata makes a view written into its own object by copying it, which it
    cannot do in memory for a backed one (its ``To copy an AnnData object in backed mode, pass a
    filename``, after the checks); ``copy``: whether ``call`` takes ``copy=True``, which returns the
    part in memory (named in the fix); ``writes``: what it writes, in words."""
    if getattr(adata, "is_view", False) and getattr(adata, "isbacked", False):
        raise InputError(f"{call} writes {writes} into the object given, and this is a view of a slide opened "
                         "backed (read_h5ad(..., backed='r')[...]), which anndata cannot turn into an object of its own "
                         "in memory", fix=f"take the part into memory first, part = adata[...].to_memory(), then "
                                         f"{call}(part, ...)"
                                         + ("; or pass copy=True, which returns the part with the results" if copy else ""))


def check_in_tissue(adata: ad.AnnData, *, path: str | None = None) -> None:
    """No spot outside the tissue: where ``obs['in_tissue']`` (Space Ranger's flag, as scanpy's
    Visium reader keeps it) marks spots with 0, as a raw matrix holds them, they are refused
    (the workflow's Visium reader keeps only the spots in tissue)."""
    import pandas as pd

    if "in_tissue" not in adata.obs:
        return
    # 0/1, True/False as booleans or as text ('False', ' false'), in any dtype a file may give
    text = adata.obs["in_tissue"].astype(str).str.strip().str.lower()
    outside = int((pd.to_numeric(text.replace({"true": "1", "false": "0"}), errors="coerce") == 0).sum())
    if outside:
        raise InputError(f"{outside} of {adata.n_obs} spots are outside the tissue (obs['in_tissue'] is 0, as in a "
                         "raw matrix); they would be clustered into domains of their own", path=path,
                         fix="keep the spots in tissue, adata[adata.obs['in_tissue'] == 1].copy(), or read the "
                             "filtered matrix (format visium reads only those)")


# --- settings ---------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def config_schema() -> dict:
    """The config schema (:data:`CONFIG_SCHEMA`), parsed."""
    import yaml

    return yaml.safe_load(CONFIG_SCHEMA.read_text())


def check_settings(*, train: Mapping | None = None, cluster: Mapping | None = None,
                   hvg: Mapping | None = None) -> tuple[dict, dict, dict]:
    """``train``, ``cluster`` and ``hvg`` (as under ``train:`` / ``cluster:`` / ``hvg:`` in the
    config) checked against the config schema: unknown keys, wrong types and values out of range
    are refused, naming the key; whole numbers written as floats where the schema says integer
    are read as integers.  Returns plain copies of the three."""
    import jsonschema

    schema = config_schema()
    defs = dict(schema["$defs"], hvg=schema["properties"]["hvg"])
    out = []
    for name, settings in (("train", train), ("cluster", cluster), ("hvg", hvg)):
        settings = {} if settings is None else settings
        if not isinstance(settings, Mapping):
            raise InputError(f"{name} must be a dict of settings, not {type(settings).__name__}",
                             fix=f"pass {name}={{...}} with keys of {name}: in {_SCHEMA_NAME}")
        settings = dict(settings)
        for old, new in RENAMED.get(name, {}).items():      # a renamed key: named with its new name
            if old in settings:
                raise InputError(f"{name}.{old} is now {name}.{new}",
                                 fix=f"pass {name}={{{new!r}: {settings[old]!r}}}")
        errors = sorted(jsonschema.Draft202012Validator(defs[name]).iter_errors(settings), key=lambda e: e.path)
        if errors:
            err = errors[0]
            where = ".".join([name, *(str(p) for p in err.absolute_path)])
            raise InputError(f"{where}: {err.message}",
                             fix=f"use the keys of {name}: in {_SCHEMA_NAME} ({', '.join(defs[name]['properties'])}) "
                                 "with the types and ranges it gives")
        for key, value in settings.items():       # 20.0 where the schema means an integer: 20
            kind = defs[name]["properties"][key].get("type")
            if isinstance(value, float) and (kind == "integer" or (isinstance(kind, list) and "integer" in kind)):
                settings[key] = int(value)
        out.append(settings)
    return out[0], out[1], out[2]


def check_n_clusters(n_clusters, n_spots: int | None = None, *, path: str | None = None,
                     after_qc: bool = False) -> int | str:
    """The number of domains as an int (``7.0`` is read as 7), or ``'auto'``; refused when it is
    not a whole number, below 2, or (``n_spots`` given) above the number of spots."""
    if isinstance(n_clusters, str) and n_clusters.strip().lower() == "auto":
        return "auto"
    ok = isinstance(n_clusters, (int, float, np.integer, np.floating)) and not isinstance(n_clusters, (bool, np.bool_))
    if not ok or not np.isfinite(n_clusters) or float(n_clusters) != int(n_clusters):
        raise InputError(f"n_clusters={n_clusters!r} is not a whole number of domains", path=path,
                         fix="give n_clusters as a whole number, 2 or more, or 'auto'")
    n_clusters = int(n_clusters)
    if n_clusters < 2:
        raise InputError(f"n_clusters={n_clusters}; at least 2 domains are needed", path=path,
                         fix="set n_clusters to 2 or more (the sample sheet's n_clusters; n_clusters= in "
                             "stcore.tl.domains)")
    if n_spots is not None and n_clusters > n_spots:
        raise InputError(f"n_clusters={n_clusters} is larger than the {n_spots} spots"
                         + (" after QC" if after_qc else ""), path=path, fix="lower n_clusters")
    return n_clusters


def check_clustering(method: str, cluster: Mapping, n_clusters) -> None:
    """Before any training: the method is in the registry and installed, a clustering of its
    own exists where ``cluster.algorithm`` is ``own``, a number chosen by ``auto`` is one the
    method can run with, ``cluster.auto_range`` runs from low to high, and mclust's
    ``cluster.subset`` exceeds the number of domains asked for."""
    from .methods import method as registry_entry

    from .cluster import ClusterParams

    entry = registry_entry(method)
    entry.check_installed(method)
    params = ClusterParams(**cluster)
    chosen = getattr(params.algorithm, "value", params.algorithm)
    if chosen == "own" and not entry.own_labels:
        from .methods import REGISTRY

        owners = sorted(name for name, m in REGISTRY.items() if m.own_labels)
        raise InputError(f"cluster.algorithm own, but model '{method}' has no clustering of its own",
                         fix=f"use it with a model that clusters itself ({', '.join(owners)}), or another "
                             "cluster.algorithm")
    if n_clusters == "auto" and chosen not in ("mclust", "own"):       # (own: the model's facts, below)
        raise InputError(f"n_clusters 'auto' is chosen with mclust's mixture; cluster.algorithm '{chosen}' has none",
                         fix="pass cluster={'algorithm': 'mclust'}, or give n_clusters as a number (n_clusters=7, say)")
    refusal = entry.facts.auto_refusal(chosen == "own") if n_clusters == "auto" else None
    if refusal:
        raise InputError(f"n_clusters 'auto' with method '{method}': {refusal[0]}",
                         fix=refusal[1].replace("the sample sheet's n_clusters", "n_clusters=7, say"))
    lo, hi = params.auto_range
    if lo > hi:
        raise InputError(f"cluster.auto_range {[lo, hi]} runs from high to low", fix=f"write it as [{hi}, {lo}]")
    most = hi if n_clusters == "auto" else n_clusters
    if chosen == "mclust" and params.subset <= most:
        raise InputError(f"cluster.subset {params.subset} must exceed the number of domains asked for ({most})",
                         fix="raise cluster.subset (mclust's default: 2000)")


# --- output keys ------------------------------------------------------------------------------

def written_by_stcore(adata: ad.AnnData, key: str) -> bool:
    """obs[key] holds domains stcore wrote: a column an earlier :func:`stcore.tl.domains` call lists
    in its record (``uns['stcore']['columns']``; its settings in ``uns[key]``), or a workflow's
    domains.h5ad's (``uns['stcore']['key']``).  The qc job refuses such a column as the truth, and
    stcore writes over it (:func:`key_is_free`)."""
    own = adata.uns.get(key)
    if isinstance(own, Mapping) and "method" in own and "n_clusters" in own:
        return True
    record = adata.uns.get("stcore")
    return isinstance(record, Mapping) and (record.get("key") == key or key in list(record.get("columns", [])))


#: obs columns named as clustering tools name the clusters they write: scanpy's sc.tl.leiden /
#: sc.tl.louvain (key_added's default, with a suffix as tutorials add one: 'leiden_res1'), Seurat's
#: FindClusters ('seurat_clusters', '<assay>_snn_res.<resolution>'), mclust as the GraphST and
#: STAGATE tutorials store it, and BayesSpace's 'spatial.cluster'.
CLUSTER_COLUMNS = (
    (re.compile(r"(leiden|louvain)([_.][\w.]*)?", re.IGNORECASE), "scanpy's sc.tl.leiden or sc.tl.louvain"),
    (re.compile(r"seurat_clusters|\w+_snn_res\.[\d.]+"), "Seurat's FindClusters"),
    (re.compile(r"mclust"), "mclust (as the GraphST and STAGATE tutorials store it)"),
    (re.compile(r"spatial\.cluster"), "BayesSpace's spatialCluster"),
)


def clustered_by(adata: ad.AnnData, key: str) -> str | None:
    """Which tool's clusters obs[key] holds, in words, or None: scanpy's leiden and louvain store
    their settings under ``uns[key]['params']`` (with a resolution) whatever the column's name;
    :data:`CLUSTER_COLUMNS` names the columns other tools write.  Such a column given as the
    annotation would make every score compare the domains with another method's output."""
    own = adata.uns.get(key)
    params = own.get("params") if isinstance(own, Mapping) else None
    if isinstance(params, Mapping) and "resolution" in params:
        return (f"the clusters of scanpy's sc.tl.leiden or sc.tl.louvain (its settings are in uns['{key}']['params']: "
                f"resolution {params['resolution']})")
    for pattern, tool in CLUSTER_COLUMNS:
        if pattern.fullmatch(str(key)):
            return f"the clusters of {tool}, by its name"
    return None


def coordinate_of_spots(adata: ad.AnnData, key: str) -> str | None:
    """Where obs[key] holds a coordinate of the spots rather than an annotation, in words, else None:
    a column named as one of :data:`COORDINATE_COLUMNS` (Visium's ``array_row``, ``x``, ``imagerow``,
    ...), or one whose labels (3 or more, fewer than half the annotated spots: lines of spots, not a
    per-spot value) group the annotated spots as such a column of obs or a column of
    ``obsm['spatial']`` does, one label for each of its values.  Given as the annotation it would
    score the domains against the slide's rows or columns: Visium's 76 rows of DLPFC 151673 stay
    below the 100 labels :func:`stcore.evaluate.annotation_problems` refuses as a per-spot value."""
    import pandas as pd

    from .evaluate import is_missing_label

    names = {n for pair in COORDINATE_COLUMNS for n in pair}
    if str(key).lower() in names:
        return f"a coordinate of the spots (obs['{key}'], by its name)"
    values = adata.obs[key]
    labelled = ~is_missing_label(values)
    n_labels = pd.Series(values[labelled]).nunique()
    if n_labels < 3 or n_labels > labelled.sum() / 2:      # a per-spot value is annotation_problems' refusal
        return None
    others = [(f"obs['{c}']", adata.obs[c]) for c in adata.obs.columns if c != key and str(c).lower() in names]
    spatial = adata.obsm.get("spatial")
    if spatial is not None:
        xy = spatial.to_numpy() if hasattr(spatial, "to_numpy") else np.asarray(spatial)
        if xy.ndim == 2 and xy.dtype.kind in "iuf":
            others += [(f"obsm['spatial'][:, {j}]", xy[:, j]) for j in range(min(xy.shape[1], 3))]
    for name, other in others:
        other = np.asarray(other)[labelled]
        if pd.Series(other).nunique() != n_labels:        # the count of values first: one pass, no pairs
            continue
        if _same_groups(np.asarray(values, dtype=object)[labelled], other.astype(object)):
            return f"a coordinate of the spots (one label for each value of {name})"
    return None


def measured_per_spot(adata: ad.AnnData, key: str) -> str | None:
    """Where obs[key] holds a quantity measured in each spot rather than an annotation, in words,
    else None: numbers (or numbers written as text) of more distinct values than any annotation has
    labels (:data:`stcore.evaluate.PER_SPOT_LABELS`), as a count or a size per spot gives (Xenium's
    ``transcript_counts`` and ``cell_area``, scanpy's ``total_counts``): Xenium's ``transcript_counts``
    takes about a thousand values over 100,000 cells, each label shared by many cells, so the refusal
    of a per-spot value (more labels than half the spots) let it through."""
    import pandas as pd

    from .evaluate import PER_SPOT_LABELS, is_missing_label

    values = adata.obs[key]
    if values.dtype.kind not in "iufOSU" and not isinstance(values.dtype, pd.CategoricalDtype):
        return None
    labelled = values[~is_missing_label(values)]
    distinct = pd.unique(np.asarray(labelled, dtype=object))
    if len(distinct) <= PER_SPOT_LABELS or len(distinct) > len(labelled) / 2:    # the latter: annotation_problems'
        return None
    # numbers, or numbers written as text (a count column made categorical, or read back as text by R)
    numbers = pd.to_numeric(pd.Series(distinct), errors="coerce")
    if numbers.isna().any() or isinstance(distinct[0], (bool, np.bool_)):
        return None
    kind = "whole numbers" if np.array_equal(numbers, np.round(numbers)) else "numbers"
    stored = values.cat.categories.dtype if isinstance(values.dtype, pd.CategoricalDtype) else values.dtype
    text = "" if stored.kind in "iuf" else ", written as text"
    return (f"a quantity measured in each spot ({len(distinct)} distinct {kind} over {len(labelled)} spots{text}, "
            "as a count or a size per spot takes)")


def check_truth(adata: ad.AnnData, truth: str, *, path: str | None = None, fmt: str | None = None,
                after_qc: bool = False) -> list[str]:
    """Refuse the sample sheet's truth column ``truth`` of the slide ``adata`` (read from ``path``,
    format ``fmt``; by default those its ``uns['provenance']`` names, as the qc job writes them)
    where it is no annotation to score against: not in obs (the column meant named
    where one differs in case or spaces), another tool's clusters or a coordinate of the spots, the
    domains an earlier stcore run wrote, no label, labels :func:`stcore.evaluate.annotation_problems`
    refuses.  Returns the lines to warn of (labels it takes, but says).  The qc job checks the slide
    as read; the steps that read the annotation after it (evaluate, consensus, agreement), which a
    changed truth column reruns where qc does not, check the slide QC kept (``after_qc``), so that a
    column changed after training is refused before any score is written."""
    from .evaluate import annotation_problems, is_missing_label
    from .formats import ODD_SPACES

    prov = adata.uns.get("provenance") if isinstance(adata.uns.get("provenance"), Mapping) else {}
    path = path or (str(prov["input_path"]) if prov.get("input_path") else None)
    fmt = fmt or str(prov.get("format") or "h5ad")
    if truth not in adata.obs.columns:
        columns = list(adata.obs.columns)
        near = [c for c in columns if " ".join(str(c).split()).lower() == " ".join(truth.split()).lower()]
        odd = sorted({ODD_SPACES[c] for c in truth if c in ODD_SPACES})
        empty = bool(is_missing_label([truth])[0])      # 'NA', 'nan', '#N/A': a missing value's spellings
        reader = str(getattr(fmt, "value", fmt)).lower()
        if not empty and not near and reader in ("visium", "visium_hd", "xenium", "stereo"):
            # an instrument's folder (a Stereo-seq GEM file) holds no annotation: obs is what its reader makes
            stereo = adata.uns.get("stereo") if isinstance(adata.uns.get("stereo"), Mapping) else {}
            size = f", bin_size={stereo['bin_size']}" if stereo.get("bin_size") else ""   # read at the run's bins
            raise InputError(f"truth column '{truth}' is not in obs: a {reader} "
                             f"{'file' if reader == 'stereo' else 'folder'} holds no annotation (obs "
                             f"holds the reader's columns: {columns[:10]})", path=path,
                             fix=f"to score against an annotation, add it to obs and give the slide as an .h5ad "
                                 f"(format h5ad): adata = stcore.read.{reader}('{path}'{size}); adata.obs['{truth}'] = "
                                 f"pd.read_csv('labels.csv', index_col=0).iloc[:, 0].reindex(adata.obs_names); "
                                 "adata.write_h5ad('slide.h5ad'); or leave the truth cell empty")
        raise InputError(f"truth column '{truth}' is not in obs ("
                         + (f"'{truth}' is how a missing value is written (R's write.table, pandas' "
                            "astype(str), a spreadsheet's lookup): an empty cell meant? " if empty else "")
                         + (f"the sheet's name holds {', '.join(odd)}, which looks like a space but is another "
                            "character; " if odd else "")
                         + (f"'{near[0]}' differs only in case or spaces; " if near else "")
                         + f"columns: {columns[:10]}{' ...' if len(columns) > 10 else ''})",
                         path=path, fix=("leave the sample sheet's truth cell empty for a slide without an "
                                         "annotation (R: write.table(..., na = \"\")), or name its annotation "
                                         "column" if empty else
                                         f"set the sample sheet's truth column to '{near[0]}'" if near else
                                         "set the sample sheet's truth column to an existing obs column, "
                                         "or leave it empty"))
    def annotations() -> str:         # the columns that may be the annotation, for the fix
        others = [c for c in adata.obs.columns if c != truth and not written_by_stcore(adata, c)
                  and not clustered_by(adata, c) and not coordinate_of_spots(adata, c)
                  and not measured_per_spot(adata, c)
                  and not is_missing_label(adata.obs[c]).all() and adata.obs[c].nunique() <= 100]
        return f" (obs columns: {others[:10]})" if others else ""

    if not written_by_stcore(adata, truth):
        for held, compared in ((clustered_by(adata, truth), "another method's output"),
                               (coordinate_of_spots(adata, truth), "the slide's rows or columns"),
                               (measured_per_spot(adata, truth), "that quantity")):
            if held:
                raise InputError(f"truth column '{truth}' holds {held}, not an annotation: every score would "
                                 f"compare the domains with {compared}", path=path,
                                 fix="set the sample sheet's truth column to the slide's annotation"
                                     + annotations() + ", or leave it empty")
    if written_by_stcore(adata, truth):
        record = adata.uns.get("stcore") if isinstance(adata.uns.get("stcore"), dict) else {}
        raise InputError(f"truth column '{truth}' holds the domains an earlier stcore run found "
                         f"({record.get('method', 'a method')}; named in uns['stcore']), not an annotation: every "
                         "score would compare the new domains with a method's output",
                         path=path, fix="set the sample sheet's truth column to the slide's annotation"
                                        + annotations()
                                        + ", or leave it empty")
    if is_missing_label(adata.obs[truth]).all():
        raise InputError(f"truth column '{truth}' has no labels "
                         + (f"on the {adata.n_obs} spots QC kept" if after_qc else "(all missing: empty, NA, NaN or None)"),
                         path=path, fix="fill in the annotation or leave the truth column empty"
                                        + (" (or lower the qc thresholds in the config)" if after_qc else ""))
    said, refusal = annotation_problems(adata.obs[truth], truth)
    if refusal:
        raise InputError(refusal, path=path, fix="set the sample sheet's truth column to the column of the "
                                                 "domain annotation, or leave it empty")
    unordered = unordered_annotation(adata.obsm["spatial"], adata.obs[truth], truth) if "spatial" in adata.obsm else None
    return list(said) + ([unordered] if unordered else [])


def key_is_free(adata: ad.AnnData, key: str) -> bool:
    """Whether stcore may write ``obs[key]``: no such column, or one that stcore wrote."""
    return key not in adata.obs or written_by_stcore(adata, key)


def output_key(adata: ad.AnnData, key_added: str = "domain", *, path: str | None = None) -> str:
    """The obs column the workflow's domains.h5ad holds the domains in (the workflow has no caller
    to choose one): ``key_added``, or ``'stcore_' + key_added`` where the slide has a column
    ``key_added`` of its own; a slide that holds both is refused (by the qc job, before training)."""
    first, second = key_added, f"stcore_{key_added}"
    key = first if key_is_free(adata, first) else second
    check_key(adata, key, path=path, fix=f"rename the slide's obs column '{second}' or '{first}' (stcore writes its "
                                         f"domains to obs['{first}'], or to obs['{second}'] when the slide has its "
                                         f"own '{first}')")
    return key


def _record_dropped(adata: ad.AnnData) -> str | None:
    """The ``obsm`` key of an embedding :func:`stcore.tl.domains` writes (``X_<method>``, a method of
    the registry) where ``uns`` holds no stcore record, as ``anndata.concat`` leaves results it joins
    (it drops ``uns`` by default): the record of which columns stcore wrote is gone; else None."""
    from .registry import METHODS

    if isinstance(adata.uns.get("stcore"), Mapping):
        return None
    return next((f"X_{m}" for m in METHODS if f"X_{m}" in adata.obsm), None)


def check_key(adata: ad.AnnData, key_added: str, *, overwrite: bool = False, path: str | None = None,
              fix: str | None = None) -> None:
    """Refuse to write over ``obs[key_added]`` when it holds a column that stcore did not write
    (an annotation, e.g. a simulated slide's truth ``domain``), unless ``overwrite``.  ``fix``:
    the fix to name instead of the notebook API's."""
    if overwrite or key_is_free(adata, key_added):
        return
    embedded = _record_dropped(adata)
    if embedded and fix is None:
        raise InputError(f"obs['{key_added}'] holds a column, and this object has no record of the stcore calls "
                         f"that wrote its columns (uns['stcore']), though obsm['{embedded}'] holds one's embedding: "
                         "results joined with anndata.concat lose it (concat drops uns unless uns_merge= is given), "
                         f"so whether obs['{key_added}'] holds their domains or an annotation is not known; it is "
                         "not overwritten", path=path,
                         fix=f"if obs['{key_added}'] holds stcore's domains, pass overwrite=True (or join the "
                             "results with anndata.concat(..., uns_merge='first'), which keeps the record); if it "
                             f"holds an annotation, pass another key_added (e.g. key_added='stcore_{key_added}')")
    raise InputError(f"obs['{key_added}'] already holds a column that stcore did not write (an annotation?); "
                     "it is not overwritten", path=path,
                     fix=fix or f"pass another key_added (e.g. key_added='stcore_{key_added}'), delete the column "
                                f"(del adata.obs['{key_added}']), or pass overwrite=True")

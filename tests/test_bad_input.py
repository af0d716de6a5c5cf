"""The bad-input catalogue (docs/bad_input.md): every malformed input gets one clear message
naming the file, the problem and the fix - from the library, and through Snakemake."""
from __future__ import annotations

import logging
import os
import re

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from slides import (by_size_factors, duplicate_spot, leftovers, no_coordinates, outputs, set_coordinates, set_x,
                    snakemake, tiny_slide, with_pseudocount, workdir, write, write_visium)
from stcore.errors import InputError
from stcore.hvg import HVGParams, run_hvg, select_hvg
from stcore.io import read_slide
from stcore.qc import QCParams, prepare_slide


def _h5ad(change):
    """A builder: a valid tiny slide changed by ``change(adata)`` and written as .h5ad."""
    def build(tmp):
        adata = tiny_slide()
        changed = change(adata)
        adata = adata if changed is None else changed
        return write(adata, tmp / "slide.h5ad"), "h5ad"
    return build


def _unchanged(a):
    return None


def _annotated_where_counts_are_low(a):
    """The annotation covers 8 spots only (a region annotated, the rest NaN), whose counts are low."""
    x = a.X.toarray()
    x[:8] = np.minimum(x[:8], 1)
    a.X = sp.csr_matrix(x)
    a.obs["domain"] = a.obs["domain"].astype(object).where(np.arange(a.n_obs) < 8, np.nan)


def _raw(content: bytes):
    def build(tmp):
        p = tmp / "slide.h5ad"
        p.write_bytes(content)
        return p, "h5ad"
    return build


def _truncated(tmp):
    p = write(tiny_slide(), tmp / "full.h5ad")
    data = p.read_bytes()
    out = tmp / "slide.h5ad"
    out.write_bytes(data[: len(data) // 2])
    return out, "h5ad"


def _per_spot_truth(tmp):
    """The truth column set to a per-spot number (a total count, an id) instead of the annotation."""
    adata = tiny_slide(n_side=12)
    adata.obs["domain"] = [f"{0.37 * i:.2f}" for i in range(adata.n_obs)]
    return write(adata, tmp / "slide.h5ad"), "h5ad"


def _binarised():
    """A slide of 1,600 spots whose counts were binarised (X > 0) and stored as float 0/1."""
    adata = tiny_slide(n_side=40)
    adata.X = (adata.X > 0).astype(np.float32)
    return adata


def _stored_counts_changed(change):
    """A builder: a slide of 200 genes, half its counts set to 0 (about 100 stored values a spot, as
    real slides' spots hold hundreds), then ``change(x)`` applied to its CSR matrix, written as .h5ad."""
    def build(tmp):
        adata = tiny_slide(n_genes=200)
        x = adata.X.toarray()
        x[np.random.default_rng(0).random(x.shape) < 0.5] = 0
        x = sp.csr_matrix(x)
        change(x)
        adata.X = x
        return write(adata, tmp / "slide.h5ad"), "h5ad"
    return build


def _count_per_spot_truth(tmp, as_text: bool = False):
    """The truth column set to each spot's total count, as Xenium's obs['transcript_counts'] holds it:
    more distinct numbers than any annotation has labels, but each shared by several spots;
    ``as_text``: written as text, categorical (as R's factor or astype('category') leaves it)."""
    adata = tiny_slide(n_side=24)
    counts = np.asarray(adata.X.sum(axis=1)).ravel().astype(int)
    adata.obs["transcript_counts"] = pd.Categorical(counts.astype(str)) if as_text else counts
    return write(adata, tmp / "slide.h5ad"), "h5ad"


def _sections(tmp):
    """Two sections in one object, named by a float 'bregma' as MERFISH tables name them (a second
    section of another depth, its cells in the first one's frame)."""
    import anndata as ad

    first, second = tiny_slide(seed=1), tiny_slide(seed=2)
    second.obsm["spatial"] = second.obsm["spatial"] + np.array([37.0, 21.0])
    first.obs["bregma"], second.obs["bregma"] = 0.21, 0.16
    both = ad.concat([first, second], index_unique="-", keys=["a", "b"])
    return write(both, tmp / "slide.h5ad"), "h5ad"


def _10x_matrix_as_h5ad(tmp):
    """Space Ranger's matrix file given as the slide, format h5ad."""
    return write_visium(tmp / "outs", tiny_slide()) / "filtered_feature_bc_matrix.h5", "h5ad"


def _anndata_zarr(fmt):
    """A slide written with anndata's write_zarr, given as format ``fmt``."""
    def build(tmp):
        tiny_slide().write_zarr(tmp / "slide.zarr")
        return tmp / "slide.zarr", fmt
    return build


def _visium(**kw):
    def build(tmp):
        return write_visium(tmp / "outs", tiny_slide(), **kw), "visium"
    return build


def _visium_without(rel):
    def build(tmp):
        folder = write_visium(tmp / "outs", tiny_slide())
        (folder / rel).unlink()
        return folder, "visium"
    return build


def _visium_matrix_renamed(name, gzipped=False, also=None):
    """The matrix under the name a download gives it: the sample's name in front, or gzipped; ``also``:
    another sample's matrix beside it."""
    def build(tmp):
        import gzip
        import shutil

        folder = write_visium(tmp / "outs", tiny_slide())
        matrix = folder / "filtered_feature_bc_matrix.h5"
        if also:
            shutil.copy(matrix, folder / also)
        if gzipped:
            (folder / name).write_bytes(gzip.compress(matrix.read_bytes()))
            matrix.unlink()
        else:
            matrix.rename(folder / name)
        return folder, "visium"
    return build


def _fed_back_domains(tmp):
    """A run's domains.h5ad given again as a slide: its found domains in obs['stcore_domain'] (named
    in uns['stcore']), the annotation in obs['domain']."""
    a = tiny_slide()
    a.obs["stcore_domain"] = pd.Categorical(np.where(np.arange(a.n_obs) % 3, "0", "1"))
    a.uns["stcore"] = {"key": "stcore_domain", "method": "graphst", "seed": 0}
    return write(a, tmp / "domains.h5ad"), "h5ad"


def _visium_positions_as_downloaded(tmp):
    """GEO's layout: the positions file beside the matrix, the sample's name in front, gzipped."""
    import gzip

    folder = write_visium(tmp / "outs", tiny_slide(), positions="tissue_positions_list.csv")
    pos = folder / "spatial" / "tissue_positions_list.csv"
    (folder / "151673_tissue_positions_list.csv.gz").write_bytes(gzip.compress(pos.read_bytes()))
    pos.unlink()
    return folder, "visium"


def _visium_corrupt_matrix(tmp):
    folder = write_visium(tmp / "outs", tiny_slide())
    (folder / "filtered_feature_bc_matrix.h5").write_bytes(b"\x89HDF\r\n garbage")
    return folder, "visium"


def _visium_no_tissue(tmp):
    return write_visium(tmp / "outs", tiny_slide(), in_tissue=np.zeros(64, int)), "visium"


def _visium_other_run(tmp):
    """The spatial/ folder of another slide: the same barcodes (every Visium slide has them), another tissue."""
    return write_visium(tmp / "outs", tiny_slide(), in_tissue=np.r_[np.zeros(3, int), np.ones(61, int)]), "visium"


def _visium_duplicate_barcode(tmp):
    folder = write_visium(tmp / "outs", tiny_slide())
    positions = folder / "spatial/tissue_positions.csv"
    lines = positions.read_text().splitlines()
    positions.write_text("\n".join([*lines, lines[4]]) + "\n")        # spot0003's row twice
    return folder, "visium"


HEADER = ["barcode", "in_tissue", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"]

# id -> (builder, prepare_slide keyword arguments, expected message (regex))
CATALOGUE = {
    "missing_file": (lambda tmp: (tmp / "nope.h5ad", "h5ad"), {}, r"file not found\. Fix: check the path"),
    # a path as Windows writes it: '\\' is part of a file name here (was: "file not found (a relative path is
    # read from the folder the workflow runs in ...)", which pointed at the folder)
    "windows_path": (lambda tmp: ((tmp / "data").mkdir() or write(tiny_slide(), tmp / "data" / "slide.h5ad")) and
                     (tmp / "data\\slide.h5ad", "h5ad"), {},
                     r"file not found: the path separates its folders with '\\' as Windows does; on this machine "
                     r"'\\' is part of a file name, and folders are separated by '/'\. Fix: write the path with '/' "
                     r"in the sample sheet \('.*/data/slide\.h5ad' exists\)$"),
    "windows_path_visium": (lambda tmp: write_visium(tmp / "run" / "outs", tiny_slide()) and
                            (tmp / "run\\outs", "visium"), {},
                            r"folder not found: the path separates its folders with '\\' as Windows does.*Fix: write "
                            r"the path with '/' in the sample sheet \('.*/run/outs' exists\)$"),
    # a path copied from a web page: a non-breaking space where the file's name has a space (was: "file not found
    # (a relative path is read from the folder the workflow runs in ...)", the two names alike on screen)
    "non_breaking_space_in_path": (lambda tmp: ((tmp / "my slides").mkdir() or write(tiny_slide(), tmp / "my slides" /
                                                                                       "slide.h5ad"))
                                   and (tmp / "my\u00a0slides" / "slide.h5ad", "h5ad"), {},
                                   r"file not found: the path holds a non-breaking space \(U\+00A0\), which looks like a "
                                   r"space but is another character\. Fix: type the path's spaces again in the sample sheet "
                                   r"\('.*/my slides/slide\.h5ad' exists\)$"),
    "h5ad_is_a_folder": (lambda tmp: ((tmp / "slides").mkdir() or tmp / "slides", "h5ad"), {},
                         r"is a folder; format h5ad reads an \.h5ad file\. Fix: give the \.h5ad file's path"),
    "not_hdf5": (_raw(b"sample,x,y\n1,2,3\n"), {}, r"not a readable \.h5ad .*Fix: re-export"),
    "10x_matrix_as_h5ad": (_10x_matrix_as_h5ad, {},
                           r"filtered_feature_bc_matrix\.h5': a 10x matrix \(the HDF5 'matrix' group of Space Ranger's "
                           r"filtered_feature_bc_matrix\.h5\), not an \.h5ad: it holds the counts without the spots' "
                           r"positions\. Fix: set the sample sheet's format to visium and its path to the Space Ranger "
                           r"outs folder \(.*/outs, which holds spatial/"),
    "anndata_zarr_as_h5ad": (_anndata_zarr("h5ad"), {},
                             r"slide\.zarr': an AnnData \.zarr store \(anndata's write_zarr\), not an \.h5ad file\. Fix: "
                             r"write it as an \.h5ad file and give that file's path: anndata\.read_zarr\('.*/slide\.zarr'\)"
                             r"\.write_h5ad\('.*/slide\.h5ad'\)$"),
    "anndata_zarr_as_spatialdata": (_anndata_zarr("spatialdata"), {},
                                    r"slide\.zarr': an AnnData \.zarr store \(anndata's write_zarr\), not a SpatialData "
                                    r"store: it holds no table\. Fix: write it as an \.h5ad file and read that with format "
                                    r"h5ad: anndata\.read_zarr\('.*/slide\.zarr'\)\.write_h5ad\('.*/slide\.h5ad'\)$"),
    "truncated_h5ad": (_truncated, {}, r"not a readable \.h5ad .*Fix: re-export"),
    "unknown_format": (lambda tmp: (write(tiny_slide(), tmp / "s.h5ad"), "loom"), {},
                       r"unknown format 'loom'\. Fix: use one of \['h5ad', 'visium', 'visium_hd', 'xenium', 'spatialdata', "
                       r"'stereo'\]"),
    "empty_matrix": (_h5ad(lambda a: a[:0].copy()), {}, r"empty matrix \(0 spots x 40 genes\)"),
    "no_genes": (_h5ad(lambda a: a[:, :0].copy()), {}, r"empty matrix \(64 spots x 0 genes\)"),
    "nan_counts": (_h5ad(set_x(lambda x: x.__setitem__((3, 4), np.nan))), {}, r"NaN or infinite values"),
    "inf_counts": (_h5ad(set_x(lambda x: x.__setitem__((3, 4), np.inf))), {}, r"NaN or infinite values"),
    "negative_counts": (_h5ad(set_x(lambda x: x.__setitem__((3, 4), -2))), {},
                        r"negative values; raw counts are needed"),
    "non_integer_counts": (_h5ad(set_x(lambda x: x.__setitem__((3, 4), 0.5))), {},
                           r"non-integer values; raw counts are needed\. Fix: .*hvg\.flavor"),
    # binarised detection (X > 0) stored as booleans (was: taken as counts of 1, run without a word)
    "boolean_counts": (_h5ad(lambda a: setattr(a, "X", a.X > 2)), {},
                       r"the count matrix holds True/False values \(dtype bool\): which genes were detected in "
                       r"each spot, not how many counts; each would be taken as a count of 1\. Fix: store the raw "
                       r"counts in X"),
    # binarised detection stored as numbers, 0.0 and 1.0 (or 0 and 1): more than 10,000 values, none above 1 (was: taken
    # as counts of 1, as the booleans were)
    "binarised_counts": (lambda tmp: (write(_binarised(), tmp / "slide.h5ad"), "h5ad"), {},
                         r"the count matrix holds only 0s and 1s \(\d+ values of 1, none above\): which genes were "
                         r"detected in each spot \(binarised, X > 0\), not how many counts, where raw counts of so "
                         r"many values hold some above 1; each would be taken as a count of 1\. Fix: store the raw "
                         r"counts in X"),
    "log_normalised_counts": (_h5ad(lambda a: setattr(a, "X", sp.csr_matrix(np.log1p(a.X.toarray())))), {},
                              r"non-integer values"),
    # raw counts multiplied by a factor: whole numbers, so they were taken as counts ten times deeper
    "counts_multiplied": (_h5ad(lambda a: setattr(a, "X", a.X * 10)), {},
                          r"the count matrix holds whole numbers that are all multiples of 10 \(no value is 1, as in "
                          r"every slide of raw counts\): counts multiplied by a factor .*Fix: store the raw counts in X "
                          r"\(if they were multiplied by 10: adata\.X = adata\.X / 10\)"),
    # counts rescaled by a factor that is not whole and rounded (np.rint(X * 1.5)): no value is 1, but no factor
    # divides them all either (was: taken as counts, deeper than measured)
    "counts_rescaled_and_rounded": (
        _h5ad(set_x(lambda x: (x.__setitem__(np.random.default_rng(0).random(x.shape) < 0.5, 0),
                               x.__setitem__(slice(None), np.rint(x * 1.5))))), {},
        r"the count matrix holds whole numbers and zeros, but no value is 1 \(the smallest is 2\), where raw counts "
        r"that hold zeros hold 1s too: counts rescaled by a factor that is not whole and rounded \(np\.rint\(X \* 1\.5\) "
        r"holds no 1\); they would be taken as deeper counts than measured\. Fix: store the raw counts in X"),
    # counts with 1 added to each stored value, the zeros kept (adata.X.data += 1 on a sparse matrix): no value is
    # 1 (was: named as counts rescaled and rounded, np.rint(X * 1.5), with no fix that undoes it)
    "counts_plus_one_stored": (
        _stored_counts_changed(lambda x: x.data.__iadd__(1)), {},
        r"the count matrix holds whole numbers and zeros, but no value is 1 \(the smallest is 2\), and \d+ of its 64 "
        r"spots of 50 values or more hold each of 2, 3, 4, 5, as counts with 1 added to every value other than 0 "
        r"leave them \(adata\.X\.data \+= 1 on a sparse matrix, the zeros kept\), and counts rescaled and rounded "
        r"never do; .*Fix: store the raw counts in X \(if 1 was added to the stored values: adata\.X\.data -= 1\)$"),
    # the same spots rescaled by 1.5 and rounded are still named so: no spot holds each of 2, 3, 4, 5
    "counts_rescaled_and_rounded_deep_spots": (
        _stored_counts_changed(lambda x: x.data.__setitem__(slice(None), np.rint(x.data * 1.5))), {},
        r"no value is 1 \(the smallest is 2\), where raw counts that hold zeros hold 1s too: counts rescaled by a "
        r"factor that is not whole and rounded"),
    # counts with 1 added to every value (a pseudocount): no zero left, 1 the most common value (where 0 was, as
    # in raw counts, here half the values); every gene was taken as detected in every spot
    "counts_with_pseudocount": (_h5ad(set_x(with_pseudocount)), {},
                                r"the count matrix holds no zero: every value is 1 or more, and 1 is its most common "
                                r"\(5\d% of the values\), where raw counts hold zeros most: counts with 1 added to every "
                                r"value \(a pseudocount\).*Fix: store the raw counts in X \(if 1 was added: adata\.X\.data -= 1, "
                                r"then adata\.X\.eliminate_zeros\(\)\)$"),
    # normalised values rounded to whole numbers (normalize_total to 10,000, then np.rint), given as counts:
    # were taken as counts 10,000 deep in every spot
    "rounded_normalised_values": (
        _h5ad(lambda a: setattr(a, "X", sp.csr_matrix(np.rint(a.X.toarray() / a.X.toarray().sum(1, keepdims=True)
                                                              * 1e4)))),
        {}, r"the count matrix holds whole numbers whose spots all sum to about one total \(\d+, each within \d+ of "
            r"it: what rounding each value leaves\), as normalised values rounded to whole numbers do \(normalize_total, "
            r"then rounding\), not raw counts; .*Fix: store the raw counts in X, or set values to normalized "
            r"\(the sample sheet's values column; in stcore\.tl\.domains values='normalized'\)$"),
    # log2 (or log10) where values log_normalized means log1p: were taken as natural logs
    "log2_of_normalised_values": (
        _h5ad(lambda a: setattr(a, "X", sp.csr_matrix(np.log2(1 + a.X.toarray() / a.X.toarray().sum(1, keepdims=True)
                                                                * 1e4)))),
        {"values": "log_normalized", "hvg_flavor": "seurat"},
        r"X holds log2\(1 \+ x\) values \(2\^X - 1 of every spot sums to one total\): normalised values logged in "
        r"base 2, but values is log_normalized, the natural log \(log1p\) of normalised values\. Fix: store the "
        r"natural log: adata\.X = adata\.X \* np\.log\(2\)"),
    "log10_of_normalised_values": (
        _h5ad(lambda a: setattr(a, "X", sp.csr_matrix(np.log10(1 + a.X.toarray() / a.X.toarray().sum(1, keepdims=True)
                                                                 * 1e4)))),
        {"values": "log_normalized", "hvg_flavor": "seurat"},
        r"X holds log10\(1 \+ x\) values .*normalised values logged in base 10.*Fix: store the natural log: "
        r"adata\.X = adata\.X \* np\.log\(10\)"),
    # normalised values (normalize_total to 1 or 100: below the log's bound of 50) given as log_normalized: were
    # taken as logged
    "normalised_values_as_log_normalized": (
        _h5ad(lambda a: setattr(a, "X", sp.csr_matrix(a.X.toarray() / a.X.toarray().sum(1, keepdims=True) * 100))),
        {"values": "log_normalized", "hvg_flavor": "seurat"},
        r"X holds normalised values \(every spot sums to one total, as after normalize_total\), but values is "
        r"log_normalized: they would be taken as already logged\. Fix: set values to normalized"),
    # values normalised by size factors (scran/scater's logNormCounts: no one total a spot) read as another
    # transform: log2 values as log1p ones (1.44 times too large), log1p ones as normalised (logged again)
    "log2_of_size_factor_values": (
        _h5ad(set_x(by_size_factors("2"))), {"values": "log_normalized", "hvg_flavor": "seurat"},
        r"X holds log2\(1 \+ x\) values, as scran's and scater's logNormCounts leave them .*: in \d+% of 64 spots "
        r"drawn 2\^X - 1 of each spot's values are whole multiples of its smallest.*each would be taken as 1\.44 times "
        r"its natural log\. Fix: store the natural log: adata\.X = adata\.X \* np\.log\(2\)"),
    "log_normalised_size_factor_values_as_normalized": (
        _h5ad(set_x(by_size_factors("e"))), {"values": "normalized", "hvg_flavor": "seurat"},
        r"X holds log-normalised values \(the natural log, log1p\): .*expm1 of each spot's values are whole multiples "
        r"of its smallest.*but values is normalized: they would be logged \(log1p\) again\. Fix: set values to "
        r"log_normalized"),
    "log2_of_counts": (_h5ad(lambda a: setattr(a, "X", sp.csr_matrix(np.log2(1 + a.X.toarray())))),
                       {"values": "log_normalized", "hvg_flavor": "seurat"},
                       r"X holds log2\(1 \+ x\) values \(2\^X - 1 of every value is a whole number\): raw counts "
                       r"logged without normalising each spot, .*Fix: store the raw counts in X "
                       r"\(np\.rint\(np\.exp2\(X\) - 1\)\) with values counts"),
    "no_coordinates": (_h5ad(no_coordinates), {},
                       r"no spot coordinates \(obsm\['spatial'\] is missing\)"),
    "coordinates_1d": (_h5ad(set_coordinates(lambda xy: np.arange(len(xy), dtype=float)[:, None])), {},
                       r"has shape \(64, 1\), expected n_spots x 2"),
    "coordinates_nan": (_h5ad(set_coordinates(lambda xy: np.where(np.arange(len(xy))[:, None] < 3, np.nan,
                                                                   xy))), {},
                        r"3 spots have NaN or infinite coordinates"),
    "coordinates_one_point": (_h5ad(set_coordinates(np.ones_like)), {}, r"all spots sit at one point"),
    "duplicate_spot_ids": (_h5ad(duplicate_spot), {}, r"1 duplicate spot ids \(first: 'spot0004'\)"),
    "sections_in_one_object": (_sections, {},
                               r"the spots come from 2 slides \(obs\['bregma'\]: 0\.21, 0\.16\), and they lie among "
                               r"each other: .*Fix: give one slide at a time, e\.g\. adata\[adata\.obs\['bregma'\] == "
                               r"0\.21\]\.copy\(\)"),
    "truth_column_absent": (_h5ad(_unchanged), {"truth": "layer"},
                            r"truth column 'layer' is not in obs .*Fix: set the sample sheet's truth"),
    # the sheet's truth cell written as a missing value (R's write.table writes an empty cell 'NA')
    "truth_written_as_missing": (_h5ad(_unchanged), {"truth": "NA"},
                                 r"truth column 'NA' is not in obs \('NA' is how a missing value is written \(R's "
                                 r"write\.table, .*an empty cell meant\? columns: .*Fix: leave the sample sheet's "
                                 r"truth cell empty for a slide without an annotation"),
    "truth_column_differs_in_case": (_h5ad(_unchanged), {"truth": "Domain "},
                                     r"truth column 'Domain ' is not in obs \('domain' differs only in case or spaces; "
                                     r"columns: \['domain'\]\)\. Fix: set the sample sheet's truth column to 'domain'$"),
    # a name copied from a web page or a document: a non-breaking space where obs has a space
    "truth_column_nbsp": (_h5ad(lambda a: a.obs.rename(columns={"domain": "layer guess"}, inplace=True)),
                          {"truth": "layer\u00a0guess"},
                          r"truth column 'layer\u00a0guess' is not in obs \(the sheet's name holds a non-breaking "
                          r"space \(U\+00A0\), which looks like a space but is another character; 'layer guess' "
                          r"differs only in case or spaces; .*Fix: set the sample sheet's truth column to 'layer guess'$"),
    "truth_per_spot_value": (_per_spot_truth, {"truth": "domain"},
                             r"truth column 'domain' has 144 distinct labels on 144 annotated spots \(first: .*\): a "
                             r"per-spot value, not an annotation of domains\. Fix: set the sample sheet's truth column"),
    "truth_all_missing": (_h5ad(lambda a: a.obs.__setitem__("domain", np.nan)), {"truth": "domain"},
                          r"truth column 'domain' has no labels \(all missing"),
    # a spreadsheet's or R's spellings of a missing label, as stcore.evaluate leaves them out
    "truth_all_missing_as_text": (_h5ad(lambda a: a.obs.__setitem__("domain", ["NaN", " na ", "None", ""] * 16)),
                                  {"truth": "domain"}, r"truth column 'domain' has no labels \(all missing"),
    # an annotation merged in a spreadsheet: Excel's #N/A where the lookup found no label, N/A, NULL
    "truth_all_missing_as_excel_writes_it": (
        _h5ad(lambda a: a.obs.__setitem__("domain", ["#N/A", "N/A", "NULL", " n/a"] * 16)),
        {"truth": "domain"}, r"truth column 'domain' has no labels \(all missing"),
    "mito_filter_without_mito_gene_names": (
        _h5ad(lambda a: setattr(a, "var_names", [f"ENSG{i:011d}" for i in range(a.n_vars)])),
        {"params": QCParams(max_mito_pct=20)},
        r"qc\.max_mito_pct=20 filters on mitochondrial genes, but no gene name starts with MT-/mt- \(the names "
        r"look like Ensembl ids, e\.g\. 'ENSG00000000000'\).*Fix: store gene symbols in var_names, or set "
        r"qc\.max_mito_pct: 100"),
    # gene symbols of a panel or a subset without mitochondrial genes (DLPFC 151673's 5,000, STARmap's 166) (was: the
    # fix "store gene symbols in var_names", names that are symbols)
    "mito_filter_on_a_panel_without_mito_genes": (
        _h5ad(lambda a: setattr(a, "var_names", ["Snap25", "Plp1", "Mbp", *a.var_names[3:]])),
        {"params": QCParams(max_mito_pct=20)},
        r"qc\.max_mito_pct=20 filters on mitochondrial genes, but no gene name starts with MT-/mt- \(names such as "
        r"'Snap25', 'Plp1', 'Mbp'\), and no var column holds such names: the slide measures no mitochondrial gene \(a "
        r"gene panel, or a matrix they were left out of\), so no spot would be removed\. Fix: set qc\.max_mito_pct: "
        r"100 \(off\) in the config; if the names are not gene symbols, store the symbols in var_names$"),
    # Drosophila's mitochondrial genes as FlyBase names them (was, after the panel case above: "the slide measures no
    # mitochondrial gene")
    "mito_gene_names_of_flybase": (
        _h5ad(lambda a: setattr(a, "var_names", ["mt:CoI", "mt:ND1", "mt:Cyt-b", *a.var_names[3:]])),
        {"params": QCParams(max_mito_pct=20)},
        r"qc\.max_mito_pct=20 filters on mitochondrial genes, but no gene name starts with MT-/mt-; 3 start with 'mt:' "
        r"\(first: 'mt:CoI'\): Drosophila's mitochondrial genes as FlyBase names them, so no spot would be removed\. Fix: "
        r"write their 'mt:' as 'mt-' .*; or set qc\.max_mito_pct: 100 \(off\) in the config$"),
    "mito_gene_names_written_by_r": (
        _h5ad(lambda a: setattr(a, "var_names", ["MT.CO1", "MT.ND1", "MT.ATP6", *a.var_names[3:]])),
        {"params": QCParams(max_mito_pct=20)},
        r"qc\.max_mito_pct=20 filters on mitochondrial genes, but no gene name starts with MT-/mt-; 3 start with "
        r"'MT\.' \(first: 'MT\.CO1'\): mitochondrial genes whose '-' was written '\.', as R's make\.names "
        r"\(read\.csv's check\.names\) writes it, so no spot would be removed\. Fix: write their '\.' as '-' and "
        r"write the file again: adata\.var_names = adata\.var_names\.str\.replace\(r'\^\(MT\|mt\|Mt\)\\\.', "
        r"r'\\1-', regex=True\); or set qc\.max_mito_pct: 100 \(off\) in the config$"),
    "n_clusters_below_2": (_h5ad(_unchanged), {"n_clusters": 1}, r"n_clusters=1; at least 2 domains"),
    "n_clusters_above_spots": (_h5ad(_unchanged), {"n_clusters": 65},
                               r"n_clusters=65 is larger than the 64 spots after QC"),
    "fewer_spots_than_neighbours": (_h5ad(lambda a: a[:3].copy()), {"n_clusters": 2},
                                    r"3 spots after QC, not more than the 3 graph neighbours"),
    "all_counts_zero": (_h5ad(set_x(lambda x: x.__setitem__(slice(None), 0))), {},
                        r"the count matrix holds no value other than 0 \(64 spots x 40 genes\): no spot has any "
                        r"signal\. Fix: store the slide's raw counts in X"),
    "qc_removes_every_spot": (_h5ad(_unchanged), {"params": QCParams(min_counts=1e9)},
                              r"QC removed every spot .*Fix: lower the qc thresholds"),
    "qc_removes_every_annotated_spot": (
        _h5ad(_annotated_where_counts_are_low), {"params": QCParams(min_counts=100), "truth": "domain"},
        r"QC removed every annotated spot \(the 8 spots with a label in truth column 'domain' "
        r"all fail its thresholds\); every score would be n/a\. Fix: lower the qc thresholds in the config "
        r"\(qc\.min_counts, qc\.min_genes, qc\.max_mito_pct\), or leave the truth column empty"),
    "qc_removes_every_gene": (_h5ad(_unchanged), {"params": QCParams(min_spots=10_000)},
                              r"QC removed every gene .*Fix: lower qc\.min_spots"),
    "visium_no_matrix": (_visium_without("filtered_feature_bc_matrix.h5"), {},
                         r"'filtered_feature_bc_matrix\.h5' not found\. Fix: point the sample sheet"),
    "visium_matrix_named_by_its_download": (
        _visium_matrix_renamed("V1_Mouse_Brain_filtered_feature_bc_matrix.h5"), {},
        r"'filtered_feature_bc_matrix\.h5' not found in the folder; it holds 'V1_Mouse_Brain_filtered_feature_bc_matrix"
        r"\.h5', the matrix under the name a download gives it .*Fix: rename it to filtered_feature_bc_matrix\.h5: mv "),
    "visium_matrices_of_several_samples": (
        _visium_matrix_renamed("151507_filtered_feature_bc_matrix.h5", also="151508_filtered_feature_bc_matrix.h5"), {},
        r"it holds 2 matrices under the names a download gives them \('151507_filtered_feature_bc_matrix\.h5', "
        r"'151508_filtered_feature_bc_matrix\.h5'\): several samples' files in one folder\. Fix: give each sample a "
        r"folder of its own"),
    "visium_raw_matrix_only": (
        _visium_matrix_renamed("raw_feature_bc_matrix.h5"), {},
        r"'filtered_feature_bc_matrix\.h5' not found in the folder; it holds 'raw_feature_bc_matrix\.h5', Space Ranger's "
        r"raw matrix of every spot \(under the tissue or not\), which is not read: .*Fix: copy the "
        r"filtered_feature_bc_matrix\.h5 of the same Space Ranger run"),
    "visium_positions_as_downloaded": (
        _visium_positions_as_downloaded, {},
        r"no spot positions: none of .* exists; the folder holds '151673_tissue_positions_list\.csv\.gz', the positions "
        r"under another name or place\. Fix: put it where the reader opens it: mkdir -p '.*/spatial' && gunzip -c "
        r"'.*151673_tissue_positions_list\.csv\.gz' > '.*/spatial/tissue_positions_list\.csv'$"),
    "visium_matrix_gzipped": (
        _visium_matrix_renamed("filtered_feature_bc_matrix.h5.gz", gzipped=True), {},
        r"it holds 'filtered_feature_bc_matrix\.h5\.gz', the matrix gzipped\. Fix: unpack it as "
        r"filtered_feature_bc_matrix\.h5: gunzip -c "),
    "truth_is_found_domains": (_fed_back_domains, {"truth": "stcore_domain"},
                               r"truth column 'stcore_domain' holds the domains an earlier stcore run found \(graphst; "
                               r"named in uns\['stcore'\]\), not an annotation: every score would compare the new "
                               r"domains with a method's output\. Fix: set the sample sheet's truth column to the "
                               r"slide's annotation \(obs columns: \['domain'\]\), or leave it empty"),
    # the clusters scanpy's leiden wrote (its settings in uns['leiden']['params']), or Seurat's, given as the truth
    "truth_is_another_tools_clusters": (
        _h5ad(lambda a: (a.obs.__setitem__("leiden", a.obs["domain"].astype(str).str[1:]),
                         a.uns.__setitem__("leiden", {"params": {"resolution": 1.0, "random_state": 0}}))[-1]),
        {"truth": "leiden"},
        r"truth column 'leiden' holds the clusters of scanpy's sc\.tl\.leiden or sc\.tl\.louvain \(its settings are "
        r"in uns\['leiden'\]\['params'\]: resolution 1\.0\), not an annotation: every score would compare the "
        r"domains with another method's output\. Fix: set the sample sheet's truth column to the slide's annotation "
        r"\(obs columns: \['domain'\]\), or leave it empty$"),
    "truth_is_seurat_clusters": (
        _h5ad(lambda a: a.obs.__setitem__("SCT_snn_res.0.8", a.obs["domain"].astype(str).str[1:])),
        {"truth": "SCT_snn_res.0.8"},
        r"truth column 'SCT_snn_res\.0\.8' holds the clusters of Seurat's FindClusters, by its name, not an "
        r"annotation: .*Fix: set the sample sheet's truth column to the slide's annotation \(obs columns: "
        r"\['domain'\]\), or leave it empty$"),
    "truth_is_a_coordinate": (
        _h5ad(lambda a: a.obs.__setitem__("array_row", np.rint(a.obsm["spatial"][:, 1] / 86.6).astype(int))),
        {"truth": "array_row"},
        r"truth column 'array_row' holds a coordinate of the spots \(obs\['array_row'\], by its name\), not an "
        r"annotation: every score would compare the domains with the slide's rows or columns\. Fix: set the sample "
        r"sheet's truth column to the slide's annotation \(obs columns: \['domain'\]\), or leave it empty$"),
    # absolute coordinates around 2e7 (a large array's) stored as float32, whose step there is 2: neighbouring spots
    # 1 to 2 apart rounded onto one another (was: the generic warning of spots that share a position)
    "float32_coordinates_at_a_large_offset": (
        _h5ad(lambda a: a.obsm.__setitem__("spatial", (a.obsm["spatial"] / 50 + 2e7).astype(np.float32))), {},
        r"obsm\['spatial'\] is stored as float32, which holds numbers near 2e\+07 only to a step of 2, as coarse as "
        r"the spots' spacing \(neighbouring distinct positions lie 2 apart\): \d+ spots share their position with "
        r"another \(first: .*rounded onto one another when the coordinates were written as float32; .*Fix: store the "
        r"coordinates as float64 from their source .*or subtract their smallest x and y in float64 before storing "
        r"them as float32"),
    # a square grid of spacing 5 (a Visium HD or Stereo-seq array's) at 2e7 as float32, whose step there is 2: no two
    # spots rounded onto one position, but each moved by up to 1, so a third of every spot's 3 nearest lay beyond the
    # grid's nearest four (was: taken without a word)
    "float32_coordinates_distorted_at_a_large_offset": (
        _h5ad(lambda a: a.obsm.__setitem__("spatial", (np.column_stack([np.arange(64) % 8, np.arange(64) // 8]) * 5.0
                                                       + 2e7).astype(np.float32))), {},
        r"obsm\['spatial'\] is stored as float32, which holds numbers near 2e\+07 only to a step of 2, as coarse as "
        r"the spots' spacing \(neighbouring distinct positions lie \d+ apart\): each coordinate was rounded by up to 1 "
        r"when written as float32, which moves the spots by up to \d+% of their spacing against their neighbours; the "
        r"spatial graph would join other spots than the nearest\. Fix: store the coordinates as float64 from their "
        r"source .*or subtract their smallest x and y in float64 before storing them as float32"),
    # pixel coordinates beyond float16's largest number (65504) stored as float16: infinite (was: "8 spots have NaN or
    # infinite coordinates. Fix: drop those spots or fill in their coordinates")
    "float16_coordinates_beyond_its_range": (
        _h5ad(lambda a: a.obsm.__setitem__("spatial", (a.obsm["spatial"] * 100).astype(np.float16))), {},
        r"8 spots have infinite coordinates \(obsm\['spatial'\]\): it is stored as float16, whose largest number is "
        r"65504, and their coordinates were beyond it when they were written as float16\. Fix: store the coordinates "
        r"as float64 from their source"),
    # a count per spot (Xenium's transcript_counts: ~1,000 values over 100,000 cells) was taken as an annotation
    "truth_is_a_count_per_spot": (
        _count_per_spot_truth, {"truth": "transcript_counts"},
        r"truth column 'transcript_counts' holds a quantity measured in each spot \(1\d\d distinct whole numbers over "
        r"576 spots, as a count or a size per spot takes\), not an annotation: every score would compare the domains "
        r"with that quantity\. Fix: set the sample sheet's truth column to the slide's annotation \(obs columns: "
        r"\['domain'\]\), or leave it empty$"),
    "truth_is_a_count_per_spot_as_text": (
        lambda tmp: _count_per_spot_truth(tmp, as_text=True), {"truth": "transcript_counts"},
        r"truth column 'transcript_counts' holds a quantity measured in each spot \(1\d\d distinct whole numbers over "
        r"576 spots, written as text, as a count or a size per spot takes\), not an annotation"),
    "truth_groups_spots_as_a_coordinate": (
        _h5ad(lambda a: a.obs.__setitem__("band", [f"b{y:.0f}" for y in a.obsm["spatial"][:, 1]])),
        {"truth": "band"},
        r"truth column 'band' holds a coordinate of the spots \(one label for each value of obsm\['spatial'\]"
        r"\[:, 1\]\), not an annotation: .*Fix: set the sample sheet's truth column to the slide's annotation "
        r"\(obs columns: \['domain'\]\), or leave it empty$"),
    "visium_corrupt_matrix": (_visium_corrupt_matrix, {}, r"cannot read the 10x matrix"),
    "visium_no_positions": (_visium_without("spatial/tissue_positions.csv"), {},
                            r"no spot positions: none of spatial/tissue_positions\.parquet, spatial/tissue_positions\.csv"),
    "visium_mismatched_barcodes": (_visium(barcodes=[f"AAAC-{i}" for i in range(64)]), {},
                                   r"64 barcodes of the matrix are not in the positions file"),
    "visium_bad_position_columns": (_visium(header=["bc", *HEADER[1:]]), {}, r"unexpected columns"),
    "visium_truth_column": (_visium(), {"truth": "layer"},
                            r"outs': truth column 'layer' is not in obs: a visium folder holds no annotation \(obs "
                            r"holds the reader's columns: \['in_tissue', 'array_row', 'array_col'\]\)\. Fix: to "
                            r"score against an annotation, add it to obs and give the slide as an \.h5ad \(format "
                            r"h5ad\): adata = stcore\.read\.visium\('.*outs'\); adata\.obs\['layer'\] = "
                            r"pd\.read_csv\('labels\.csv', index_col=0\)\.iloc\[:, 0\]\.reindex\(adata\.obs_names\); "
                            r"adata\.write_h5ad\('slide\.h5ad'\); or leave the truth cell empty$"),
    "visium_no_spot_in_tissue": (_visium_no_tissue, {},
                                 r"64 of the 64 spots of filtered_feature_bc_matrix\.h5 are not under tissue in "
                                 r"tissue_positions\.csv .*positions are of another run .*Fix: use the spatial/ folder"),
    "visium_positions_of_another_run": (_visium_other_run, {},
                                        r"^file '.*tissue_positions\.csv': 3 of the 64 spots of "
                                        r"filtered_feature_bc_matrix\.h5 are not under tissue"),
    "visium_raw_matrix_as_filtered": (_visium(in_tissue=np.r_[np.ones(20, int), np.zeros(44, int)]), {},
                                      r"44 of the 64 spots .* the matrix holds more spots than the 20 the file puts "
                                      r"under tissue: it is the raw matrix \(raw_feature_bc_matrix\.h5, every spot\) .*"
                                      r"Fix: .*its filtered_feature_bc_matrix\.h5 \(not raw_feature_bc_matrix\.h5\)"),
    "visium_duplicate_barcodes": (_visium_duplicate_barcode, {},
                                  r"1 duplicate barcodes \(first: 'spot0003'\)\. Fix: use the positions file"),
    "spot_id_with_tab": (_h5ad(lambda a: setattr(a, "obs_names", ["spot\t0", *a.obs_names[1:]])), {},
                         r"1 spot ids are empty or hold a tab or line break \(first: 'spot\\t0'\)"),
}


@pytest.mark.parametrize("case", sorted(CATALOGUE))
def test_catalogue(case, tmp_path):
    build, kwargs, expected = CATALOGUE[case]
    path, fmt = build(tmp_path)
    kwargs = dict(kwargs)
    params = kwargs.pop("params", QCParams())
    with pytest.raises(InputError) as err:
        prepare_slide(str(path), fmt, params, **kwargs)
    msg = str(err.value)
    assert re.search(expected, msg), msg
    assert "\n" not in msg
    assert f"file '{path}" in msg and "Fix: " in msg       # names the file and says what to do


def test_catalogue_size():
    assert len(CATALOGUE) >= 20


def test_catalogue_cases_are_otherwise_valid(tmp_path):
    """The unchanged slide (both formats, both Space Ranger positions files) passes, so each
    case above fails for its one defect."""
    good = write(tiny_slide(), tmp_path / "good.h5ad")
    adata, report = prepare_slide(str(good), "h5ad", QCParams(), truth="domain", n_clusters=2)
    assert adata.n_obs == 64 and report["input_sha256"]
    for positions in ("tissue_positions.csv", "tissue_positions_list.csv"):
        folder = write_visium(tmp_path / positions, tiny_slide(), positions=positions)
        adata, _ = prepare_slide(str(folder), "visium", QCParams(), n_clusters=2)
        assert adata.n_obs == 64 and adata.obsm["spatial"].shape == (64, 2)
    # the positions file as users leave it: the older headerless file under the newer name, and a
    # spreadsheet's re-save with ';' between cells (both were "unexpected columns [...]")
    folder = write_visium(tmp_path / "renamed", tiny_slide(), positions="tissue_positions_list.csv")
    spatial = folder / "spatial"
    (spatial / "tissue_positions_list.csv").rename(spatial / "tissue_positions.csv")
    renamed, _ = prepare_slide(str(folder), "visium", QCParams(), n_clusters=2)
    assert np.array_equal(renamed.obsm["spatial"], adata.obsm["spatial"])
    text = (spatial / "tissue_positions.csv").read_text()
    (spatial / "tissue_positions.csv").write_text("barcode;in_tissue;array_row;array_col;pxl_row_in_fullres;"
                                                   "pxl_col_in_fullres\n" + text.replace(",", ";"))
    semicolons, _ = prepare_slide(str(folder), "visium", QCParams(), n_clusters=2)
    assert np.array_equal(semicolons.obsm["spatial"], adata.obsm["spatial"])


def test_float32_coordinates_pass_as_float64_or_from_their_minimum(tmp_path, caplog):
    """The fixes the float32 refusal names read the same slide: its coordinates at 2e7 as float64, or
    less their minimum as float32; and float32 coordinates of an ordinary range (pixels) are read as
    they are, spots at one position there left to the warning of shared positions."""
    for name, change in (("float64", lambda xy: xy / 50 + 2e7),
                         ("from_minimum", lambda xy: ((xy / 50 + 2e7) - (xy / 50 + 2e7).min(axis=0)).astype(np.float32)),
                         ("pixels", lambda xy: xy.astype(np.float32))):
        adata = tiny_slide()
        adata.obsm["spatial"] = change(np.asarray(adata.obsm["spatial"], dtype=float))
        kept, _ = prepare_slide(str(write(adata, tmp_path / f"{name}.h5ad")), "h5ad", QCParams(), n_clusters=2)
        assert kept.n_obs == 64
    adata = tiny_slide()
    adata.obsm["spatial"] = adata.obsm["spatial"].astype(np.float32)
    adata.obsm["spatial"][1] = adata.obsm["spatial"][0]
    with caplog.at_level("WARNING"):
        prepare_slide(str(write(adata, tmp_path / "shared.h5ad")), "h5ad", QCParams(), n_clusters=2)
    assert "2 spots share their position with another spot" in caplog.text


def test_duplicate_gene_names_warn_and_are_made_unique(tmp_path, caplog):
    adata = tiny_slide()
    adata.var_names = ["g0", "g0", *adata.var_names[2:]]
    path = write(adata, tmp_path / "slide.h5ad")
    with caplog.at_level(logging.WARNING):
        out = read_slide(path, "h5ad")
    assert out.var_names.is_unique and list(out.var_names[:2]) == ["g0", "g0-1"]
    assert "1 duplicate gene names made unique" in caplog.text


def test_fewer_genes_than_hvg_warns_and_uses_all_genes(caplog):
    adata = tiny_slide(n_genes=40)
    with caplog.at_level(logging.WARNING):
        mask = select_hvg(adata, HVGParams(n_top_genes=3000))
    assert mask.all() and mask.size == 40
    assert "slide has 40 genes, not more than n_top_genes=3000: all genes are used" in caplog.text


def test_fewer_genes_than_hvg_records_the_genes_used():
    """hvg.h5ad's uns['hvg'] recorded n_top_genes 3000 where the slide's 40 genes were used: it records
    the 40 used and the 3000 asked beside them; as many as asked, the number alone."""
    out = run_hvg(tiny_slide(n_genes=40), HVGParams(n_top_genes=3000))
    assert out.n_vars == 40
    assert out.uns["hvg"]["n_top_genes"] == 40 and out.uns["hvg"]["n_top_genes_asked"] == 3000
    out = run_hvg(tiny_slide(n_genes=40), HVGParams(n_top_genes=30))
    assert out.n_vars == 30 and out.uns["hvg"]["n_top_genes"] == 30 and "n_top_genes_asked" not in out.uns["hvg"]


def test_as_many_genes_as_hvg_keeps_all_genes_without_a_warning(caplog):
    """The demo's slides: 3000 genes and n_top_genes 3000, all genes as asked; no WARNING line."""
    adata = tiny_slide(n_genes=40)
    with caplog.at_level(logging.INFO):
        mask = select_hvg(adata, HVGParams(n_top_genes=40))
    assert mask.all() and mask.size == 40
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert "slide has 40 genes, n_top_genes=40: all genes are used" in caplog.text


def test_located_error_names_sample():
    err = InputError("bad thing", path="x.h5ad", fix="do y").located(sample="s1")
    assert str(err) == "sample 's1', file 'x.h5ad': bad thing. Fix: do y"


# --- the sample sheet and the config: schema errors at parse time -------------------------------

SHEET_CASES = {
    "sample_id_with_slash": ("a/b\tx.h5ad\th5ad\t2\t", r"sample id 'a/b' is not a safe file name"),
    # a long numeric id as a spreadsheet shows and saves it (was: "is not a safe file name. Fix: use letters, ...")
    "sample_id_in_scientific_notation": ("1.23457E+11\tx.h5ad\th5ad\t2\t",
                                         r"sample id '1\.23457E\+11' is a number in scientific notation, as a spreadsheet "
                                         r"shows and saves a long number \(its last digits are lost\)\. Fix: format the "
                                         r"column as text in the spreadsheet, type the ids again in full"),
    "sample_id_with_dotdot": ("a..b\tx.h5ad\th5ad\t2\t", r"sample id 'a\.\.b' is not a safe file name"),
    "duplicate_sample_id": ("s1\tx.h5ad\th5ad\t2\t\ns1\ty.h5ad\th5ad\t2\t", r"sample id 's1' appears twice"),
    "unknown_format_in_sheet": ("s1\tx.h5ad\tloom\t2\t", r"sample sheet 'samples\.tsv', row 1 \(sample 's1'\), column format: 'loom' is not one of .*Fix: format: input format: h5ad; visium"),
    "n_clusters_1_in_sheet": ("s1\tx.h5ad\th5ad\t1\t", r"row 1 \(sample 's1'\), column n_clusters: 1 is less than the minimum of 2\. Fix: n_clusters: number of spatial domains to find \(2 or more\), or auto"),
    "n_clusters_not_integer": ("s1\tx.h5ad\th5ad\tseven\t", r"row 1 \(sample 's1'\), column n_clusters: 'seven' is not valid\. Fix: n_clusters: number of spatial domains to find \(2 or more\), or auto"),
    "sample_id_traversal": ("../x\tx.h5ad\th5ad\t2\t", r"sample id '\.\./x' is not a safe file name"),
    "sample_ids_differ_in_case": ("S1\tx.h5ad\th5ad\t2\t\ns1\tx.h5ad\th5ad\t2\t",
                                  r"sample ids 'S1' and 's1' differ only in case.*Fix: rename one"),
    "comma_separated_sheet": (None, r"sample sheet 'samples\.tsv' is not tab-separated \(its header is "
                                    r"'sample,path,format,n_clusters,truth'\)\. Fix: save it as tab-separated"),
    "empty_sheet": ("", r"sample sheet 'samples\.tsv' has no slides\. Fix: add a header line"),
}

CONFIG_CASES = {
    "unknown_config_key": ("qc: {min_count: 3}\n",
                           r"config is invalid: qc: Additional properties are not allowed \('min_count' was unexpected\)"
                           r"(?=\. Fix: write min_counts for min_count)"),
    "wrong_config_type": ("train: {epochs: many, device: cpu}\n",
                          r"config is invalid: train\.epochs: 'many' is not of type 'integer'"),
    "seeds_not_a_list": ("seeds: 3\n", r"config is invalid: seeds: 3 is not of type 'array'"),
    "duplicate_seeds": ("seeds: [0, 0]\n", r"config is invalid: seeds: \[0, 0\] has non-unique elements"),
    "duplicate_method_seeds": ("methods: {graphst: {model: graphst, seeds: [1, 1]}}\n",
                               r"config is invalid: methods\.graphst\.seeds: \[1, 1\] has non-unique elements"),
    "radius_not_positive": ("graph: {mode: radius, radius: -5}\n",
                            r"config is invalid: graph\.radius: -5 is less than or equal to the minimum of 0"),
    # Options removed with their code (docs/compare/DEFAULTS.md has each decision): refused by name.
    "removed_train_snapshots": ("train: {snapshots: 5}\n",
                                r"config is invalid: train: Additional properties are not allowed \('snapshots' was unexpected\)"),
    "removed_method_average_last": ("methods: {graphst: {model: graphst, train: {average_last: 50}}}\n",
                                    r"config is invalid: methods\.graphst\.train: Additional properties are not allowed "
                                    r"\('average_last' was unexpected\)"),
    "removed_cluster_starts": ("cluster: {starts: 5}\n",
                               r"config is invalid: cluster: Additional properties are not allowed \('starts' was unexpected\)"),
}

# Config values the schema cannot judge alone but a later step would refuse, and names that
# would become paths outside results/: refused at parse time, before any job.
# id -> (config lines, sample sheet rows, expected message)
SETTINGS_CASES = {
    "radius_mode_without_radius": ("graph: {mode: radius}\n", None,
                                   r"config: graph\.mode is radius but graph\.radius is not set\. Fix: set graph\.radius"),
    "method_name_traversal": ('methods: {"../../../X": {model: expression}}\n', None,
                              r"config 'methods': method '\.\./\.\./\.\./X' is not a safe file name"),
    "method_name_with_dot": ('methods: {"b.c": {model: graphst}}\n', None,
                             r"method 'b\.c' is not a safe file name\. Fix: .*\(no '\.'\)"),
    "simulate_name_traversal": ('simulate: {"../../X": {n_spots: 50}}\n', None,
                                r"config 'simulate': simulated slide '\.\./\.\./X' is not a safe file name"),
    "auto_range_reversed": ("cluster: {auto_range: [9, 3]}\n", None,
                            r"config: cluster\.auto_range \[9, 3\] runs from high to low\. Fix: write it as \[3, 9\]"),
    "subset_not_above_n_clusters": ("cluster: {subset: 10}\n", "s1\tx.h5ad\th5ad\t12\t",
                                    r"config: cluster\.subset 10 must exceed the largest number of domains asked for \(12\)"),
    "own_labels_of_a_model_without": ("methods: {graphst: {model: graphst, cluster: {algorithm: own}}}\n", None,
                                      r"config: method 'graphst': cluster\.algorithm own, but model 'graphst' has no "
                                      r"clustering of its own"),
    # A renamed key: refused with its new name ("method" names the config's methods only).
    "renamed_cluster_method": ("methods: {graphst: {model: graphst}, g2: {train_from: graphst, cluster: {method: leiden}}}\n",
                               None, r"config is invalid: methods\.g2\.cluster\.method is now methods\.g2\.cluster\.algorithm\. "
                                     r"Fix: write methods\.g2\.cluster: \{algorithm: leiden\}"),
    # a peer's train.peer key its package does not take (was: refused by its train job, after qc, hvg and graph)
    "peer_key_misspelt": ("methods: {st: {model: stagate, train: {peer: {n_epoch: 500}}}}\n", None,
                          r"config: method 'st' \(model stagate\): unknown methods\.st\.train\.peer setting\(s\) "
                          r"\['n_epoch'\]; its package takes no such argument, so its train job would refuse them\. "
                          r"Fix: write n_epochs for n_epoch, or use only \['gradient_clipping', 'hidden_dims', 'lr', "
                          r"'n_epochs', 'rad_cutoff', 'weight_decay'\]"),
    # train.peer keyed by method, as tl.domains takes it (was: "unknown train.peer setting(s) ['banksy'] ... Fix: use
    # only [...]", the keys of BANKSY's package, which does not say where a method's own settings go)
    "peer_block_keyed_by_method": ("methods: {graphst: {model: graphst}, bk: {model: banksy}}\n"
                                   "train: {peer: {banksy: {n_top_genes: 1000}}}\n", None,
                                   r"config: method 'bk' \(model banksy\): unknown train\.peer setting\(s\) \['banksy'\]; "
                                   r".* Fix: the settings of a method go in its own block: in the config, "
                                   r"methods\.<its name>\.train\.peer \(methods: \{bk: \{model: banksy, train: \{peer: "
                                   r"\{n_top_genes: 1000\}\}\}\}\); in tl\.domains, train=\{'peer': \{'banksy': "
                                   r"\{'n_top_genes': 1000\}\}\}"),
    "compare_method_not_in_config": ("compare: {figure_method: nope}\n", None,
                                     r"config: compare\.figure_method 'nope' is not a method of the config"),
    # A key given twice in the config file: YAML kept the second without a word (the first train:
    # block's epochs were dropped; a method named twice ran once, as the second said).
    "config_block_given_twice": ("train: {epochs: 5, device: cpu}\ncluster: {n_init: 1}\ntrain: {lr: 0.01}\n", None,
                                 r"config file '[^']*config\.yaml': train is given twice \(lines \d+ and \d+\); YAML keeps "
                                 r"the second only, so what the first holds would be ignored without a word\. "
                                 r"Fix: merge the two train blocks into one"),
    # YAML reads an unquoted id as a number and 'no' as a boolean (was: "151673 is not of type 'string'.
    # Fix: see stcore/schemas/config.schema.yaml", which does not say to quote it)
    "sample_id_read_as_a_number": ("methods: {graphst: {model: graphst, samples: [151673]}}\n", None,
                                   r"config is invalid: methods\.graphst\.samples\.0: 151673 is a number, where text is "
                                   r"needed: YAML reads unquoted digits as a number \(and 07 as 7\)\. Fix: quote it as the "
                                   r"sample sheet or config writes it \(e\.g\. '151673'\)"),
    "word_read_as_a_boolean": ("hvg: {flavor: no}\n", None,
                               r"config is invalid: hvg\.flavor: False is a boolean, where text is needed: YAML reads an "
                               r"unquoted yes, no, on, off, true or false as one\. Fix: quote the word meant"),
    # a set of names written as a list, a method with nothing under its name (the list was an AttributeError
    # traceback; the others "... is not of type 'object'. Fix: see stcore/schemas/config.schema.yaml")
    "methods_as_a_list": ("methods: [graphst, expression]\n", None,
                          r"config is invalid: methods: \['graphst', 'expression'\] is a list of names, but each method is "
                          r"a named entry with its model\. Fix: write methods: \{graphst: \{model: graphst\}, "
                          r"expression: \{model: expression\}\}"),
    "method_without_anything": ("methods:\n  banksy:\n", None,
                                r"config is invalid: methods\.banksy: nothing is given under the method's name\. "
                                r"Fix: give it its model, e.g\. banksy: \{model: banksy\}"),
    "method_given_twice": ("methods:\n  graphst: {model: graphst}\n  graphst: {model: expression}\n", None,
                           r"methods\.graphst is given twice \(lines \d+ and \d+\);.*Fix: merge the two "
                           r"methods\.graphst blocks into one, or rename one"),
}


def _parse_only(tmp, sheet_rows: str | None = None, config_extra: str = ""):
    workdir(tmp, {}, extra_config=config_extra)
    if sheet_rows is not None:
        (tmp / "samples.tsv").write_text("sample\tpath\tformat\tn_clusters\ttruth\n" + sheet_rows + "\n")
    else:       # the sheet a spreadsheet writes as CSV
        (tmp / "samples.tsv").write_text("sample,path,format,n_clusters,truth\ns1,x.h5ad,h5ad,2,\n")
    (tmp / "x.h5ad").write_bytes(b"")
    return snakemake(tmp, "--dry-run", "--cores", "1", timeout=120)


@pytest.mark.parametrize("case", sorted(SHEET_CASES))
def test_sample_sheet_errors(case, tmp_path):
    rows, expected = SHEET_CASES[case]
    run = _parse_only(tmp_path, rows)
    assert run.returncode != 0
    text = run.stdout + run.stderr
    assert re.search(expected, text, re.S), text[-2000:]
    assert "Traceback" not in text


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_config_schema_errors_name_the_key(case, tmp_path):
    extra, key = CONFIG_CASES[case]
    run = _parse_only(tmp_path, "s1\tx.h5ad\th5ad\t2\t", extra)
    assert run.returncode != 0
    text = run.stdout + run.stderr
    # the fix: the key meant where one is near (qc.min_counts for min_count), else the schema to read
    assert re.search(key + r"\. Fix: (see stcore/schemas/config\.schema\.yaml|write \w+ for \w+)", text), text[-2000:]
    assert "Traceback" not in text


@pytest.mark.parametrize("case", sorted(SETTINGS_CASES))
def test_settings_a_later_step_would_refuse_stop_at_parse_time(case, tmp_path):
    extra, rows, expected = SETTINGS_CASES[case]
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    run = _parse_only(tmp_path, rows if rows is not None else "s1\tx.h5ad\th5ad\t2\t", extra)
    text = run.stdout + run.stderr
    assert run.returncode != 0
    assert re.search(expected, text, re.S), text[-2000:]
    assert "Traceback" not in text
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before       # nothing written beside
    assert not (tmp_path / "results").exists()


def test_sheet_quirks_are_read_as_meant(tmp_path):
    """A byte-order mark, Windows line ends, spaces around cells, a '#' inside a path, a format
    in capitals and n_clusters written '2.0' are read as the user meant; a line starting with
    '#' is a comment."""
    workdir(tmp_path, {})
    (tmp_path / "data#1").mkdir()
    write(tiny_slide(), tmp_path / "data#1" / "s.h5ad")
    rows = ["sample\tpath\tformat\tn_clusters\ttruth", "# a comment line", " s1 \tdata#1/s.h5ad\t H5AD\t2.0 \tdomain"]
    (tmp_path / "samples.tsv").write_bytes(("\ufeff" + "\r\n".join(rows) + "\r\n").encode())
    run = snakemake(tmp_path, "--dry-run", "--cores", "1", "results/s1/qc.json", timeout=120)
    assert run.returncode == 0, (run.stdout + run.stderr)[-2000:]
    # the qc job's input is the stamp of the slide's files (their path is none), kept only where they are found
    assert "results/records/input/s1.json" in run.stdout and "data#1" not in run.stderr


def test_snakefile_knows_the_registry_and_the_formats():
    """What the Snakefile knows of stcore (it does not import stcore): the methods' facts come from
    the registry (no rule names a model; the schema's enum lists the registry's names), and the
    formats of the sample sheet's schema and the clustering algorithms of the config's are stcore's."""
    import yaml

    from slides import REPO
    from stcore.formats import FORMATS
    from stcore.io import SlideFormat
    from stcore.methods import REGISTRY

    from stcore.registry import METHODS

    # no model list in the rules: they read the registry's facts (stcore/registry.py)
    rules = "".join(p.read_text() for p in (REPO / "rules").glob("*.smk"))
    assert not re.search(r"\b(graphst_pkg|stagate|spagcn|cellcharter|banksy)\b", rules)
    config_schema = yaml.safe_load((REPO / "stcore" / "schemas" / "config.schema.yaml").read_text())
    enum = config_schema["properties"]["methods"]["additionalProperties"]["properties"]["model"]["enum"]
    assert list(enum) == list(METHODS) == list(REGISTRY)
    assert all(REGISTRY[name].facts is METHODS[name] for name in METHODS)
    schema = yaml.safe_load((REPO / "schemas" / "samples.schema.yaml").read_text())
    assert tuple(schema["properties"]["format"]["enum"]) == FORMATS
    assert tuple(f.value for f in SlideFormat) == FORMATS
    # the clustering algorithms and inputs of the schema are stcore.cluster's
    from stcore.cluster import ClusterAlgorithm, ClusterInput

    cluster = config_schema["$defs"]["cluster"]["properties"]
    assert cluster["algorithm"]["enum"] == [a.value for a in ClusterAlgorithm]
    assert cluster["input"]["enum"] == [i.value for i in ClusterInput]


def test_missing_sample_sheet_column(tmp_path):
    workdir(tmp_path, {})
    (tmp_path / "samples.tsv").write_text("sample\tpath\tn_clusters\ns1\tx.h5ad\t2\n")
    run = snakemake(tmp_path, "--dry-run", "--cores", "1", timeout=120)
    assert run.returncode != 0
    assert "column 'format' is missing" in run.stdout + run.stderr


# --- through Snakemake: one line, nothing left behind, the other samples finish --------------------

def test_bad_samples_fail_alone_with_one_line(tmp_path):
    """With --keep-going, two bad slides fail their qc with their one-line message (in the
    log and repeated at the end of the console) and leave no output; the good slide finishes."""
    write(tiny_slide(), tmp_path / "good.h5ad")
    (tmp_path / "broken.h5ad").write_bytes(b"not an h5ad file")
    write(tiny_slide(), tmp_path / "nolabel.h5ad")
    workdir(tmp_path, {"good": ("good.h5ad", 2, "domain"), "broken": ("broken.h5ad", 2, "domain"),
                       "nolabel": ("nolabel.h5ad", 2, "layer")}, epochs=2)
    run = snakemake(tmp_path, "--cores", "2", "--keep-going")
    console = run.stdout + run.stderr
    assert run.returncode != 0
    assert (tmp_path / "results/good/graphst/seed0/metrics.tsv").is_file(), console[-3000:]
    assert not (tmp_path / "results/table.tsv").exists()
    expected = {
        "broken": "sample 'broken', file 'broken.h5ad': not a readable .h5ad",
        "nolabel": "sample 'nolabel', file 'nolabel.h5ad': truth column 'layer' is not in obs",
    }
    for sample, line in expected.items():
        log = (tmp_path / f"logs/qc/{sample}.log").read_text().strip().splitlines()
        assert len(log) == 1 and line in log[0] and "Fix: " in log[0], log
        assert f"FAILED logs/qc/{sample}.log: {line}" in console       # the summary at the end
        assert not (tmp_path / "results" / sample).exists()             # nothing half-written
    assert "Traceback" not in console
    assert leftovers(tmp_path) == []
    assert all("good" in str(p) for p in outputs(tmp_path) if "records" not in str(p))


def test_normalised_values_go_through_with_the_values_column(tmp_path):
    """A slide of non-integer normalised values (as MERFISH's volume-normalised X): refused as
    counts, taken through with values: normalized (no second library-size normalisation, genes
    chosen with flavour seurat), and log-normalised values are only scaled."""
    from stcore.hvg import transform
    from stcore.qc import QCParams, prepare_slide

    adata = tiny_slide(n_genes=60)
    volume = np.random.default_rng(0).uniform(0.5, 2.0, adata.n_obs)
    adata.X = sp.csr_matrix(adata.X.multiply(volume[:, None]))     # non-integer, non-negative
    path = write(adata, tmp_path / "merfish_like.h5ad")
    with pytest.raises(InputError, match="non-integer values.*values column.*normalized after a normalisation"):
        prepare_slide(str(path), "h5ad", QCParams(), truth="domain", n_clusters=2, integer_counts=True)
    qc, _ = prepare_slide(str(path), "h5ad", QCParams(), truth="domain", n_clusters=2, integer_counts=False)
    params = HVGParams(n_top_genes=30, values="normalized")
    assert params.selection_flavor == "seurat"
    out = run_hvg(qc, params)
    assert out.n_vars == 30 and out.uns["hvg"]["flavor"] == "seurat" and out.uns["hvg"]["values"] == "normalized"
    x = qc.X[:, :5].toarray().astype(np.float64)
    logged = np.log1p(x)                                              # no normalize_total first
    sd = logged.std(axis=0, ddof=1)
    expect = np.minimum(logged / np.where(sd > 0, sd, 1), 10)
    got = transform(sp.csr_matrix(x), HVGParams(values="normalized")).toarray()
    assert np.allclose(got, expect, atol=1e-5)
    got_log = transform(sp.csr_matrix(logged), HVGParams(values="log_normalized")).toarray()
    assert np.allclose(got_log, expect, atol=1e-5)
    with pytest.raises(InputError, match="values 'tpm' is not known"):
        HVGParams(values="tpm")


# --- degenerate data: a named error, never a signal --------------------------------------------------

def _constant_except(n_varying):
    """The tiny slide with every gene constant across spots except the first ``n_varying``."""
    adata = tiny_slide(n_genes=60)
    x = adata.X.toarray()
    x[:, n_varying:] = x[0, n_varying:]
    adata.X = sp.csr_matrix(x)
    return adata


@pytest.mark.parametrize("n_varying, expected", [
    (0, r"no gene varies across spots \(every gene has the same value in every spot\)\. Fix: check that X"),
    (3, r"only 3 of 60 genes vary across spots: too few for seurat_v3's mean-variance trend"),   # was SIGSEGV
    (8, r"only 8 of 60 genes vary across spots"),                                                 # was a loess error
])
def test_near_constant_expression_is_a_named_error(n_varying, expected):
    with pytest.raises(InputError, match=expected):
        run_hvg(_constant_except(n_varying), HVGParams(n_top_genes=30))


def test_constant_expression_is_refused_whatever_the_flavour():
    with pytest.raises(InputError, match="no gene varies across spots"):
        run_hvg(_constant_except(0), HVGParams(n_top_genes=100, flavor="seurat"))


def test_a_radius_graph_without_edges_is_a_named_error(caplog):
    from stcore.graph import GraphParams, spatial_adjacency

    xy = tiny_slide().obsm["spatial"]                       # spots 100 apart
    with pytest.raises(InputError, match=r"graph\.radius 1 joins no two spots \(the median distance to a spot's "
                                         r"nearest neighbour is 100\)\. Fix: raise graph\.radius above 100"):
        spatial_adjacency(xy, GraphParams(mode="radius", radius=1.0))
    far = np.vstack([xy, [[1e5, 1e5]]])                     # one spot far from the rest: a warning
    with caplog.at_level(logging.WARNING):
        adj = spatial_adjacency(far, GraphParams(mode="radius", radius=150.0))
    assert adj.nnz > 0 and "leaves 1 of 65 spots without a neighbour" in caplog.text


def test_a_radius_in_the_wrong_units_is_refused_before_the_pairs_are_listed(monkeypatch):
    """A radius that joins each spot to hundreds of others (microns given for pixels) is refused
    with the nearest-neighbour distance to scale it by; one a few times that distance is taken."""
    from scipy.spatial import cKDTree

    from stcore.graph import GraphParams, spatial_adjacency

    grid = np.stack(np.meshgrid(np.arange(30.0), np.arange(30.0)), axis=-1).reshape(-1, 2) * 10   # 900 spots, 10 apart

    class Tree(cKDTree):
        def query_pairs(self, *args, **kwargs):
            raise AssertionError("the pairs were listed before the check")

    with monkeypatch.context() as m:
        m.setattr("stcore.graph.cKDTree", Tree)
        with pytest.raises(InputError, match=r"^graph\.radius 1000 joins each spot to about 899 others \(the median "
                                             r"distance to a spot's nearest neighbour is 10; at most 200 are taken\)\. "
                                             r"Fix: lower graph\.radius to a few times 10 "):
            spatial_adjacency(grid, GraphParams(mode="radius", radius=1000.0))
    adj = spatial_adjacency(grid, GraphParams(mode="radius", radius=15.0))      # the 8 around each inner spot
    assert adj.getnnz(axis=1).max() == 8


# --- through the DAG: awkward ids, missing files, edited position files ------------------------------

def test_awkward_ids_round_trip_through_the_dag(tmp_path):
    """Sample ids that look like numbers or missing values, and AnnData's default spot ids
    '0'..'n-1', come out of every TSV as written; every file stays under results/ and logs/."""
    for name in ("a", "b", "c"):
        write(tiny_slide(seed=len(name)), tmp_path / f"{name}.h5ad")
    numbered = tiny_slide(seed=3)
    numbered.obs_names = [str(i) for i in range(numbered.n_obs)]
    write(numbered, tmp_path / "c.h5ad")
    workdir(tmp_path, {"01": ("a.h5ad", 2, "domain"), "1e3": ("b.h5ad", 2, "domain"),
                       "NA": ("c.h5ad", 2, "domain")}, epochs=2,
            extra_config="seeds: [0, 1]\n")
    inputs = {p for p in tmp_path.rglob("*") if p.is_file()}
    run = snakemake(tmp_path, "--cores", "2", timeout=900)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    table = pd.read_csv(tmp_path / "results/table.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert sorted(set(table["sample"])) == ["01", "1e3", "NA"]
    assert len(table) == 3 * 2 + 3 and (table["ARI"] != "").all()         # 2 seeds and their consensus
    assert sorted(table.loc[table["seed"] == "consensus", "sample"]) == ["01", "1e3", "NA"]
    summary = (tmp_path / "results/summary.md").read_text()
    for sample in ("01", "1e3", "NA"):
        assert f"| {sample} | " in summary
    assert "(n=2)" in summary and "n/a" not in summary.split("## ")[1]
    labels = pd.read_csv(tmp_path / "results/NA/graphst/seed0/labels.tsv", sep="\t", dtype=str)
    assert list(labels["spot"][:3]) == ["0", "1", "2"]
    # the consensus's domains.h5ad: the combined domains, each seed's beside them, their agreement
    import anndata as ad

    from stcore.evaluate import mean_pairwise_ari
    both = ad.read_h5ad(tmp_path / "results/NA/graphst/consensus/domains.h5ad")
    key = both.uns["stcore"]["key"]
    def domains(path):
        return pd.read_csv(path, sep="\t", dtype=str).set_index("spot")["domain"].loc[both.obs_names].to_numpy()
    assert (both.obs[key].astype(str).to_numpy() == domains(tmp_path / "results/NA/graphst/consensus/labels.tsv")).all()
    seeds = [domains(tmp_path / f"results/NA/graphst/seed{s}/labels.tsv") for s in (0, 1)]
    assert list(both.obsm[f"{key}_seeds"].columns) == ["seed0", "seed1"]
    for s in (0, 1):
        assert (both.obsm[f"{key}_seeds"][f"seed{s}"].astype(str).to_numpy() == seeds[s]).all()
    assert both.uns["stcore"]["seed_ARI"] == mean_pairwise_ari(seeds)
    assert both.uns["stcore"]["seed"] == "consensus" and both.obsm["X_graphst"].shape[0] == both.n_obs
    made = {p for p in tmp_path.rglob("*") if p.is_file()} - inputs
    assert all(p.relative_to(tmp_path).parts[0] in ("results", "logs", ".snakemake") for p in made)


def test_unreadable_slides_fail_alone_and_are_listed(tmp_path):
    """A missing file and a Visium folder whose matrix is gzipped do not stop the DAG from being
    built: with --keep-going their qc jobs fail with one line each (listed as FAILED at the
    end) and the good slide finishes."""
    write(tiny_slide(), tmp_path / "good.h5ad")
    folder = write_visium(tmp_path / "outs", tiny_slide())
    matrix = folder / "filtered_feature_bc_matrix.h5"
    matrix.rename(matrix.with_suffix(".h5.gz"))
    workdir(tmp_path, {"good": ("good.h5ad", 2, "domain"), "gone": ("nope.h5ad", 2, "domain")}, epochs=2)
    with open(tmp_path / "samples.tsv", "a") as fh:
        fh.write("gz\touts\tvisium\t2\t\n")
    plan = snakemake(tmp_path, "-n", timeout=300)          # the plan says so before any job
    assert plan.returncode == 0
    relative = "file not found (a relative path is read from the folder the workflow runs in, not the sheet's: "
    assert (f"WARNING sample 'gone', file 'nope.h5ad': {relative}{os.path.realpath(tmp_path)}/nope.h5ad); its jobs "
            "will fail (the other slides run with --keep-going). Fix: check the path in the sample sheet") in plan.stderr
    assert ("WARNING sample 'gz', file 'outs': 'filtered_feature_bc_matrix.h5' not found in the folder; it holds "
            "'filtered_feature_bc_matrix.h5.gz', the matrix gzipped") in plan.stderr
    assert "WARNING sample 'good'" not in plan.stderr
    run = snakemake(tmp_path, "--cores", "2", "--keep-going", timeout=600)
    console = run.stdout + run.stderr
    assert run.returncode != 0 and "MissingInputException" not in console
    assert console.count("WARNING sample 'gone'") == 1           # said once, by the main process
    assert (tmp_path / "results/good/graphst/seed0/metrics.tsv").is_file(), console[-3000:]
    assert f"FAILED logs/qc/gone.log: sample 'gone', file 'nope.h5ad': {relative}" in console
    assert "nope.h5ad). Fix: check the path" in console
    assert ("FAILED logs/qc/gz.log: sample 'gz', file 'outs': 'filtered_feature_bc_matrix.h5' not found in the folder; "
            "it holds 'filtered_feature_bc_matrix.h5.gz', the matrix gzipped. Fix: unpack it as "
            "filtered_feature_bc_matrix.h5: gunzip -c ") in console
    assert not (tmp_path / "results/table.tsv").exists()


def test_an_edited_positions_file_reruns_the_slide(tmp_path):
    """Every file the Visium reader opens is an input of the slide's qc job and in its
    input_sha256: editing the positions file reruns qc and changes the digest."""
    import json

    write_visium(tmp_path / "outs", tiny_slide())
    workdir(tmp_path, {})
    (tmp_path / "samples.tsv").write_text("sample\tpath\tformat\tn_clusters\ttruth\nv\touts\tvisium\t2\t\n")
    target = "results/v/qc.json"
    first = snakemake(tmp_path, "--cores", "1", target, timeout=300)
    assert first.returncode == 0, (first.stdout + first.stderr)[-2000:]
    digest = json.loads((tmp_path / target).read_text())["input_sha256"]
    positions = tmp_path / "outs/spatial/tissue_positions.csv"
    positions.write_text(positions.read_text().replace(",1,0,0,", ",1,0,0,1", 1))
    again = snakemake(tmp_path, "--cores", "1", target, "--rerun-triggers", "mtime", timeout=300)
    assert again.returncode == 0 and "rule qc:" in again.stdout + again.stderr
    assert json.loads((tmp_path / target).read_text())["input_sha256"] != digest


def test_cuda_without_a_gpu_is_a_named_error(monkeypatch):
    import torch

    from stcore.train import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match=r"train\.device is cuda but torch sees no GPU on this machine\. Fix: set "
                                         r"train\.device to auto or cpu \(in a notebook: stcore\.tl\.domains\(\.\.\., "
                                         r"train=\{'device': 'cpu'\}\)\)"):
        resolve_device("cuda")


# --- the mitochondrial filter on gene names without MT- (Ensembl ids), and missing truth labels -----

def _with_mito(var_names_of):
    """tiny_slide with 4 mitochondrial genes holding 40% of the counts of the first 16 spots and 5%
    of the others; ``var_names_of(symbols)`` gives the names stored."""
    import anndata as ad

    a = tiny_slide()
    tot = np.asarray(a.X.sum(axis=1)).ravel()
    share = np.where(np.arange(a.n_obs) < 16, 0.40, 0.05)
    mt = np.repeat(np.round(tot * share / (1 - share) / 4)[:, None], 4, axis=1)
    symbols = [*a.var_names, "MT-ND1", "MT-CO1", "MT-CYB", "MT-ATP6"]
    b = ad.AnnData(sp.csr_matrix(sp.hstack([a.X, sp.csr_matrix(mt)])), obs=a.obs,
                   var=pd.DataFrame({"gene_symbols": symbols}, index=var_names_of(symbols)))
    b.obsm["spatial"] = a.obsm["spatial"]
    return b


def _ensembl(symbols):
    return [f"ENSG{i:011d}" for i in range(len(symbols))]


def test_mito_filter_removes_the_spots_it_should_and_is_off_by_default(tmp_path):
    path = write(_with_mito(list), tmp_path / "symbols.h5ad")
    kept, report = prepare_slide(str(path), "h5ad", QCParams(max_mito_pct=20), n_clusters=2)
    assert report["mito_genes"] == 4 and kept.n_obs == 48
    path = write(_with_mito(_ensembl), tmp_path / "ensembl.h5ad")
    kept, report = prepare_slide(str(path), "h5ad", QCParams(), n_clusters=2)   # max_mito_pct 100: off
    assert report["mito_genes"] == 0 and kept.n_obs == 64


@pytest.mark.parametrize("genome", ["GRCh38_", "mm10___", "hg19_"])
def test_mito_genes_named_with_a_multi_genome_references_prefix_are_found(genome, tmp_path):
    """Cell Ranger's references of two genomes put the genome in front of each gene ('GRCh38_MT-CO1',
    'mm10___mt-Co1', the older 'hg19_MT-CO1'): qc.max_mito_pct=20 was refused as if the names were not
    symbols ('no gene name starts with MT-/mt- ... Fix: store gene symbols in var_names'); the
    mitochondrial genes are found behind the prefix and the 16 spots at 40% are removed."""
    path = write(_with_mito(lambda symbols: [genome + n for n in symbols]), tmp_path / "barnyard.h5ad")
    kept, report = prepare_slide(str(path), "h5ad", QCParams(max_mito_pct=20), n_clusters=2)
    assert report["mito_genes"] == 4 and kept.n_obs == 48


def test_mito_filter_on_ensembl_ids_is_refused_naming_sample_file_and_symbol_column(tmp_path):
    """Before: qc.max_mito_pct=20 on Ensembl ids kept all 64 spots (16 at 40% mito) without a word.
    Through the qc job's run_step, the line names the sample and the file, and var['gene_symbols']."""
    from types import SimpleNamespace

    from stcore.workflow import run_step

    path = write(_with_mito(_ensembl), tmp_path / "ensembl.h5ad")
    log = tmp_path / "qc.log"
    sm = SimpleNamespace(log=[str(log)], wildcards=SimpleNamespace(sample="s1"))
    with pytest.raises(SystemExit) as exit_:
        run_step(sm, lambda _: prepare_slide(str(path), "h5ad", QCParams(max_mito_pct=20), n_clusters=2))
    logging.getLogger().handlers.clear()
    assert exit_.value.code == 1
    lines = log.read_text().strip().splitlines()
    assert len(lines) == 1, lines
    assert re.search(rf"ERROR stcore: sample 's1', file '{re.escape(str(path))}': qc\.max_mito_pct=20 .*no gene "
                     r"name starts with MT-/mt- \(the names look like Ensembl ids.*Fix: store gene symbols in "
                     r"var_names \(var\['gene_symbols'\] holds them\), or set qc\.max_mito_pct: 100", lines[0]), lines


def test_an_annotation_in_another_order_than_the_spots_is_warned_of(tmp_path, caplog):
    """Labels assigned from a table not reindexed to obs_names (adata.obs['domain'] = table['layer'].values): each
    spot holds another spot's label, and every score compared the domains with them without a word (on DLPFC 151673
    the annotation's largest Moran's I is 0.952, in a random order 0.017).  The qc job's log says so; the annotation
    in the spots' order passes without it."""
    adata = tiny_slide(n_side=16, domains=3)
    in_order = write(adata, tmp_path / "in_order.h5ad")
    adata.obs["domain"] = np.random.default_rng(0).permutation(adata.obs["domain"].to_numpy())
    shuffled = write(adata, tmp_path / "shuffled.h5ad")
    with caplog.at_level(logging.WARNING):
        prepare_slide(str(shuffled), "h5ad", QCParams(), truth="domain", n_clusters=3)
    said = [r.getMessage() for r in caplog.records if "spatial pattern" in r.getMessage()]
    assert len(said) == 1 and re.fullmatch(
        rf"{re.escape(str(shuffled))}: truth column 'domain' shows no spatial pattern: the largest Moran's I of its "
        r"labels over the spatial graph is -?0\.\d+ \(an annotation's: 0\.47-1\.03 on the six shared slides; labels in a "
        r"random order on this graph: below 0\.\d+ at 256 spots\); the labels or the coordinates may be in another "
        r"order than the spots .*Fix: assign them by spot id, e\.g\. adata\.obs\['domain'\] = "
        r"labels\.reindex\(adata\.obs_names\), or adata\.obsm\['spatial'\] = positions\.loc.*",
        said[0]), said
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        prepare_slide(str(in_order), "h5ad", QCParams(), truth="domain", n_clusters=3)
    assert not [r for r in caplog.records if "spatial pattern" in r.getMessage()]


def test_qc_and_evaluate_share_one_definition_of_a_missing_label(tmp_path):
    """A truth column qc accepts has a labelled spot for the scores, and one it refuses has none:
    before, 'NaN' in every spot passed qc and every score came back NaN."""
    from pathlib import Path

    import stcore.qc
    from stcore.evaluate import MISSING_LABELS, domain_metrics, is_missing_label

    assert is_missing_label(pd.Series(["NaN", " na ", "None", "", " ", None, np.nan, "Layer1", "nan1"])).tolist() \
        == [True] * 7 + [False] * 2
    for spellings in (["NaN"], ["nan", " NA"], ["none", "NONE "], [np.nan]):
        adata = tiny_slide()
        adata.obs["domain"] = (spellings * 64)[:64]
        assert domain_metrics(adata.obs["domain"].to_numpy(), np.zeros(64, int))["n_labelled"] == 0
        path = write(adata, tmp_path / "slide.h5ad")
        with pytest.raises(InputError, match=r"truth column 'domain' has no labels"):
            prepare_slide(str(path), "h5ad", QCParams(), truth="domain", n_clusters=2)
    source = Path(stcore.qc.__file__).read_text()
    assert not any(f'"{s.lower()}"' in source or f'"{s}"' in source for s in MISSING_LABELS if s), \
        "stcore.qc spells missing labels itself; it should use stcore.evaluate.is_missing_label"


def test_rounded_normalised_values_are_taken_as_normalized(tmp_path):
    """Normalised values rounded to whole numbers (normalize_total, then np.rint: every spot's total
    one total within what the rounding leaves) are refused as counts, and taken with values
    normalized; before, they passed as counts and were refused as normalized ('raw counts rather
    than normalised values').  Raw counts, counts downsampled to one depth and the real slides
    pass as counts."""
    from stcore.validate import check_values_match

    adata = tiny_slide(n_side=12)
    x = adata.X.toarray()
    for target in (1e4, 1e6):
        adata.X = sp.csr_matrix(np.rint(x / x.sum(1, keepdims=True) * target))
        path = write(adata, tmp_path / "rounded.h5ad")
        with pytest.raises(InputError, match=r"normalised values rounded to whole numbers"):
            prepare_slide(str(path), "h5ad", QCParams(), n_clusters=2)
        kept, _ = prepare_slide(str(path), "h5ad", QCParams(), n_clusters=2, values="normalized", hvg_flavor="seurat")
        assert kept.n_obs == 144
    for seed in range(20):                      # raw counts, however few spots and genes
        for n_side in (4, 8):
            check_values_match(tiny_slide(n_side=n_side, seed=seed).X, "counts", whole=True)
    rng = np.random.default_rng(1)              # raw counts of one depth in every spot (a simulation): one total too
    for genes, mean in ((300, 10.0), (200, 30.0), (500, 3.0)):
        check_values_match(sp.csr_matrix(rng.poisson(mean, (100, genes)).astype(np.float32)), "counts", whole=True)
    rng = np.random.default_rng(0)              # downsampled to 300 counts a spot (fewer where a spot has fewer)
    down = x.astype(int)
    for i in np.flatnonzero(down.sum(1) > 300):
        down[i] = np.bincount(rng.choice(np.repeat(np.arange(x.shape[1]), down[i]), 300, replace=False),
                              minlength=x.shape[1])
    check_values_match(sp.csr_matrix(down.astype(np.float32)), "counts", whole=True)


def test_min_counts_filters_counts_only_and_mito_share_is_the_counts_share(tmp_path, caplog):
    """qc.min_counts is a total of raw counts: on a slide of log-normalised (or normalised) values it
    compared the sums of their logs (or their one total) and removed other spots than the counts
    would; it is now not applied there, with a warning naming the fix.  qc.max_mito_pct keeps the
    spots the counts keep: the share of log-normalised values is taken of their expm1."""
    adata = _with_mito(list)
    x = adata.X.toarray()
    totals = x.sum(1, keepdims=True)
    floor = float(np.percentile(totals, 20))
    counts, _ = prepare_slide(str(write(adata, tmp_path / "counts.h5ad")), "h5ad", QCParams(min_counts=floor),
                              n_clusters=2)
    assert 0 < counts.n_obs < 64
    for values, stored in (("log_normalized", np.log1p(x / totals * 1e4)), ("normalized", x / totals * 1e4)):
        other = adata.copy()
        other.X = sp.csr_matrix(stored)
        path = write(other, tmp_path / f"{values}.h5ad")
        floor_of_values = float(np.percentile(np.asarray(other.X.sum(1)).ravel(), 20)) + 1e-3
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="stcore.qc"):
            kept, report = prepare_slide(str(path), "h5ad", QCParams(min_counts=floor_of_values), n_clusters=2,
                                         values=values, hvg_flavor="seurat")
        assert kept.n_obs == 64 and report["min_counts_applied"] is False
        assert any(re.search(rf"^{re.escape(str(path))}: qc\.min_counts=\S+ is not applied: it filters spots by their "
                             rf"total raw counts, but values is {values}, .*Fix: give the raw counts \(values counts\) "
                             r"to filter by counts, or set qc\.min_counts: 0$", r.getMessage()) for r in caplog.records)
        mito, _ = prepare_slide(str(path), "h5ad", QCParams(max_mito_pct=20), n_clusters=2, values=values,
                                hvg_flavor="seurat")
        assert mito.n_obs == 48


_HIDE_STAGATE = """import importlib.util
_real = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a, **k: None if name == "STAGATE_pyG" else _real(name, *a, **k)
"""


def test_a_missing_extra_is_named_at_parse_time_unless_the_jobs_have_their_own_env(tmp_path, monkeypatch):
    """A peer method whose package is not installed was named only by its train job, after qc, hvg
    and graph ran; the dry run names it with the install command, as a warning: the run goes on, and
    only that method's jobs fail.  Under --sdm conda the package is in the train job's own
    environment (envs/peers.yaml), so the Snakefile's environment is not asked."""
    (tmp_path / "hide").mkdir()
    (tmp_path / "hide" / "sitecustomize.py").write_text(_HIDE_STAGATE)        # STAGATE_pyG not installed
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(tmp_path / "hide"), os.environ.get("PYTHONPATH"))
                                                     if p))
    work = tmp_path / "w"
    work.mkdir()
    run = _parse_only(work, "s1\tx.h5ad\th5ad\t2\t", "methods: {st: {model: stagate}}\n")
    text = run.stdout + run.stderr
    assert run.returncode == 0, text[-2000:]
    assert ("warning: method 'st' (model stagate) needs the Python package 'STAGATE_pyG', which is not installed, so "
            "its train jobs will fail (the other methods run). Fix: pip install -e '.[peers]', or leave the method "
            "out of the config's methods") in text, text[-2000:]
    assert "Traceback" not in text
    conda = snakemake(work, "--dry-run", "--cores", "1", "--sdm", "conda", timeout=120)
    text = conda.stdout + conda.stderr
    assert "Building DAG of jobs" in text and "needs the Python package" not in text, text[-2000:]

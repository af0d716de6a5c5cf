"""The notebook API's guards (stcore.validate): stcore.tl.domains refuses what the workflow
refuses, with the same message, before any work; and it never writes over a column it did not
write."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import stcore
from slides import (by_size_factors, duplicate_spot, no_coordinates, set_coordinates, set_x, tiny_slide,
                    with_pseudocount, write)
from stcore.errors import InputError
from stcore.export import domains_adata
from stcore.graph import spatial_adjacency
from stcore.qc import QCParams, prepare_slide
from stcore.validate import CONFIG_SCHEMA, check_settings

REPO = Path(__file__).resolve().parents[1]
FAST = {"train": {"epochs": 2}, "cluster": {"n_init": 1}, "n_top_genes": 30}


@pytest.fixture
def no_work(monkeypatch):
    """tl.domains must refuse before it selects genes or trains: both fail the test if reached."""
    def reached(*args, **kwargs):
        raise AssertionError("the check came after the work had started")

    monkeypatch.setattr("stcore.hvg.run_hvg", reached)
    monkeypatch.setattr("stcore.methods.fit", reached)


def _slide() -> ad.AnnData:
    """A tiny valid slide without the simulation's truth column (so obs['domain'] is free)."""
    adata = tiny_slide()
    del adata.obs["domain"]
    return adata


# --- the same bad slide through the workflow's qc job and through tl.domains -------------------

def _tab_in_spot_id(a):
    a.obs_names = ["spot\t0", *a.obs_names[1:]]


def _coordinates_as_x_spatial(a):
    """The pixel coordinates under obsm['X_spatial'] (as some converters store them), the array's
    grid indices in obs beside them."""
    a.obsm["X_spatial"] = a.obsm.pop("spatial")
    a.obs["array_row"], a.obs["array_col"] = np.arange(a.n_obs) // 8, np.arange(a.n_obs) % 8


# id -> (change of a valid slide, n_clusters, the message's problem (regex)[, keywords of both calls])
SAME_MESSAGE = {
    "log_normalised_counts": (lambda a: setattr(a, "X", sp.csr_matrix(np.log1p(a.X.toarray()))), 2,
                              r"the count matrix holds non-integer values; raw counts are needed"),
    "non_integer_counts": (set_x(lambda x: x.__setitem__((3, 4), 0.5)), 2, r"non-integer values"),
    "negative_counts": (set_x(lambda x: x.__setitem__((3, 4), -2)), 2, r"negative values; raw counts"),
    "counts_with_pseudocount": (set_x(with_pseudocount), 2, r"^the count matrix holds no zero: every value is 1 or more"),
    "nan_counts": (set_x(lambda x: x.__setitem__((3, 4), np.nan)), 2, r"NaN or infinite values"),
    "counts_rescaled_and_rounded": (set_x(lambda x: (x.__setitem__(np.random.default_rng(0).random(x.shape) < 0.5, 0),
                                                     x.__setitem__(slice(None), np.rint(x * 1.5)))), 2,
                                    r"^the count matrix holds whole numbers and zeros, but no value is 1 \(the "
                                    r"smallest is 2\)"),
    "no_coordinates": (no_coordinates, 2, r"no spot coordinates \(obsm\['spatial'\] is missing\)"),
    "coordinates_under_another_key": (_coordinates_as_x_spatial, 2,
                                      r"^no spot coordinates \(obsm\['spatial'\] is missing\) \(obsm holds \['X_spatial'\]\); "
                                      r"they are under another key: obsm\['X_spatial'\] \(2 numbers per spot\)$"),
    "coordinates_nan": (set_coordinates(lambda xy: np.where(np.arange(len(xy))[:, None] < 3, np.nan, xy)), 2,
                        r"^3 spots have NaN or infinite coordinates \(obsm\['spatial'\]\)$"),
    "coordinates_1d": (set_coordinates(lambda xy: xy[:, :1]), 2, r"has shape \(64, 1\), expected n_spots x 2"),
    "coordinates_3d": (set_coordinates(lambda xy: np.column_stack([xy, np.arange(len(xy))])), 2,
                       r"obsm\['spatial'\] has 3 columns .*which two are the plane's x and y is not known"),
    "coordinates_one_point": (set_coordinates(lambda xy: np.ones_like(xy)), 2, r"all spots sit at one point"),
    "several_slides": (lambda a: a.obs.__setitem__("library_id", ["A1"] * 32 + ["B1"] * 32), 2,
                       r"^the spots come from 2 slides \(obs\['library_id'\]: 'A1', 'B1'\); one spatial graph"),
    "spots_outside_tissue": (lambda a: a.obs.__setitem__("in_tissue", [0] * 5 + [1] * 59), 2,
                             r"^5 of 64 spots are outside the tissue \(obs\['in_tissue'\] is 0, as in a raw matrix\)"),
    "duplicate_spot_ids": (duplicate_spot, 2, r"^1 duplicate spot ids \(first: 'spot0004'\)$"),
    "spot_id_with_tab": (_tab_in_spot_id, 2, r"spot ids are empty or hold a tab or line break"),
    "n_clusters_below_2": (lambda a: None, 1, r"^n_clusters=1; at least 2 domains are needed$"),
    "n_clusters_not_whole": (lambda a: None, 2.5, r"^n_clusters=2\.5 is not a whole number of domains$"),
    "normalized_negative": (set_x(lambda x: x.__setitem__((3, 4), -0.5)), 2,
                            r"^X \(values 'normalized'\) holds negative values \(scaled or centred values\?\)$",
                            {"values": "normalized"}),
}


@pytest.mark.parametrize("case", sorted(SAME_MESSAGE))
def test_the_workflow_and_the_api_give_the_same_message(case, tmp_path, no_work):
    """The qc job's check path (stcore.qc.prepare_slide on the file) and tl.domains (on the
    AnnData) refuse the same slide with the same problem and fix; the workflow also names the file."""
    change, n_clusters, problem, *kwargs = SAME_MESSAGE[case]
    kwargs = kwargs[0] if kwargs else {}            # the sample sheet's values column: values= in the API
    adata = _slide()
    change(adata)
    path = write(adata, tmp_path / "slide.h5ad")
    with pytest.raises(InputError) as workflow:
        prepare_slide(str(path), "h5ad", QCParams(), n_clusters=n_clusters, **kwargs)
    with pytest.raises(InputError) as api:
        stcore.tl.domains(ad.read_h5ad(path), n_clusters=n_clusters, **FAST, **kwargs)
    assert re.search(problem, api.value.problem), api.value
    assert (api.value.problem, api.value.fix) == (workflow.value.problem, workflow.value.fix)
    assert workflow.value.path == str(path) and f"file '{path}'" in str(workflow.value)
    assert api.value.fix and str(api.value).endswith(f". Fix: {api.value.fix}")


def test_the_hvg_job_and_the_api_refuse_an_unknown_values_kind(no_work):
    with pytest.raises(InputError) as hvg:
        stcore.hvg.HVGParams(values="tpm")
    with pytest.raises(InputError) as api:
        stcore.tl.domains(_slide(), n_clusters=2, values="tpm", **FAST)
    assert str(api.value) == str(hvg.value) == "values 'tpm' is not known. Fix: use one of " \
                                               "['counts', 'normalized', 'log_normalized']"


# --- values ------------------------------------------------------------------------------------

def test_log_normalised_values_given_as_counts_are_refused_and_taken_when_named(no_work, monkeypatch):
    """Log-normalised X with values='counts' (the default) was normalised and logged a second time;
    now it is the workflow's error, and values='log_normalized' takes it as it is."""
    adata = _normalised(_slide(), log=True)
    with pytest.raises(InputError, match=r"non-integer values; raw counts are needed\. Fix: .*values"):
        stcore.tl.domains(adata, n_clusters=2, **FAST)
    monkeypatch.undo()
    stcore.tl.domains(adata, n_clusters=2, values="log_normalized", **FAST)
    assert adata.uns["stcore"]["values"] == "log_normalized" and adata.obs["domain"].nunique() <= 2
    # the genes were selected with flavour seurat (seurat_v3 models raw counts): so recorded, not the default asked
    assert adata.uns["stcore"]["hvg"] == {"n_top_genes": 30, "flavor": "seurat"}


def test_counts_with_rounding_error_are_named_as_counts(no_work):
    """Counts brought back by np.expm1 of a float32 log1p (each within 1e-4 of a whole number) were told
    to be log_normalized or normalized, and both were then taken: raw counts as log values, or never
    normalised per spot.  Each is now named as counts with rounding error, with np.rint as the fix;
    and values far above any log1p (276 as log_normalized) are refused."""
    back = _slide()
    back.X = sp.csr_matrix(back.X, dtype=np.float32)
    back.X.data = np.expm1(np.log1p(back.X.data))
    assert not np.array_equal(back.X.data, np.rint(back.X.data))
    with pytest.raises(InputError, match=r"^the count matrix holds whole numbers up to \d+ stored with rounding error "
                                         r"\(each within [\d.e-]+ of a whole number.*Fix: round them to whole numbers "
                                         r"before writing the file \(adata\.X\.data = np\.rint\(adata\.X\.data\)\)"):
        stcore.tl.domains(back, n_clusters=2, **FAST)
    for values in ("log_normalized", "normalized"):
        with pytest.raises(InputError, match=r"X holds whole numbers up to \d+ \(each within [\d.e-]+ of one: float "
                                             r"rounding\), raw counts rather than .*Fix: set values to counts .*after "
                                             r"rounding them"):
            stcore.tl.domains(back, n_clusters=2, values=values, **FAST)
    scaled = _slide()
    scaled.X = sp.csr_matrix(scaled.X * 1.37)            # not counts, not log values: up to tens
    scaled.X.data[0] = 276.5
    with pytest.raises(InputError, match=r"X holds values up to 276\.5, but values is log_normalized: log1p of "
                                         r"normalised values stays below 50"):
        stcore.tl.domains(scaled, n_clusters=2, values="log_normalized", **FAST)


def _normalised(adata: ad.AnnData, *, log: bool) -> ad.AnnData:
    """X as scanpy's normalize_total (and log1p) leave it: every spot sums to 10,000 (before the log)."""
    x = adata.X.toarray()
    x = x / x.sum(axis=1, keepdims=True) * 1e4
    adata.X = sp.csr_matrix(np.log1p(x) if log else x)
    return adata


def test_logged_values_of_a_gene_subset_are_known_by_scanpys_mark(no_work, tmp_path):
    """scanpy's order: normalize_total, log1p (which sets uns['log1p']), then
    highly_variable_genes(subset=True), whose spots' totals are one no more: given as values='normalized'
    (or as counts with hvg_flavor='seurat') they were logged a second time without a word, and the run
    recorded values it did not hold (DLPFC 151673 so, 2,000 genes, graphst at 200 epochs, seed 0: other
    domains, ARI 0.292 logged twice where log_normalized gives 0.259).  The mark tells them now, in
    tl.domains and the qc job; log_normalized, and whole numbers beside the mark, are taken as before."""
    import scanpy as sc

    logged = _slide()
    logged.X = logged.X.astype(np.float32)
    sc.pp.normalize_total(logged, target_sum=1e4)
    sc.pp.log1p(logged)
    logged = logged[:, 5:].copy()                       # a gene subset: its spots' totals differ
    assert "log1p" in logged.uns
    said = (r"X holds logged values: scanpy's log1p marked the slide \(uns\['log1p'\] is set\) and its values are "
            r"not whole numbers, up to \d+\.\d+, but values is {}: they would be logged again\. Fix: set values to "
            r"log_normalized \(the sample sheet's values column; in stcore\.tl\.domains values='log_normalized'\); "
            r"if X was not logged since, del adata\.uns\['log1p'\]$")
    for kw in ({"values": "normalized"}, {"values": "counts", "hvg_flavor": "seurat"}):
        with pytest.raises(InputError, match="^" + said.format(kw["values"])):
            stcore.tl.domains(logged, n_clusters=2, **kw, **FAST)
        annotated = logged.copy()
        annotated.obs["domain"] = "a"
        with pytest.raises(InputError, match=r"s\.h5ad': " + said.format(kw["values"])):
            prepare_slide(str(write(annotated, tmp_path / "s.h5ad")), "h5ad", QCParams(), values=kw["values"],
                          hvg_flavor=kw.get("hvg_flavor", "seurat_v3"))
    prepare_slide(str(write(annotated, tmp_path / "s.h5ad")), "h5ad", QCParams(), values="log_normalized")
    counts = _slide()
    counts.uns["log1p"] = {"base": None}                 # a mark left on raw counts: they are whole numbers
    prepare_slide(str(write(counts, tmp_path / "c.h5ad")), "h5ad", QCParams())


def test_normalised_values_are_never_transformed_twice(no_work, tmp_path):
    """The non-integer refusal's other ways through (hvg_flavor='seurat' with values='counts', or
    values='normalized') used to normalise and log log-normalised values again; each kind is now
    known by its spots' totals, in tl.domains and in the workflow's qc job alike, and raw counts
    said to be log-normalised are refused too."""
    logged = _normalised(_slide(), log=True)
    said = r"X holds log-normalised values \(every spot's expm1 sums to one total.*\), but values is {}: they would " \
           r"be normalised and logged again\. Fix: set values to log_normalized"
    with pytest.raises(InputError, match=said.format("counts")):
        stcore.tl.domains(logged, n_clusters=2, hvg_flavor="seurat", **FAST)
    with pytest.raises(InputError, match=said.format("normalized")):
        stcore.tl.domains(logged, n_clusters=2, values="normalized", **FAST)
    with pytest.raises(InputError, match=r"X holds normalised values \(every spot sums to one total.*values is counts.*"
                                         r"Fix: set values to normalized"):
        stcore.tl.domains(_normalised(_slide(), log=False), n_clusters=2, hvg_flavor="seurat", **FAST)
    counts = _slide()
    counts.X = counts.X * 10                            # whole numbers above 30
    with pytest.raises(InputError, match=r"X holds whole numbers up to \d+, raw counts rather than log-normalised "
                                         r"values, but values is log_normalized\. Fix: set values to counts"):
        stcore.tl.domains(counts, n_clusters=2, values="log_normalized", **FAST)
    counts = _slide()                                   # raw counts said to be normalised
    with pytest.raises(InputError, match=r"X holds whole numbers up to \d+, raw counts rather than normalised "
                                         r"values, but values is normalized\. Fix: set values to counts"):
        stcore.tl.domains(counts, n_clusters=2, values="normalized", **FAST)
    with pytest.raises(InputError, match=r"raw counts rather than log-normalised values"):
        stcore.tl.domains(counts, n_clusters=2, values="log_normalized", **FAST)
    logged_counts = _slide()                            # log1p of raw counts, no normalisation per spot
    logged_counts.X = sp.csr_matrix(np.log1p(logged_counts.X.toarray()).astype(np.float32))
    with pytest.raises(InputError, match=r"X holds the log1p of whole numbers.*values is log_normalized\. Fix: store "
                                         r"the raw counts in X"):
        stcore.tl.domains(logged_counts, n_clusters=2, values="log_normalized", **FAST)
    path = write(_normalised(tiny_slide(), log=True), tmp_path / "logged.h5ad")
    with pytest.raises(InputError, match=r"logged\.h5ad': X holds log-normalised values.*values is normalized"):
        prepare_slide(str(path), "h5ad", QCParams(), truth="domain", n_clusters=2, values="normalized")
    prepare_slide(str(path), "h5ad", QCParams(), truth="domain", n_clusters=2, values="log_normalized")


def _size_factor_normalised(adata: ad.AnnData, *, log=None) -> ad.AnnData:
    """X as scran's and scater's logNormCounts leave it (:func:`slides.by_size_factors`)."""
    set_x(by_size_factors(log))(adata)
    return adata


def test_values_normalised_by_size_factors_are_read_as_what_they_are(no_work, tmp_path):
    """Values normalised by size factors (scran/scater's logNormCounts, DESeq2's factors, scanpy's
    normalize_total with exclude_highly_expressed) sum to no one total, so the totals could not tell
    them: log2 values (a SingleCellExperiment's logcounts) given as log_normalized were taken as natural logs,
    1.44 times too large, and natural-log values given as normalized were logged again, without a
    word.  Under the right inverse each spot's values are whole multiples of its smallest."""
    log2 = _size_factor_normalised(_slide(), log="2")
    fix_log2 = r"Fix: store the natural log: adata\.X = adata\.X \* np\.log\(2\)"
    with pytest.raises(InputError, match=r"^X holds log2\(1 \+ x\) values, as scran's and scater's logNormCounts "
                                         r"leave them .*: in \d+% of 64 spots drawn 2\^X - 1 of each spot's values "
                                         r"are whole multiples of its smallest.*, but values is log_normalized, the "
                                         r"natural log \(log1p\) of normalised values: each would be taken as 1\.44 "
                                         r"times its natural log\. " + fix_log2 + r".*keep values log_normalized$"):
        stcore.tl.domains(log2, n_clusters=2, values="log_normalized", **FAST)
    with pytest.raises(InputError, match=r"^X holds log2\(1 \+ x\) values.*but values is normalized: they would be "
                                         r"logged \(log1p\) again\. " + fix_log2 + r".*set values to log_normalized"):
        stcore.tl.domains(log2, n_clusters=2, values="normalized", **FAST)
    logged = _size_factor_normalised(_slide(), log="e")
    said = r"^X holds log-normalised values \(the natural log, log1p\): .*expm1 of each spot's values are whole "
    with pytest.raises(InputError, match=said + r".*but values is normalized: they would be logged \(log1p\) again\. "
                                               r"Fix: set values to log_normalized"):
        stcore.tl.domains(logged, n_clusters=2, values="normalized", **FAST)
    with pytest.raises(InputError, match=said + r".*but values is counts: they would be normalised and logged again"):
        stcore.tl.domains(logged, n_clusters=2, hvg_flavor="seurat", **FAST)
    plain = _size_factor_normalised(_slide())
    plain.X = plain.X / 10                                    # below LOG_NORMALIZED_MAX's 50: not told by its size
    with pytest.raises(InputError, match=r"^X holds normalised values, not logged: .*but values is log_normalized: "
                                         r"they would be taken as already logged\. Fix: set values to normalized"):
        stcore.tl.domains(plain, n_clusters=2, values="log_normalized", **FAST)
    annotated = _size_factor_normalised(tiny_slide(), log="2")
    with pytest.raises(InputError, match=r"s\.h5ad': X holds log2\(1 \+ x\) values"):
        prepare_slide(str(write(annotated, tmp_path / "s.h5ad")), "h5ad", QCParams(), values="log_normalized")
    annotated.X = annotated.X * np.log(2)                     # the fix: the natural log of the same values
    prepare_slide(str(write(annotated, tmp_path / "s.h5ad")), "h5ad", QCParams(), values="log_normalized")
    for log, values in ((None, "normalized"), ("e", "log_normalized")):
        prepare_slide(str(write(_size_factor_normalised(tiny_slide(), log=log), tmp_path / "r.h5ad")), "h5ad",
                      QCParams(), values=values)


def test_raw_counts_kept_beside_a_normalised_x_are_named(no_work):
    """scanpy's tutorials keep the counts in layers['counts'] or in .raw before normalising X: the
    refusal of a non-integer X names where the counts are and how to pass them."""
    adata = _slide()
    adata.layers["counts"] = adata.X.copy()
    logged = _normalised(adata, log=True)
    with pytest.raises(InputError, match=r"^X holds non-integer values, and layers\['counts'\] holds whole numbers: "
                                         r"the raw counts\? Fix: pass layer='counts'; or say what X holds"):
        stcore.tl.domains(logged, n_clusters=2, **FAST)
    adata = _slide()
    adata.raw = adata.copy()
    logged = _normalised(adata, log=True)[:, :30].copy()              # its genes a subset, as after HVG selection
    with pytest.raises(InputError, match=r"adata\.raw\.X holds whole numbers: the raw counts\? Fix: run on the raw "
                                         r"counts of all 40 genes: adata = adata\.raw\.to_adata\(\)"):
        stcore.tl.domains(logged, n_clusters=2, **FAST)


def test_raw_counts_kept_beside_a_scaled_x_are_named(no_work):
    """scanpy's tutorials end with sc.pp.scale: X centred (negative values), the counts in layers['counts'] or
    .raw; the refusal named only 'store raw counts in X', with values='counts' or 'log_normalized' alike."""
    import scanpy as sc

    adata = _slide()
    adata.layers["counts"] = adata.X.copy()
    scaled = _normalised(adata, log=True)
    sc.pp.scale(scaled)
    for values in ("counts", "log_normalized"):
        with pytest.raises(InputError, match=r"^X holds negative values \(scaled or centred, as after sc\.pp\.scale\), "
                                             r"and layers\['counts'\] holds whole numbers: the raw counts\? "
                                             r"Fix: pass layer='counts'"):
            stcore.tl.domains(scaled, n_clusters=2, values=values, **FAST)
    adata = _slide()
    adata.raw = adata.copy()
    scaled = _normalised(adata, log=True)
    sc.pp.scale(scaled)
    with pytest.raises(InputError, match=r"adata\.raw\.X holds whole numbers: the raw counts\? Fix: put them in a "
                                         r"layer and pass it"):
        stcore.tl.domains(scaled, n_clusters=2, **FAST)
    del scaled.raw                                                  # nothing beside it: the message as before
    with pytest.raises(InputError, match=r"^the count matrix holds negative values; raw counts are needed"):
        stcore.tl.domains(scaled, n_clusters=2, **FAST)


def test_log_normalised_values_kept_in_raw_beside_a_scaled_x_are_named(no_work):
    """scanpy's tutorials keep adata.raw = adata after normalize_total and log1p, then subset the genes
    and scale X: the refusal said 'store raw (non-negative integer) counts in X', which such an object
    does not hold; it names adata.raw's log-normalised values and how to run on them."""
    import scanpy as sc

    adata = _normalised(_slide(), log=True)
    adata.raw = adata
    scaled = adata[:, :30].copy()
    sc.pp.scale(scaled)
    with pytest.raises(InputError, match=r"^X holds negative values \(scaled or centred, as after sc\.pp\.scale\), and "
                                         r"adata\.raw\.X holds log-normalised values of 40 genes .*Fix: run on them: "
                                         r"adata = adata\.raw\.to_adata\(\) .*values='log_normalized'"):
        stcore.tl.domains(scaled, n_clusters=2, **FAST)
    with pytest.raises(AssertionError, match="after the work had started"):          # the fix: taken
        stcore.tl.domains(scaled.raw.to_adata(), n_clusters=2, values="log_normalized", **FAST)


def test_the_fix_for_a_layers_values_changes_the_layer(no_work):
    """A SingleCellExperiment converted by zellkonverter keeps scran's log2 logcounts in a layer, passed
    as layer='logcounts' with values='log_normalized': the refusal's fix changed X (adata.X = adata.X *
    np.log(2)), the counts, not the layer read; it now changes the layer."""
    for values in (by_size_factors("2"), lambda x: x.__setitem__(slice(None), np.log2(1 + x / x.sum(1, keepdims=True)
                                                                                     * 1e4))):
        adata = _slide()
        logged = adata.copy()
        set_x(values)(logged)
        adata.layers["logcounts"] = logged.X
        with pytest.raises(InputError, match=r"^layers\['logcounts'\] \(the layer passed, read in place of X\): X holds "
                                             r"log2\(1 \+ x\) values.*Fix: store the natural log: "
                                             r"adata\.layers\['logcounts'\] = adata\.layers\['logcounts'\] \* "
                                             r"np\.log\(2\) "):
            stcore.tl.domains(adata, n_clusters=2, layer="logcounts", values="log_normalized", **FAST)
        adata.layers["logcounts"] = adata.layers["logcounts"] * np.log(2)          # the fix, followed: taken
        with pytest.raises(AssertionError, match="after the work had started"):
            stcore.tl.domains(adata, n_clusters=2, layer="logcounts", values="log_normalized", **FAST)


def test_a_layer_that_holds_no_counts_is_named(no_work):
    """layers['counts'] set after normalize_total and log1p (so it holds the log values) and passed as
    layer='counts': the refusal spoke of X only ('store raw integer counts in X; or say what X
    holds'), the matrix not passed; it names the layer and the fix for it."""
    adata = _normalised(_slide(), log=True)
    adata.layers["counts"] = adata.X.copy()
    with pytest.raises(InputError, match=r"^layers\['counts'\] \(the layer passed, read in place of X\): the count "
                                         r"matrix holds non-integer values; raw counts are needed\. Fix: pass the layer "
                                         r"of raw counts .* or layer=None to read X; or say what the layer holds: "
                                         r"values='log_normalized'"):
        stcore.tl.domains(adata, n_clusters=2, layer="counts", **FAST)
    adata.layers["counts"].data[0] = -1.0
    with pytest.raises(InputError, match=r"^layers\['counts'\] \(the layer passed, read in place of X\): the count "
                                         r"matrix holds negative values"):
        stcore.tl.domains(adata, n_clusters=2, layer="counts", **FAST)
    with pytest.raises(AssertionError, match="after the work had started"):        # the fix: taken
        stcore.tl.domains(adata, n_clusters=2, values="log_normalized", **FAST)


def test_a_layer_that_is_not_there_is_named(no_work):
    with pytest.raises(InputError, match=r"layer 'counts' is not in layers \(layers: \[\]\)"):
        stcore.tl.domains(_slide(), n_clusters=2, layer="counts", **FAST)


def test_the_qc_job_names_raw_counts_kept_beside_x_as_seurats_conversions_leave_them(tmp_path):
    """A Seurat object converted to .h5ad (SeuratDisk, sceasy: X the log-normalised data, .raw the counts), or
    scanpy's layers['counts'] beside a log-normalised or scaled X, given to the workflow: its qc job named
    neither (was: 'the count matrix holds non-integer values ... Fix: store raw integer counts in X; or say
    what X holds ...', where tl.domains named them); now the same refusal as tl.domains', its fix for the
    file.  The fix, followed, passes."""
    import scanpy as sc

    def refused(adata, name, message, **kw):
        with pytest.raises(InputError, match=message):
            prepare_slide(str(write(adata, tmp_path / name)), "h5ad", QCParams(), **kw)

    seurat = tiny_slide()
    seurat.raw = seurat.copy()
    seurat = _normalised(seurat, log=True)
    refused(seurat, "seurat.h5ad", r"seurat\.h5ad': X holds non-integer values, and adata\.raw\.X holds whole numbers: "
                                   r"the raw counts\? Fix: store them in X: adata\.X = adata\.raw\.X and write the "
                                   r"file again \(adata\.write_h5ad\); or say what X holds in the sample sheet's values "
                                   r"column: log_normalized")
    layered = tiny_slide()
    layered.layers["counts"] = layered.X.copy()
    layered = _normalised(layered, log=True)
    refused(layered, "layered.h5ad", r"X holds non-integer values, and layers\['counts'\] holds whole numbers: the "
                                     r"raw counts\? Fix: store them in X: adata\.X = adata\.layers\['counts'\] and")
    sc.pp.scale(layered)
    for values in ("counts", "log_normalized"):
        refused(layered, "scaled.h5ad", r"X holds negative values \(scaled or centred, as after sc\.pp\.scale\), and "
                                        r"layers\['counts'\] holds whole numbers: the raw counts\? Fix: store them in X",
                values=values)
    seurat.X = seurat.raw.X                                          # the fix, followed
    prepare_slide(str(write(seurat, tmp_path / "fixed.h5ad")), "h5ad", QCParams())


def test_nan_filling_whole_genes_or_spots_is_named_with_the_fix(tmp_path, no_work):
    """NaN in every spot of some genes (a table reindexed to genes the slide did not measure), or in every
    gene of some spots (values divided by a spot's total or volume of 0): the refusal said 'the count matrix
    holds NaN or infinite values. Fix: store raw counts in X' and where they were was left to find.  Now
    it names the genes or spots and the line that drops them; the qc job and tl.domains alike, and the fix,
    followed, passes.  NaN scattered otherwise are counted and the first named."""
    def refused(adata, message, **kw):
        with pytest.raises(InputError, match=message):
            prepare_slide(str(write(adata, tmp_path / "s.h5ad")), "h5ad", QCParams(), **kw)
        api = adata.copy()
        del api.obs["domain"]
        with pytest.raises(InputError, match=message.replace("s\\.h5ad': ", "^")):
            stcore.tl.domains(api, n_clusters=2, **kw, **FAST)

    genes = tiny_slide()
    x = genes.X.toarray()
    x[:, [5, 9]] = np.nan
    genes.X = x
    fix = r"\. Fix: drop those genes: adata = adata\[:, np\.isfinite\(np\.asarray\(adata\.X\.sum\(axis=0\)\)\)\.ravel\(\)\]\.copy\(\)$"
    refused(genes, r"s\.h5ad': the count matrix holds NaN or infinite values: 2 of its 40 genes are NaN or infinite in every "
                   r"spot \(first: 'gene005'\): genes the slide did not measure \(a table reindexed to other genes, or "
                   r"joined with another's\?\)" + fix)
    genes = genes[:, np.isfinite(np.asarray(genes.X.sum(axis=0))).ravel()].copy()          # the fix, followed
    prepare_slide(str(write(genes, tmp_path / "fixed.h5ad")), "h5ad", QCParams())
    spots = tiny_slide()
    x = spots.X.toarray()
    x = x / x.sum(axis=1, keepdims=True) * 1e4
    x[[2, 7]] = np.nan                                                                       # a total of 0
    spots.X = sp.csr_matrix(x)
    refused(spots, r"s\.h5ad': X \(values 'normalized'\) holds NaN or infinite values: 2 of its 64 spots are NaN or "
                   r"infinite in every gene \(first: 'spot0002'\): values divided by a spot's total or volume of 0\? "
                   r"Fix: drop those spots: adata = adata\[np\.isfinite\(np\.asarray\(adata\.X\.sum\(axis=1\)\)\)"
                   r"\.ravel\(\)\]\.copy\(\)$", values="normalized")
    spots = spots[np.isfinite(np.asarray(spots.X.sum(axis=1))).ravel()].copy()                # the fix, followed
    prepare_slide(str(write(spots, tmp_path / "fixed.h5ad")), "h5ad", QCParams(), values="normalized")
    one = tiny_slide()
    x = one.X.toarray()
    x[3, 4] = np.inf
    one.X = sp.csr_matrix(x)
    refused(one, r"s\.h5ad': the count matrix holds NaN or infinite values: 1 of them, in 1 spots and 1 genes \(first: "
                 r"spot 'spot0003', gene 'gene004'\)\. Fix: store raw counts in X$")


def test_an_x_of_zeros_is_named_with_the_counts_kept_beside_it(tmp_path, no_work):
    """X all 0, the counts in layers['counts'] (or .raw), as a conversion that fills X with a placeholder
    leaves them: the qc job said 'QC removed every spot (of 64). Fix: lower the qc thresholds in the
    config', and tl.domains '64 of 64 spots hold no counts ... Fix: keep the spots with counts', which
    leaves none.  Now both name the zeros and the layer that holds the counts; without one, the zeros
    alone.  The fix, followed, passes."""
    zeros = tiny_slide()
    zeros.layers["counts"] = zeros.X.copy()
    zeros.X = sp.csr_matrix(zeros.shape, dtype=np.float32)
    path = str(write(zeros, tmp_path / "zeros.h5ad"))
    with pytest.raises(InputError, match=r"zeros\.h5ad': X holds no value other than 0, and layers\['counts'\] holds "
                                         r"whole numbers: the raw counts\? Fix: store them in X: adata\.X = "
                                         r"adata\.layers\['counts'\] and write the file again"):
        prepare_slide(path, "h5ad", QCParams())
    api = zeros.copy()
    del api.obs["domain"]
    with pytest.raises(InputError, match=r"^X holds no value other than 0, and layers\['counts'\] holds whole "
                                         r"numbers: the raw counts\? Fix: pass layer='counts'$"):
        stcore.tl.domains(api, n_clusters=2, **FAST)
    dense = ad.AnnData(np.zeros(zeros.shape, dtype=np.float32), obs=zeros.obs, var=zeros.var,
                       obsm=dict(zeros.obsm))                          # no layer, no .raw
    with pytest.raises(InputError, match=r"the count matrix holds no value other than 0 \(64 spots x 40 genes\): no "
                                         r"spot has any signal\. Fix: store the slide's raw counts in X$"):
        prepare_slide(str(write(dense, tmp_path / "dense.h5ad")), "h5ad", QCParams())
    zeros.X = zeros.layers["counts"]                                  # the fix, followed
    prepare_slide(str(write(zeros, tmp_path / "fixed.h5ad")), "h5ad", QCParams())


# --- ids -----------------------------------------------------------------------------------------

def test_duplicate_gene_ids_are_refused_by_the_api(no_work):
    """The API leaves a user's AnnData as it is, so duplicate gene ids are an error there (the
    workflow's readers make a file's duplicate gene names unique, with a warning)."""
    adata = _slide()
    adata.var_names = ["gene000", *adata.var_names[:-1]]
    with pytest.raises(InputError, match=r"^1 duplicate gene ids \(first: 'gene000'\)\. Fix: .*var_names_make_unique"):
        stcore.tl.domains(adata, n_clusters=2, **FAST)
    assert list(adata.var_names[:2]) == ["gene000", "gene000"]            # left as it was


# --- coordinates -----------------------------------------------------------------------------------

def test_a_named_choice_of_two_coordinate_columns(monkeypatch):
    adata = _slide()
    xy = np.asarray(adata.obsm["spatial"], dtype=float)
    adata.obsm["spatial"] = np.column_stack([np.zeros(len(xy)), xy])          # z, x, y
    with pytest.raises(InputError, match=r"spatial_dims=\(1, 2\)"):              # the two that vary
        stcore.tl.domains(adata, n_clusters=2, **FAST)
    with pytest.raises(InputError, match=r"spatial_dims \[1, 5\]: obsm\['spatial'\] has no such columns"):
        stcore.tl.domains(adata, n_clusters=2, spatial_dims=(1, 5), **FAST)
    seen = []
    knn = spatial_adjacency

    def graph_of(coords, *args, **kwargs):          # the coordinates the spatial graph is built on
        seen.append(coords)
        return knn(coords, *args, **kwargs)

    monkeypatch.setattr("stcore.graph.spatial_adjacency", graph_of)
    stcore.tl.domains(adata, n_clusters=2, spatial_dims=(1, 2), **FAST)
    assert len(seen) == 1 and np.array_equal(seen[0], xy)


def test_spatial_dims_that_name_one_column_twice_or_names_on_an_array_are_refused(no_work):
    """spatial_dims=(0, 0) or ('x', 'x') was taken: x and y one column, every spot on one line and its
    neighbours those of one coordinate (DLPFC 151673 so, without a word); names given for an array's
    columns stopped with ValueError: invalid literal for int() with base 10: 'x'."""
    import pandas as pd

    adata = _slide()
    xy = np.asarray(adata.obsm["spatial"], dtype=float)
    adata.obsm["spatial"] = np.column_stack([xy, np.zeros(len(xy))])           # x, y, z
    for dims in ((0, 0), (2, -1)):
        with pytest.raises(InputError, match=r"^spatial_dims \[.+\] names one column of obsm\['spatial'\] twice, as x "
                                             r"and as y: every spot would lie on one line.*Fix: name the two columns"):
            stcore.tl.domains(adata, n_clusters=2, spatial_dims=dims, **FAST)
    with pytest.raises(InputError, match=r"^spatial_dims \['x', 'y'\] names columns, but obsm\['spatial'\] is an array "
                                         r"without column names \(shape \(64, 3\)\)\. Fix: give the two columns' "
                                         r"positions, e.g\. spatial_dims=\(0, 1\)"):
        stcore.tl.domains(adata, n_clusters=2, spatial_dims=("x", "y"), **FAST)
    with pytest.raises(InputError, match=r"names columns, but obsm\['spatial'\] is an array"):
        stcore.gr.spatial_graph(adata, spatial_dims=("x", "y"))
    adata.obsm["spatial"] = pd.DataFrame(adata.obsm["spatial"], index=adata.obs_names, columns=["x", "y", "z"])
    with pytest.raises(InputError, match=r"^spatial_dims \['x', 'x'\] names one column of obsm\['spatial'\] twice"):
        stcore.tl.domains(adata, n_clusters=2, spatial_dims=("x", "x"), **FAST)
    with pytest.raises(AssertionError, match="after the work had started"):          # x and y: taken
        stcore.tl.domains(adata, n_clusters=2, spatial_dims=("x", "y"), **FAST)


def test_coordinates_on_one_line_are_refused(no_work):
    """obsm['spatial'] of one coordinate given twice (adata.obs[['x', 'x']], array_row twice) or one
    scaled from the other: every spot on one slanted line, and the graph joined spots by that one
    coordinate (DLPFC 151673 at 100 epochs: ARI 0.347 with x twice, 0.127 with array_row twice, 0.380
    with x and y; without a refusal).  A row of spots along an axis, one coordinate constant, is not
    judged."""
    adata = _slide()
    x = np.asarray(adata.obsm["spatial"], dtype=float)[:, 0]
    for second, said in ((x, "they are equal"), (2.5 * x + 10, "one is the other scaled and shifted")):
        adata.obsm["spatial"] = np.column_stack([x, second])
        with pytest.raises(InputError, match=rf"^every spot lies on one line: the two columns of obsm\['spatial'\] vary "
                                             rf"together \({said}: one coordinate given twice\?\).*Fix: store the spots' "
                                             r"x and y in obsm\['spatial'\]"):
            stcore.tl.domains(adata, n_clusters=2, **FAST)
        with pytest.raises(InputError, match=r"^every spot lies on one line"):
            stcore.gr.spatial_graph(adata)
    row = tiny_slide(n_side=8)[:8].copy()                 # one row of spots: y constant
    del row.obs["domain"]
    row.obsm["spatial"] = np.column_stack([np.arange(8) * 100.0, np.zeros(8)])
    stcore.gr.spatial_graph(row, n_neighbors=2)


def test_a_constant_column_of_three_is_not_taken_for_x_or_y(no_work):
    """obsm['spatial'] of z, x, y (z first, as image tools give centroids) with one z for every cell: the refusal
    of three columns said 'e.g. obsm['spatial'][:, :2] when the others are z' and 'spatial_dims=(0, 1)', and
    either was taken: z and x, every spot on one line, the graph joining spots by x alone (on the hex slide,
    64 spots then shared a position, warned of as repeated spots).  The fix names the two columns that vary,
    and spatial_dims naming the constant one while a varying one is left out is refused."""
    adata = _slide()
    xy = np.asarray(adata.obsm["spatial"], dtype=float)
    adata.obsm["spatial"] = np.column_stack([np.zeros(adata.n_obs), xy])
    with pytest.raises(InputError, match=r"obsm\['spatial'\]\[:, 0\] holds one value \(0\) for every spot.*Fix: store "
                                         r"only x and y in obsm\['spatial'\]: adata\.obsm\['spatial'\] = "
                                         r"adata\.obsm\['spatial'\]\[:, \[1, 2\]\], or in stcore\.tl\.domains name "
                                         r"them: spatial_dims=\(1, 2\)"):
        stcore.tl.domains(adata, n_clusters=2, **FAST)
    for dims in ((0, 1), (2, 0)):
        with pytest.raises(InputError, match=re.escape(f"spatial_dims {list(dims)!r}") + r" names obsm\['spatial'\]\[:, 0\], which holds "
                                             r"one value \(0\) for every spot, and leaves out obsm\['spatial'\]\[:, \d\], "
                                             r"which varies: every spot would lie on one line.*Fix: .*spatial_dims=\(1, 2\)"):
            stcore.gr.spatial_graph(adata, spatial_dims=dims)
    adata.obsm["spatial"] = pd.DataFrame({"z": 0.0, "x": xy[:, 0], "y": xy[:, 1]}, index=adata.obs_names)
    with pytest.raises(InputError, match=r"names obsm\['spatial'\]\['z'\], which holds one value \(0\).*Fix: .*"
                                         r"spatial_dims=\('x', 'y'\)"):
        stcore.tl.domains(adata, n_clusters=2, spatial_dims=("z", "x"), **FAST)
    stcore.gr.spatial_graph(adata, spatial_dims=("x", "y"))               # the two that vary: taken


def test_three_named_coordinate_columns_are_refused_with_a_fix_that_runs(no_work):
    """obsm['spatial'] as a data frame of x_centroid, y_centroid, z_centroid (a segmentation's table): the fix
    was 'e.g. obsm['spatial'][:, :2] ... spatial_dims=(0, 1)', and adata.obsm['spatial'][:, :2] on a data frame
    stops with pandas' InvalidIndexError.  The fix names the columns named as x and y, and runs."""
    adata = _slide()
    xy = np.asarray(adata.obsm["spatial"], dtype=float)
    adata.obsm["spatial"] = pd.DataFrame({"x_centroid": xy[:, 0], "y_centroid": xy[:, 1],
                                          "z_centroid": np.random.default_rng(0).uniform(0, 5, adata.n_obs)},
                                         index=adata.obs_names)
    with pytest.raises(InputError) as err:
        stcore.tl.domains(adata, n_clusters=2, **FAST)
    said = str(err.value)
    assert "[:, :2]" not in said
    fix = ("adata.obsm['spatial'] = adata.obsm['spatial'][['x_centroid', 'y_centroid']].to_numpy(float), or in "
           "stcore.tl.domains name them: spatial_dims=('x_centroid', 'y_centroid')")
    assert fix in said, said
    exec(fix.split(", or")[0], {"adata": adata})                         # the fix runs
    assert np.array_equal(adata.obsm["spatial"], xy)


def test_a_stored_graph_of_other_coordinates_is_refused_and_one_of_these_taken(no_work, monkeypatch):
    """gr.spatial_graph keeps the obsm key (and columns) the graph was built from; tl.domains named
    other coordinates refuses it instead of taking another frame's neighbours."""
    adata = _slide()
    xy = np.asarray(adata.obsm["spatial"], dtype=float)
    adata.obsm["spatial_aligned"] = xy[::-1].copy()          # another frame: other spots are neighbours
    stcore.gr.spatial_graph(adata)
    assert adata.uns["spatial_neighbors"]["params"]["spatial_key"] == "spatial"
    with pytest.raises(InputError, match=r"obsp\['spatial_connectivities'\] was built from obsm\['spatial'\], not "
                                         r"from obsm\['spatial_aligned'\].*spatial_graph\(adata, "
                                         r"spatial_key='spatial_aligned'\)"):
        stcore.tl.domains(adata, n_clusters=2, spatial_key="spatial_aligned", **FAST)
    adata.obsm["xyz"] = np.column_stack([xy, np.random.default_rng(0).uniform(0, 5, len(xy))])    # each cell's z
    stcore.gr.spatial_graph(adata, spatial_key="xyz", spatial_dims=(0, 1), key_added="xyz")
    with pytest.raises(InputError, match=r"built from obsm\['xyz'\] \(columns 0, 1\), not from obsm\['xyz'\] "
                                         r"\(columns 1, 2\)"):
        stcore.tl.domains(adata, n_clusters=2, spatial_key="xyz", spatial_dims=(1, 2), graph_key="xyz", **FAST)
    # the graph of the coordinates named (and squidpy's, which records no key) are taken as before
    monkeypatch.undo()
    stcore.gr.spatial_graph(adata, spatial_key="spatial_aligned")
    stcore.tl.domains(adata, n_clusters=2, spatial_key="spatial_aligned", **FAST)
    assert adata.uns["stcore"]["graph"]["built"] is False
    del adata.uns["spatial_neighbors"]["params"]["spatial_key"]
    stcore.tl.domains(adata, n_clusters=2, overwrite=True, **FAST)


def test_dense_panels_without_zeros_are_not_taken_for_a_pseudocount():
    """The pseudocount refusal (no zero, smallest value 1, 1 more common than 2) leaves counts that
    have no zero for being deep: a dense panel of genes seen many times in every spot (hardly a 1),
    dense or sparse; and the tiny simulated slides (3% zeros) as they are."""
    from stcore.validate import check_values_match

    rng = np.random.default_rng(0)
    for mean in (15.0, 40.0, 200.0):
        dense = rng.poisson(mean, (300, 33)).astype(np.float32)
        assert not (dense == 0).any()
        for stored in (dense, sp.csr_matrix(dense)):
            check_values_match(stored, "counts", whole=True)
    for seed in range(10):
        check_values_match(tiny_slide(n_side=8, seed=seed).X, "counts", whole=True)


def test_a_pseudocount_on_counts_with_fewer_zeros_than_ones_is_refused(no_work):
    """Counts with 1 added to every value were refused only where 1 became the most common value
    (raw counts with more zeros than ones); a deep panel's counts (the tiny slide's: 3% zeros, 5%
    ones) with 1 added, 1 less common than 2, were taken as counts: every gene detected in every
    spot.  Their 1s show it: raw counts with as many 1s hold zeros (a gene's 1s over its mean at the
    least); deep panels without a zero, in Poisson or overdispersed counts, pass as before."""
    from stcore.validate import check_values_match

    adata = _slide()
    x = adata.X.toarray()
    assert 0 < (x == 0).mean() < (x == 1).mean()
    adata.X = sp.csr_matrix(x + 1)
    with pytest.raises(InputError, match=r"^the count matrix holds no zero: every value is 1 or more, and \d+ values are "
                                         r"1 \(3\.\d%\), where raw counts with as many 1s hold at least \d+ zeros .*: "
                                         r"counts with 1 added to every value \(a pseudocount\).*Fix: store the raw "
                                         r"counts in X \(if 1 was added: adata\.X\.data -= 1"):
        stcore.tl.domains(adata, n_clusters=2, **FAST)
    rng = np.random.default_rng(0)
    for mean in (12.0, 15.0, 40.0):
        for counts in (rng.poisson(mean, (2000, 40)), rng.negative_binomial(50, 50 / (50 + mean), (2000, 40))):
            counts = counts.astype(np.float32)
            for stored in (counts, sp.csr_matrix(counts)):
                check_values_match(stored, "counts", whole=True)


def test_a_workflow_graph_is_recorded_as_built_from_obsm_spatial(no_work):
    """The workflow's domains.h5ad records the coordinates of its graph (obsm['spatial'], the qc
    job's); tl.domains on it with other coordinates refuses that graph."""
    slide = _slide()
    slide.obsm["other"] = slide.obsm["spatial"][::-1].copy()
    n = slide.n_obs
    out = domains_adata(slide, np.arange(n) % 2, np.zeros((n, 4), np.float32),
                        spatial_adjacency(slide.obsm["spatial"]), method="graphst", info={})
    assert out.uns["spatial_neighbors"]["params"]["spatial_key"] == "spatial"
    with pytest.raises(InputError, match=r"^obsp\['spatial_connectivities'\] was built from obsm\['spatial'\]"):
        stcore.tl.domains(out, n_clusters=3, spatial_key="other", **FAST)


def _workflow_domains_h5ad(qc: ad.AnnData, tmp: Path, *, cluster: dict | None = None,
                           dims: int = 2) -> ad.AnnData:
    """``qc`` (a qc'd slide, or a group's joined slides) through the workflow's graph and export
    steps (their scripts, default graph settings), two domains: its domains.h5ad as read back."""
    from types import SimpleNamespace

    from slides import script

    qc.write_h5ad(tmp / "qc.h5ad")
    run = SimpleNamespace(wildcards=SimpleNamespace(sample="s"), params=SimpleNamespace(
        graph={"mode": "knn", "n_neighbors": 3, "radius": None}), input=SimpleNamespace(h5ad=str(tmp / "qc.h5ad")),
        output=SimpleNamespace(npz=str(tmp / "graph.npz"), params=str(tmp / "graph.json")))
    script("graph").main(run)
    pd.DataFrame({"spot": qc.obs_names, "domain": np.arange(qc.n_obs) % 2}).to_csv(tmp / "labels.tsv", sep="\t",
                                                                                  index=False)
    pd.DataFrame({"sample": ["s"], "ARI": [0.5]}).to_csv(tmp / "metrics.tsv", sep="\t", index=False)
    from stcore.methods import MethodResult

    MethodResult(embedding=np.zeros((qc.n_obs, dims), np.float32), machine={}).save(tmp / "train.npz")
    export = SimpleNamespace(rule="export", input=SimpleNamespace(
        qc=str(tmp / "qc.h5ad"), labels=str(tmp / "labels.tsv"), npz=str(tmp / "train.npz"),
        metrics=str(tmp / "metrics.tsv"), graph=str(tmp / "graph.npz"), graph_params=str(tmp / "graph.json")),
        params=SimpleNamespace(truth="", values="counts", run={"sample": "s", "method": "graphst", "seed": 0},
                               train={"model": "graphst", "settings": {}}, cluster=cluster or {}),
        output=SimpleNamespace(h5ad=str(tmp / "domains.h5ad")))
    script("export").main(export)
    return ad.read_h5ad(tmp / "domains.h5ad")


def test_a_workflow_domains_h5ad_and_one_slide_of_a_groups_go_through_tl_domains_again(tmp_path):
    """The workflow's domains.h5ad records its knn graph as one (mode, n_neighbors), as gr.spatial_graph
    does: tl.domains on it, or on one slide taken out of a group's, takes the graph (it was refused as
    a Delaunay triangulation built before spots were removed), and on it with spots removed still
    refuses it."""
    from stcore.group import join_slides

    out = _workflow_domains_h5ad(_slide(), tmp_path)
    params = out.uns["spatial_neighbors"]["params"]
    assert (params["mode"], params["n_neighbors"], params["spatial_key"]) == ("knn", 3, "spatial")
    stcore.tl.domains(out, n_clusters=2, seed=1, **FAST)
    assert out.uns["stcore"]["seed"] == 1
    (tmp_path / "g").mkdir()
    group = _workflow_domains_h5ad(join_slides({"a": _slide(), "b": tiny_slide(seed=3)}, {"a": "", "b": ""}, "g")[0],
                                   tmp_path / "g")
    one = group[group.obs["slide"] == "b"].copy()
    stcore.tl.domains(one, n_clusters=2, seed=0, **FAST)
    assert one.obs["domain"].notna().all() and one.uns["stcore"]["labelling"]["n_spots"] == 64
    with pytest.raises(InputError, match=r"fewer than the 3 neighbours its knn graph gave each spot"):
        stcore.tl.domains(out[out.obsm["spatial"][:, 0] > 250].copy(), n_clusters=2, overwrite=True, **FAST)


def _two_slides(column: str = "library_id") -> ad.AnnData:
    """Two slides in one object, as ``anndata.concat(..., label=column, uns_merge='unique')`` joins
    scanpy's Visium reads: one coordinate frame, a library each in ``uns['spatial']``."""
    halves = {}
    for name in ("A1", "B1"):
        half = _slide()
        half.uns["spatial"] = {name: {"scalefactors": {"spot_diameter_fullres": 1.0}}}
        halves[name] = half
    return ad.concat(halves, label=column, index_unique="-", uns_merge="unique")


def test_several_slides_in_one_object_are_refused_and_one_taken_out_passes(no_work):
    """The two slides' coordinates overlap, so one graph over them would join their spots: the
    graph builder and tl.domains refuse, naming the column that holds the slides, under scanpy's
    library_id or any column whose values are uns['spatial']'s libraries; one slide taken out
    (every library still in uns) is taken."""
    for column in ("library_id", "batch"):
        both = _two_slides(column)
        assert sorted(both.uns["spatial"]) == ["A1", "B1"]
        fix = rf"Fix: give one slide at a time, e.g\. adata\[adata\.obs\['{column}'\] == 'A1'\]\.copy\(\)"
        with pytest.raises(InputError, match=rf"^the spots come from 2 slides \(obs\['{column}'\]: 'A1', 'B1'\).*{fix}"):
            stcore.gr.spatial_graph(both)
        with pytest.raises(InputError, match=rf"obs\['{column}'\]: 'A1', 'B1'"):
            stcore.tl.domains(both, n_clusters=2, **FAST)
        assert "spatial_connectivities" not in both.obsp
        one = both[both.obs[column] == "B1"].copy()
        stcore.gr.spatial_graph(one)
        assert one.obsp["spatial_connectivities"].shape == (64, 64)
    other = _slide()                    # a column of labels that are not libraries says nothing of slides
    other.uns["spatial"] = {"A1": {}, "B1": {}}
    other.obs["region"] = ["A1"] * 32 + ["C1"] * 32
    stcore.gr.spatial_graph(other)
    assert other.obsp["spatial_connectivities"].shape == (64, 64)


def test_fields_of_view_run_on_the_slides_coordinates(no_work):
    """A CosMx slide as squidpy's read.nanostring returns it (each field of view a library of
    uns['spatial']) runs on the slide's coordinates, spatial_key='spatial_fov' (it was refused as '4
    slides' whatever was passed), and is refused on obsm['spatial'] with or without uns['spatial']."""
    slide = _cosmx_as_squidpy_reads_it()
    bare = slide.copy()
    del bare.uns["spatial"]
    for obj in (slide, bare):
        with pytest.raises(InputError, match=r"^obsm\['spatial'\] lays the 4 fields of view of obs\['fov'\] .* "
                                             r"where obsm\['spatial_fov'\] put them side by side"):
            stcore.tl.domains(obj, n_clusters=2, **FAST)
        with pytest.raises(AssertionError, match="after the work had started"):
            stcore.tl.domains(obj, n_clusters=2, spatial_key="spatial_fov", **FAST)
    stcore.gr.spatial_graph(slide, spatial_key="spatial_fov")


def _joined(shift: tuple[float, float], column: str, values=("A", "B")) -> ad.AnnData:
    """Two slides joined as ``anndata.concat(..., label=column)`` does without ``uns['spatial']``:
    the second's coordinates shifted by ``shift`` (a scanner's own frame for each slide)."""
    first, second = tiny_slide(seed=1), tiny_slide(seed=2)
    for a in (first, second):
        del a.obs["domain"]
    second.obsm["spatial"] = second.obsm["spatial"] + np.asarray(shift)
    return ad.concat({values[0]: first, values[1]: second}, label=column, index_unique="-")


def test_joined_slides_are_refused_by_a_slide_column_when_their_spots_lie_among_each_other(no_work):
    """anndata.concat(label='slide') or AnnData.concatenate ('batch': '0', '1') leave no library in
    uns; a column named as joined slides are, whose groups lie among each other, is refused; the
    same slides side by side, and one slide's halves under such a name, pass."""
    for column, values in (("slide", ("A", "B")), ("batch", ("0", "1")), ("sample_id", ("s1", "s2"))):
        both = _joined((37.0, 21.0), column, values)
        with pytest.raises(InputError, match=rf"^the spots come from 2 slides \(obs\['{column}'\]: '{values[0]}', "
                                             rf"'{values[1]}'\), and they lie among each other: \d+% of the spots "
                                             r"have their nearest neighbour in another slide; one spatial graph"):
            stcore.gr.spatial_graph(both)
        with pytest.raises(InputError, match=rf"obs\['{column}'\]"):
            stcore.tl.domains(both, n_clusters=2, **FAST)
        assert "spatial_connectivities" not in both.obsp
    apart = _joined((5000.0, 0.0), "slide")             # side by side: only a border's spots meet
    stcore.gr.spatial_graph(apart)
    assert apart.obsp["spatial_connectivities"].shape == (128, 128)
    halves = _slide()                                   # one slide's left and right under 'sample'
    halves.obs["sample"] = np.where(halves.obsm["spatial"][:, 0] < 400, "left", "right")
    stcore.gr.spatial_graph(halves)
    assert halves.obsp["spatial_connectivities"].shape == (64, 64)


def test_a_stored_graph_that_joins_no_spots_is_refused(no_work, caplog):
    """squidpy's spatial_neighbors with a radius in other units than the coordinates (50 where the
    spots lie 100 apart) stores a graph without an edge; tl.domains took it and trained with no
    spatial information ('n_edges': 0 in its record), where the workflow's graph step refuses such a
    radius.  Refused, naming the radius and the spacing; a graph that leaves some spots alone is
    warned of, as the workflow's is."""
    import logging

    sq = pytest.importorskip("squidpy")
    adata = _slide()
    sq.gr.spatial_neighbors(adata, coord_type="generic", radius=50.0)
    assert adata.obsp["spatial_connectivities"].nnz == 0
    with pytest.raises(InputError, match=r"^obsp\['spatial_connectivities'\] joins no two spots \(built with radius "
                                         r"50\.0, as its params say\); the median distance to a spot's nearest "
                                         r"neighbour is 100: the model would train with no spatial information\. Fix: "
                                         r"build it again: stcore\.gr\.spatial_graph\(adata\)"):
        stcore.tl.domains(adata, n_clusters=2, **FAST)
    loops = _slide()                                    # set_diag=True: each spot joined to itself only
    sq.gr.spatial_neighbors(loops, coord_type="generic", radius=50.0, set_diag=True)
    with pytest.raises(InputError, match="joins no two spots"):
        stcore.tl.domains(loops, n_clusters=2, **FAST)
    some = _slide()                                     # a few spots alone: warned of, then the work starts
    some.obsm["spatial"][:3] += 10000.0 * np.arange(1, 4)[:, None]
    sq.gr.spatial_neighbors(some, coord_type="generic", radius=120.0)
    caplog.set_level(logging.WARNING, logger="stcore")
    with pytest.raises(AssertionError, match="after the work had started"):
        stcore.tl.domains(some, n_clusters=2, **FAST)
    assert any(re.match(r"obsp\['spatial_connectivities'\] leaves 3 of 64 spots without a neighbour \(built with "
                        r"radius 120\.0", r.getMessage()) for r in caplog.records), caplog.text


def test_a_stored_graph_that_joins_each_spot_to_its_whole_region_is_refused(no_work):
    """squidpy's spatial_neighbors with a radius in other units (1000 where the spots lie 100 apart):
    each spot joined to over 200 others, which the workflow's graph step refuses for its own radius
    graph; tl.domains took it and averaged each spot over its whole region."""
    sq = pytest.importorskip("squidpy")
    adata = tiny_slide(n_side=20)
    del adata.obs["domain"]
    sq.gr.spatial_neighbors(adata, coord_type="generic", radius=1000.0)
    with pytest.raises(InputError, match=r"^obsp\['spatial_connectivities'\] joins each spot to 214 others on average "
                                         r"\(built with radius 1000\.0, as its params say\); the median distance to a "
                                         r"spot's nearest neighbour is 100 \(the workflow's graph step refuses a radius "
                                         r"graph of more than 200\).*Fix: build it again"):
        stcore.tl.domains(adata, n_clusters=2, **FAST)
    sq.gr.spatial_neighbors(adata, coord_type="generic", radius=350.0)     # tens of neighbours: taken
    with pytest.raises(AssertionError, match="after the work had started"):
        stcore.tl.domains(adata, n_clusters=2, **FAST)


def test_seeds_that_are_not_whole_numbers_are_refused(no_work):
    """seed=[0.5, 1.7] ran seeds 0 and 1 (int() cut each), recorded as consensus_of '0,1'; refused,
    before any work; whole numbers written as floats (np.linspace) are read as their ints."""
    with pytest.raises(InputError, match=r"^seed 0\.5 \(of \[0\.5, 1\.7\]\) is not a whole number\. Fix: give whole "
                                         r"numbers as seeds"):
        stcore.tl.domains(_slide(), n_clusters=2, seed=[0.5, 1.7], **FAST)
    with pytest.raises(AssertionError, match="after the work had started"):
        stcore.tl.domains(_slide(), n_clusters=2, seed=np.linspace(0, 2, 3), **FAST)


def _cosmx_as_squidpy_reads_it() -> ad.AnnData:
    """A CosMx slide of 4 fields of view (the quadrants of a 16 x 16 slide, cells jittered) as squidpy's
    read.nanostring stores it: obsm['spatial'] each cell's position in its field of view
    (CenterX_local_px), obsm['spatial_fov'] and obs['CenterX_global_px'] the slide's, obs['fov'] and one
    uns['spatial'] library per field of view, ids '<cell_ID>_<fov>'."""
    a = tiny_slide(n_side=16)
    del a.obs["domain"]
    xy = np.asarray(a.obsm["spatial"], float) + np.random.default_rng(5).uniform(-30, 30, (a.n_obs, 2))
    middle = xy.min(axis=0) + np.ptp(xy, axis=0) / 2
    fov = 1 + (xy[:, 0] > middle[0]) + 2 * (xy[:, 1] > middle[1])
    origin = np.array([xy[fov == f].min(axis=0) - 20 for f in range(1, 5)])
    cell = np.zeros(a.n_obs, int)
    for f in range(1, 5):
        cell[fov == f] = np.arange((fov == f).sum()) + 1
    a.obs["fov"] = pd.Categorical(fov.astype(str))
    a.obs["CenterX_global_px"], a.obs["CenterY_global_px"] = xy[:, 0], xy[:, 1]
    a.obs_names = [f"{c}_{f}" for c, f in zip(cell, fov)]
    a.obsm["spatial"] = xy - origin[fov - 1]
    a.obsm["spatial_fov"] = xy
    a.uns["spatial"] = {str(f): {"images": {}, "scalefactors": {"tissue_hires_scalef": 1, "spot_diameter_fullres": 1}}
                        for f in range(1, 5)}
    return a


def test_coordinates_local_to_each_field_of_view_are_refused_naming_the_slides(no_work, tmp_path):
    """A CosMx slide read by squidpy (obsm['spatial'] each field of view's own coordinates, which lay the
    fields on one another) is refused naming the slide's coordinates, obsm['spatial_fov'] (was: 'the spots
    come from 4 slides ... Fix: give one slide at a time, adata[adata.obs['fov'] == '1']', one field of
    view; without uns['spatial'] taken for slides joined by anndata.concat; with plain ids, accepted: one
    graph over the fields laid on one another).  The fix, followed, passes, uns['spatial'] kept."""
    a = _cosmx_as_squidpy_reads_it()
    message = (r"^obsm\['spatial'\] lays the 4 fields of view of obs\['fov'\] \('1', '2', '3', '4'\) on one another "
               r"\(\d+% of the spots have their nearest neighbour in another\), where obsm\['spatial_fov'\] put them "
               r"side by side: .*Fix: store the slide's coordinates as obsm\['spatial'\]: adata\.obsm\['spatial'\] = "
               r"adata\.obsm\['spatial_fov'\] \(stcore\.tl\.domains also reads them with spatial_key='spatial_fov'\)$")
    with pytest.raises(InputError, match=message):
        stcore.gr.spatial_graph(a)
    with pytest.raises(InputError, match=message):
        stcore.tl.domains(a, n_clusters=2, **FAST)
    path = write(a, tmp_path / "cosmx.h5ad")
    with pytest.raises(InputError, match=message[1:]):
        prepare_slide(str(path), "h5ad", QCParams())
    plain = a.copy()                                   # ids of a counter, no uns: the fields are named by obs['fov']
    plain.obs_names = [f"c{i}" for i in range(plain.n_obs)]
    del plain.uns["spatial"], plain.obsm["spatial_fov"]
    with pytest.raises(InputError, match=r"where obs\['CenterX_global_px'\], obs\['CenterY_global_px'\] put them "
                                         r"side by side.*adata\.obsm\['spatial'\] = adata\.obs\[\['CenterX_global_px', "
                                         r"'CenterY_global_px'\]\]\.to_numpy\(float\)$"):
        stcore.gr.spatial_graph(plain)
    del plain.obs["CenterX_global_px"], plain.obs["CenterY_global_px"]
    plain.obsm["global"] = a.obsm["spatial_fov"]       # as spatialdata-io's CosMx reader names the slide's
    with pytest.raises(InputError, match=r"where obsm\['global'\] put them side by side.*Fix: store the slide's "
                                         r"coordinates as obsm\['spatial'\]: adata\.obsm\['spatial'\] = "
                                         r"adata\.obsm\['global'\]"):
        stcore.gr.spatial_graph(plain)
    del plain.obsm["global"]
    with pytest.raises(InputError, match=r"^the spots come from 4 fields of view \(obs\['fov'\]: '1', '2', '3', '4'\), "
                                         r"and obsm\['spatial'\] lays them on one another.*coordinates local to each "
                                         r"field of view"):
        stcore.gr.spatial_graph(plain)
    a.obsm["spatial"] = a.obsm["spatial_fov"]          # the fix, followed: the fields side by side
    stcore.gr.spatial_graph(a)
    assert a.obsp["spatial_connectivities"].shape == (256, 256)
    prepare_slide(str(write(a, tmp_path / "fixed.h5ad")), "h5ad", QCParams())


def test_slides_joined_without_a_slide_column_are_refused(no_work):
    """anndata.concat of two slides without label= (ids made unique by index_unique='-', or not):
    no column names each spot's slide.  Two DLPFC slides joined so were taken, and one graph joined
    them (21,178 of 22,460 edges between the slides).  Spots sharing a Visium grid position
    (obs['array_row'], obs['array_col']) or ids whose suffixes group the spots into sets that lie
    among each other are refused; the fix, followed, passes; slides side by side pass."""
    def grid(a):
        ii, jj = np.meshgrid(np.arange(8), np.arange(8))
        a.obs["array_col"], a.obs["array_row"] = 2 * ii.ravel() + jj.ravel() % 2, jj.ravel()
        return a
    first, second = grid(tiny_slide(seed=1)), grid(tiny_slide(seed=2))
    for a in (first, second):
        del a.obs["domain"]
    second.obsm["spatial"] = second.obsm["spatial"] + np.asarray([37.0, 21.0])
    joined = ad.concat({"A": first, "B": second}, index_unique="-")
    assert not set(joined.obs.columns) - {"array_row", "array_col"}
    message = (r"^the spots come from several slides joined without a column naming each spot's slide \(anndata\.concat "
               r"without label=\): 128 spots share their Visium grid position \(obs\['array_row'\], obs\['array_col'\]\) "
               r"with another spot, where a slide has one spot at each; the spot ids end in 2 suffixes \('-' then 'A', "
               r"'B'\).*Fix: give one slide at a time, e\.g\. adata\[adata\.obs_names\.str\.endswith\('-A'\)\]\.copy\(\)")
    with pytest.raises(InputError, match=message):
        stcore.gr.spatial_graph(joined)
    with pytest.raises(InputError, match="share their Visium grid position"):
        stcore.tl.domains(joined, n_clusters=2, **FAST)
    assert "spatial_connectivities" not in joined.obsp
    one = joined[joined.obs_names.str.endswith("-A")].copy()         # the fix, followed
    stcore.gr.spatial_graph(one)
    same_ids = ad.concat([first, second])                            # ids not made unique: the slides are named
    with pytest.raises(InputError, match="128 spots share their Visium grid position"):
        stcore.gr.spatial_graph(same_ids)
    for a in (first, second):                                        # no grid columns: the ids' suffixes
        del a.obs["array_row"], a.obs["array_col"]
    by_ids = ad.concat({"s1": first, "s2": second}, index_unique="_")
    with pytest.raises(InputError, match=r"the spot ids end in 2 suffixes \('_' then 's1', 's2'\), .* \d+% of the "
                                         r"spots have their nearest neighbour under another suffix"):
        stcore.tl.domains(by_ids, n_clusters=2, **FAST)
    second.obsm["spatial"] = second.obsm["spatial"] + np.asarray([5000.0, 0.0])    # side by side: taken
    apart = ad.concat({"s1": first, "s2": second}, index_unique="_")
    stcore.gr.spatial_graph(apart)
    assert apart.obsp["spatial_connectivities"].shape == (128, 128)
    visium = _slide()                                                # one slide's barcodes all end in '-1'
    visium.obs_names = [f"{n}-1" for n in visium.obs_names]
    stcore.gr.spatial_graph(grid(visium))
    bins = tiny_slide(n_side=16)                                     # bins named '<x>_<y>': rows, not slides
    bins.obsm["spatial"] = np.column_stack(np.divmod(np.arange(256), 16)).astype(float) * 10
    bins.obs_names = [f"{int(x)}_{int(y)}" for x, y in bins.obsm["spatial"]]
    stcore.gr.spatial_graph(bins)
    types = tiny_slide(n_side=16)                                    # ids that end in each cell's own label
    types.obs_names = [f"cell{i}_{'AB'[i % 2]}" for i in range(types.n_obs)]
    stcore.gr.spatial_graph(types)
    kind = np.where(np.arange(types.n_obs) % 5 == 0, "Astro", "Neuron")     # each label's cells numbered apart
    types.obs_names = [f"{k}_{(kind[:i] == k).sum()}" for i, k in enumerate(kind)]
    stcore.gr.spatial_graph(types)
    second.obsm["spatial"] = second.obsm["spatial"] - np.asarray([5000.0, 0.0])    # among each other again
    seurat = ad.concat([first, second])                              # Seurat's merge(add.cell.ids=c('A', 'B'))
    seurat.obs_names = [f"{s}_{n}" for s in "AB" for n in first.obs_names]
    with pytest.raises(InputError, match=r"the spot ids start with 2 prefixes \('A', 'B' then '_'\), as Seurat's "
                                         r"merge\(add\.cell\.ids=\).*adata\[adata\.obs_names\.str\.startswith\('A_'\)\]"):
        stcore.gr.spatial_graph(seurat)
    seurat.obs_names = [f"s{i}" for i in range(seurat.n_obs)]       # the sample column Seurat keeps
    seurat.obs["orig.ident"] = ["A"] * 64 + ["B"] * 64
    with pytest.raises(InputError, match=r"obs\['orig\.ident'\]: 'A', 'B'"):
        stcore.gr.spatial_graph(seurat)


def test_several_sections_in_one_object_are_refused_by_their_section_column_or_z(no_work):
    """Sections joined into one object and named as MERFISH and the Allen atlas name them: a float
    'bregma' (Moffitt et al.), a float 'section', an int 'section_id', 'animal_id', a 'z' per
    section (each was taken, and one graph joined the sections).  Numbers count where each value is
    held by many spots; a z whose values lie closer than the spots (the planes of one thick
    section) and a measured value per spot pass."""
    for column, values in (("bregma", (0.21, 0.16)), ("section", (21.0, 16.0)), ("section_id", (1, 2)),
                           ("animal_id", (1, 2)), ("z", (0.0, 50.0)), ("z_section", (0.0, 200.0))):
        both = _joined((37.0, 21.0), "batch_", ("A", "B"))
        both.obs[column] = np.where(both.obs.pop("batch_").to_numpy() == "A", values[0], values[1])
        with pytest.raises(InputError, match=rf"^the spots come from 2 slides \(obs\['{column}'\]: "
                                             rf"{values[0]!r}, {values[1]!r}\), and they lie among each other.*"
                                             rf"Fix: give one slide at a time, e\.g\. adata\[adata\.obs\['{column}'\] "
                                             rf"== {re.escape(repr(values[0]))}\]\.copy\(\)"):
            stcore.gr.spatial_graph(both)
        with pytest.raises(InputError, match=rf"obs\['{column}'\]"):
            stcore.tl.domains(both, n_clusters=2, **FAST)
        one = both[both.obs[column] == values[0]].copy()       # the fix, followed: one section passes
        stcore.gr.spatial_graph(one)
    planes = _joined((37.0, 21.0), "batch_", ("A", "B"))       # one section's planes, 1.5 apart; spots 40 or more apart
    planes.obs["z"] = np.where(planes.obs.pop("batch_").to_numpy() == "A", 0.0, 1.5)
    stcore.gr.spatial_graph(planes)
    measured = _slide()                                        # a depth per cell, as a segmentation measures it
    measured.obs["z"] = np.random.default_rng(0).uniform(0, 10, measured.n_obs)
    measured.obs["sample"] = np.round(measured.obs["z"])       # few values, each held by few spots
    stcore.gr.spatial_graph(measured)


def test_planes_stacked_at_the_same_positions_are_refused(no_work):
    """One tissue's imaging planes measured at the same x, y (each position's counts in every plane, its
    spots a few units apart), the plane in obs['z_plane'] (or 'global_z', 'plane', ...: MERSCOPE's and
    image tools' names), joined in one object: taken; each spot's nearest were its own copies in the other
    planes (85% of the graph's edges joined two planes), and where the copies sat at one point the warning
    said to drop repeated spots.  Refused naming the planes; a section's planes of distinct cells pass."""
    planes = [tiny_slide(seed=s) for s in range(3)]
    stacked = ad.concat(planes, index_unique="-", keys=["0", "1", "2"])
    del stacked.obs["domain"]
    stacked.obs_names = [f"b{i}" for i in range(stacked.n_obs)]
    jitter = np.random.default_rng(0).normal(0, 2, stacked.obsm["spatial"].shape)
    stacked.obsm["spatial"] = np.concatenate([p.obsm["spatial"] for p in planes]) + jitter
    for column in ("z_plane", "global_z", "plane"):
        adata = stacked.copy()
        adata.obs[column] = np.repeat([0, 1, 2], planes[0].n_obs)
        with pytest.raises(InputError, match=rf"^the spots come from 3 planes \(obs\['{column}'\]: 0, 1, 2\) stacked at "
                                             r"the same x, y: a spot's nearest in the next plane lies [\d.]+ from it, "
                                             r"where the spots of one plane lie [\d.]+ apart.*Fix: sum each position's "
                                             r"counts over the planes \(one spot per position\), or give one plane at a "
                                             rf"time, e\.g\. adata\[adata\.obs\['{column}'\] == 0\]\.copy\(\)"):
            stcore.gr.spatial_graph(adata)
        with pytest.raises(InputError, match=rf"obs\['{column}'\]"):
            stcore.tl.domains(adata, n_clusters=2, **FAST)
    distinct = _joined((37.0, 21.0), "batch_", ("A", "B"))        # planes of distinct cells, 40 or more apart
    distinct.obs["z_plane"] = np.where(distinct.obs.pop("batch_").to_numpy() == "A", 0, 1)
    stcore.gr.spatial_graph(distinct)


def test_sections_stacked_as_a_third_coordinate_are_named_as_sections(no_work):
    """x, y and each section's z in obsm['spatial']: the message names the sections and the column to
    split by (it offered [:, :2] and spatial_dims=(0, 1), which laid the sections on one another)."""
    both = _joined((37.0, 21.0), "batch_", ("A", "B"))
    section = both.obs.pop("batch_").to_numpy() == "B"
    both.obsm["spatial"] = np.c_[both.obsm["spatial"], np.where(section, 50.0, 0.0)]
    for call in (stcore.gr.spatial_graph, lambda a: stcore.tl.domains(a, n_clusters=2, **FAST)):
        with pytest.raises(InputError) as err:
            call(both)
        msg = str(err.value)
        assert msg.startswith("obsm['spatial'] has 3 columns (shape (128, 3)), and obsm['spatial'][:, 2] takes only "
                              "2 values (0, 50), each held by many spots: the spots of several sections"), msg
        assert "Fix: split the object by that column and give one section at a time, e.g. part = " \
               "adata[adata.obsm['spatial'][:, 2] == 0.0].copy(); part.obsm['spatial'] = " \
               "part.obsm['spatial'][:, [0, 1]]" in msg and "spatial_dims" not in msg
    with pytest.raises(InputError, match=r"obsm\['spatial'\]\[:, 2\] takes only 2 values \(0, 50\)"):
        stcore.tl.domains(both, n_clusters=2, spatial_dims=(0, 1), **FAST)    # naming x and y drops them still
    frame = both.copy()
    frame.obsm["spatial"] = pd.DataFrame(both.obsm["spatial"], index=both.obs_names, columns=["x", "y", "z"])
    with pytest.raises(InputError, match=r"obsm\['spatial'\]\['z'\] takes only 2 values"):
        stcore.gr.spatial_graph(frame, spatial_dims=("x", "y"))
    planes = both.copy()                                       # the planes of one section: the plain message
    planes.obsm["spatial"][:, 2] = np.where(section, 1.5, 0.0)
    with pytest.raises(InputError, match=r"which two are the plane's x and y is not known\. Fix: store only x and y"):
        stcore.gr.spatial_graph(planes)
    stcore.gr.spatial_graph(planes, spatial_dims=(0, 1))       # its x and y, named: accepted


def test_spots_that_share_a_position_are_warned_of(caplog):
    """A slide joined to itself without a slide column, or spots whose coordinates a merge filled
    with 0: the graph links them at distance 0 and a repeated spot counts twice in every score.
    Warned of (the project's own osmFISH slide holds 476 such pairs), naming the first two spots."""
    import logging

    from stcore.validate import check_coordinates

    caplog.set_level(logging.WARNING, logger="stcore")
    check_coordinates(_slide())
    assert not caplog.records                                         # a slide as it should be: no word
    twice = ad.concat([_slide(), _slide()], index_unique="-")
    stcore.gr.spatial_graph(twice)
    said = caplog.records[-1].getMessage()
    assert re.match(r"128 spots share their position with another spot \(64 positions; first: '\S+-0' and '\S+-1' "
                    r"at \([-\d.]+, [-\d.]+\)\); 64 of 64 such pairs also have the same counts: one spot twice; .*"
                    r"Fix: drop the repeated spots, or correct their coordinates in obsm\['spatial'\]$", said), said
    filled = _slide()
    filled.obsm["spatial"][:3] = 0.0                                   # a merge's fill value
    check_coordinates(filled, path="merged.h5ad")
    said = caplog.records[-1].getMessage()
    assert said.startswith("merged.h5ad: 3 spots share their position with another spot (1 position; first: ")
    assert "same counts" not in said
    caplog.clear()
    stcore.tl.domains(ad.concat([_slide(), _slide()], index_unique="-"), n_clusters=2, **FAST)
    said = [r.getMessage() for r in caplog.records if "share their position" in r.getMessage()]
    assert len(said) == 1, said                    # once for the call (it builds the graph on the checked spots)


def test_spots_that_share_a_position_are_warned_of_once_by_the_graph_and_the_domains(caplog):
    """The notebook's path, gr.spatial_graph then tl.domains, on a slide with spots at shared positions:
    one warning (gr.spatial_graph keeps it in uns['spatial_neighbors'], and tl.domains on that graph
    does not give it again); it was given by each call.  Spots that share other positions than the
    graph's builder saw are warned of again."""
    import logging

    def said():
        return [r.getMessage() for r in caplog.records if "share their position" in r.getMessage()]

    caplog.set_level(logging.WARNING, logger="stcore")
    twice = ad.concat([_slide(), _slide()], index_unique="-")
    stcore.gr.spatial_graph(twice)
    stcore.tl.domains(twice, n_clusters=2, **FAST)
    assert len(said()) == 1, said()
    stcore.tl.domains(twice, n_clusters=3, **FAST)              # again on the same spots and graph: not again
    assert len(said()) == 1, said()
    stcore.gr.spatial_graph(twice, mode="radius", radius=150)   # a graph that a subset keeps whole
    assert len(said()) == 2
    part = twice[np.arange(twice.n_obs) % 5 != 0].copy()       # other spots than the graph's builder saw
    stcore.tl.domains(part, n_clusters=2, **FAST)
    assert len(said()) == 3 and said()[2] != said()[1], said()
    caplog.clear()
    stcore.tl.domains(ad.concat([_slide(), _slide()], index_unique="-"), n_clusters=2, **FAST)
    assert len(said()) == 1                                     # a call that builds the graph: once


def test_control_probes_and_blank_codewords_among_the_genes_are_warned_of(caplog, tmp_path):
    """Xenium's negative controls and unassigned codewords (scanpy's read_10x_h5(gex_only=False)) and
    MERFISH's blank barcodes kept as genes (the shared MERFISH file holds Blank_1..Blank_5) count in
    each spot's total and are used as genes; they were taken without a word.  Warned of by the
    workflow's reader and tl.domains, with the line that drops them; that line leaves no warning."""
    import logging

    from stcore.qc import QCParams, prepare_slide

    caplog.set_level(logging.WARNING, logger="stcore")
    adata = _slide()
    names = list(adata.var_names)
    names[:3] = ["NegControlProbe_00042", "UnassignedCodeword_0001", "Blank-7"]
    adata.var_names = names
    path = write(adata, tmp_path / "xenium_all_features.h5ad")
    prepare_slide(str(path), "h5ad", QCParams())
    said = [r.getMessage() for r in caplog.records if "control probes" in r.getMessage()]
    assert said == [f"{path}: 3 of the 40 genes are control probes or blank codewords, not genes (first: "
                    "'NegControlProbe_00042', 'UnassignedCodeword_0001', 'Blank-7'); they count in each spot's total "
                    "and take part in the gene selection and the features as genes do. Fix: drop them before the run: "
                    "adata = adata[:, ~adata.var_names.str.startswith(('NegControlProbe', 'UnassignedCodeword', "
                    "'Blank'))].copy() (format xenium reads a Xenium bundle without them)"], said
    caplog.clear()
    stcore.tl.domains(adata, n_clusters=2, **FAST)
    assert sum("3 of the 40 genes are control probes" in r.getMessage() for r in caplog.records) == 1
    caplog.clear()
    kept = adata[:, ~adata.var_names.str.startswith(("NegControlProbe", "UnassignedCodeword", "Blank"))].copy()
    assert kept.n_vars == 37
    stcore.tl.domains(kept, n_clusters=2, overwrite=True, **FAST)
    assert not [r for r in caplog.records if "control probes" in r.getMessage()]


def _assert_drawn_at(adata, xy):
    """pl.domains draws the spots of ``adata`` (two domains, split at the median x) at ``xy``."""
    from matplotlib.collections import EllipseCollection

    adata.obs["found"] = pd.Categorical(np.where(xy[:, 0] > np.median(xy[:, 0]), "a", "b"))
    ax = stcore.pl.domains(adata, key="found", show=False)[0]
    drawn = [c for c in ax.collections if isinstance(c, EllipseCollection)][0].get_offsets()
    np.testing.assert_array_equal(np.asarray(drawn), xy)


def test_coordinates_named_row_first_are_read_as_x_and_y(tmp_path):
    """obsm['spatial'] as a data frame of Seurat's GetTissueCoordinates, (imagerow, imagecol), or of
    Space Ranger's (array_row, array_col): y first.  Read as x, y by their names by the workflow's
    reader, the API's checks and pl.domains; they were taken in their order, and the tissue was
    drawn transposed (over its image too)."""
    from stcore.qc import QCParams, prepare_slide
    from stcore.validate import check_coordinates

    adata = _slide()
    xy = adata.obsm["spatial"] * [1.0, 2.0]                # not symmetric under a swap of x and y
    for row, col in (("imagerow", "imagecol"), ("array_row", "array_col")):
        adata.obsm["spatial"] = pd.DataFrame({row: xy[:, 1], col: xy[:, 0]}, index=adata.obs_names)
        np.testing.assert_array_equal(check_coordinates(adata), xy)
        out, _ = prepare_slide(str(write(adata, tmp_path / f"{row}.h5ad")), "h5ad", QCParams())
        np.testing.assert_array_equal(out.obsm["spatial"], xy)
    _assert_drawn_at(adata, xy)
    # named x, y in that order, or not named as coordinates: taken as they are
    adata.obsm["spatial"] = pd.DataFrame(xy, index=adata.obs_names, columns=["a", "b"])
    np.testing.assert_array_equal(check_coordinates(adata), xy)


def test_an_array_of_obs_coordinates_stored_row_first_is_read_as_x_and_y(tmp_path):
    """obsm['spatial'] = adata.obs[['imagerow', 'imagecol']].to_numpy() (Seurat's GetTissueCoordinates order), or
    Space Ranger's pixel columns row first: an array, y first, of the spots' own obs columns.  It was taken in
    its order (x = the row), the tissue drawn transposed by pl.domains and the workflow's domains.png; now read
    as x, y, as a data frame so named is, by the workflow's reader, the API's checks and pl.domains.  An
    array that holds them x first, or other numbers, is taken as it is."""
    from stcore.validate import check_coordinates

    adata = _slide()
    xy = adata.obsm["spatial"] * [1.0, 2.0]                # not symmetric under a swap of x and y
    for x, y in (("imagecol", "imagerow"), ("pxl_col_in_fullres", "pxl_row_in_fullres")):
        a = adata.copy()
        a.obs[x], a.obs[y] = xy[:, 0], xy[:, 1]
        a.obsm["spatial"] = a.obs[[y, x]].to_numpy()
        np.testing.assert_array_equal(check_coordinates(a), xy)
        out, _ = prepare_slide(str(write(a, tmp_path / f"{y}.h5ad")), "h5ad", QCParams())
        np.testing.assert_array_equal(out.obsm["spatial"], xy)
        _assert_drawn_at(a, xy)
        a.obsm["spatial"] = a.obs[[x, y]].to_numpy()       # x first: as it is
        np.testing.assert_array_equal(check_coordinates(a), xy)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_coordinates_left_in_obs_are_named_with_the_line_that_stores_them(no_work):
    adata = _slide()
    xy = adata.obsm.pop("spatial")
    adata.obs["X"], adata.obs["Y"] = xy[:, 0], xy[:, 1]
    with pytest.raises(InputError, match=r"no spot coordinates \(obsm\['spatial'\] is missing\); obs has columns 'X' "
                                         r"and 'Y'\. Fix: store them as the coordinates: adata\.obsm\['spatial'\] = "
                                         r"adata\.obs\[\['X', 'Y'\]\]\.to_numpy\(float\)"):
        stcore.tl.domains(adata, n_clusters=2, **FAST)


def test_visium_grid_indices_left_in_obs_are_named_with_the_rows_spacing(no_work):
    """Only Visium's grid indices in obs (array_row, array_col): the fix stored them as they are, a hexagonal
    grid whose columns lie 50 um apart and rows 86.6 um, so the tissue was squashed 1.73 times along y (DLPFC
    151673: aspect 0.66 where its pixels give 1.15) and with graph.n_neighbors 6 only 82.5% of a spot's nearest
    were its grid neighbours (96.7% from the pixels); the fix now scales the rows, which gives 96.7% too."""
    adata = _slide()
    del adata.obsm["spatial"]
    ii, jj = np.meshgrid(np.arange(8), np.arange(8))
    adata.obs["array_row"], adata.obs["array_col"] = jj.ravel(), 2 * ii.ravel() + jj.ravel() % 2
    with pytest.raises(InputError, match=r"obs has columns 'array_col' and 'array_row' \(Visium's grid indices: its "
                                         r"columns lie 50 um apart, its rows 86\.6 um\)\. Fix: store them as the "
                                         r"coordinates: adata\.obsm\['spatial'\] = adata\.obs\[\['array_col', "
                                         r"'array_row'\]\]\.to_numpy\(float\) \* \[1, 3 \*\* 0\.5\]"):
        stcore.tl.domains(adata, n_clusters=2, **FAST)
    adata.obsm["spatial"] = adata.obs[["array_col", "array_row"]].to_numpy(float) * [1, 3 ** 0.5]   # the fix
    from stcore.graph import knn_indices

    distances = knn_indices(adata.obsm["spatial"], 6)[1]
    inner = (adata.obs["array_row"].between(1, 6) & adata.obs["array_col"].between(2, 13)).to_numpy()
    np.testing.assert_allclose(distances[inner], 2.0)        # each inner spot's 6 nearest: its 6 grid neighbours


def test_visium_grid_indices_stored_as_the_coordinates_are_refused_with_the_rows_spacing(no_work):
    """obsm['spatial'] holding Visium's grid indices as they are (obs[['array_col', 'array_row']], or y first):
    a hexagonal grid whose rows lie 86.6 um apart stored 1 apart, the tissue squashed 1.73 times along y (was
    taken without a word; the indices left in obs only were named).  Refused with the rows' scale; the fix,
    followed, passes."""
    adata = _slide()
    ii, jj = np.meshgrid(np.arange(8), np.arange(8))
    adata.obs["array_row"], adata.obs["array_col"] = jj.ravel(), 2 * ii.ravel() + jj.ravel() % 2
    message = (r"obsm\['spatial'\] holds Visium's grid indices as they are \(obs\['array_col'\], obs\['array_row'\]\): "
               r"its columns lie 50 um apart, its rows 86\.6 um.*Fix: store the full-resolution pixels of Space "
               r"Ranger's tissue_positions \(stcore\.read\.visium reads them\), or scale the rows: "
               r"adata\.obsm\['spatial'\] = adata\.obs\[\['array_col', 'array_row'\]\]\.to_numpy\(float\) \* \[1, 3 \*\* 0\.5\]")
    for columns in (["array_col", "array_row"], ["array_row", "array_col"]):
        adata.obsm["spatial"] = adata.obs[columns].to_numpy(float)
        with pytest.raises(InputError, match=message):
            stcore.gr.spatial_graph(adata)
        assert "spatial_connectivities" not in adata.obsp
    adata.obsm["spatial"] = adata.obs[["array_col", "array_row"]].to_numpy(float) * [1, 3 ** 0.5]   # the fix
    stcore.gr.spatial_graph(adata)
    assert "spatial_connectivities" in adata.obsp


def _volume(thickness: float, n: int = 600, seed: int = 0):
    """A slide of cells spread through a block ``thickness`` deep, cells about 10 apart (one per 1000 cubic
    units), the cells' depth in obs['z'] and x, y in obsm['spatial']."""
    rng = np.random.default_rng(seed)
    side = (n * 1000 / thickness) ** 0.5
    xyz = rng.uniform(0, 1, (n, 3)) * [side, side, thickness]
    adata = ad.AnnData(sp.csr_matrix(rng.poisson(3.0, (n, 40)).astype(np.float32)),
                       obs=pd.DataFrame({"z": xyz[:, 2]}, index=[f"cell{i}" for i in range(n)]))
    adata.obsm["spatial"] = xyz[:, :2]
    return adata, xyz


def test_the_depth_of_a_thick_volume_beside_its_x_y_is_warned_of(caplog):
    """Cells of a volume 150 deep (a thick STARmap or EASI-FISH block), each cell's depth in obs['z'] beside
    x, y in obsm['spatial'], or obsm['spatial'] of x, y, z with spatial_dims=(0, 1) as the refusal of three
    columns says: the graph of x, y joined cells at other depths without a word (a cell's nearest in the plane
    lies 44 from it in depth, its distance in the plane 1.3; of the knn graph's edges 50% join the two halves
    of the block, as many as at random, where the graph over x, y and z joins 3%).  A warning names the
    depth; a section 10 deep (a MERFISH section: cells' z within it) passes without one."""
    import logging

    caplog.set_level(logging.WARNING, logger="stcore")
    adata, xyz = _volume(150)
    stcore.gr.spatial_graph(adata)
    said = [r.getMessage() for r in caplog.records if "a volume" in r.getMessage()]
    assert len(said) == 1 and re.search(r"obs\['z'\] gives the spots' depth over 150 \([\d.]+ to 150\): a volume", said[0])
    assert re.search(r"Fix: .*adata\[adata\.obs\['z'\] < 1\d(\.\d+)?\]\.copy\(\)", said[0])
    caplog.clear()
    del adata.obs["z"]
    adata.obsm["spatial"] = xyz
    stcore.gr.spatial_graph(adata, spatial_dims=(0, 1))
    said = [r.getMessage() for r in caplog.records if "a volume" in r.getMessage()]
    assert len(said) == 1 and "obsm['spatial'][:, 2] (the column spatial_dims leaves out, taken for the spots' z) " \
        "gives the spots' depth" in said[0]
    adata.obsm["spatial"] = pd.DataFrame(xyz, columns=["x", "y", "z"], index=adata.obs_names)
    caplog.clear()
    stcore.gr.spatial_graph(adata, spatial_dims=("x", "y"))
    assert any("obsm['spatial']['z']" in r.getMessage() and "a volume" in r.getMessage() for r in caplog.records)
    caplog.clear()
    thin, _ = _volume(10)
    stcore.gr.spatial_graph(thin)
    assert not [r for r in caplog.records if "a volume" in r.getMessage()], caplog.text


def test_visium_hd_grid_indices_left_in_obs_are_named_as_a_square_grid(no_work):
    """Only a Visium HD slide's grid indices in obs (array_row, array_col: square bins, every row and column
    taken): the fix was that of Visium's hexagonal grid, rows scaled by 3 ** 0.5, which stretched the bins
    1.73 times along y; on that stretched grid a bin's 6 nearest were 84% its 8 grid neighbours (98% on the
    square grid), and stcore.peers.grid_shape took it for a hexagon (SpaGCN's refinement on 6 neighbours).
    The square grid is named, and its fix stores the indices as they are; Visium's grid keeps its fix."""
    from stcore.graph import knn_indices
    from stcore.peers import grid_shape

    adata = _slide()
    del adata.obsm["spatial"]
    rows, cols = np.meshgrid(np.arange(8), np.arange(8))
    adata.obs["array_row"], adata.obs["array_col"] = rows.ravel(), cols.ravel()
    with pytest.raises(InputError) as err:
        stcore.tl.domains(adata, n_clusters=2, **FAST)
    said = str(err.value)
    assert "3 ** 0.5" not in said and "86.6 um" not in said
    assert re.search(r"obs has columns 'array_col' and 'array_row' \(the grid indices of a square grid, as Visium "
                     r"HD's bins lie: its rows and columns one bin apart\)\. Fix: store them as the coordinates: "
                     r"adata\.obsm\['spatial'\] = adata\.obs\[\['array_col', 'array_row'\]\]\.to_numpy\(float\) "
                     r"\(times the bin size", said)
    adata.obsm["spatial"] = adata.obs[["array_col", "array_row"]].to_numpy(float)     # the fix
    assert grid_shape(adata.obsm["spatial"]) == "square"
    inner = (adata.obs["array_row"].between(1, 6) & adata.obs["array_col"].between(1, 6)).to_numpy()
    assert np.all(knn_indices(adata.obsm["spatial"], 8)[1][inner] <= 2 ** 0.5 + 1e-9)  # its 8 grid neighbours


def test_a_missing_coordinate_key_names_the_key(no_work):
    adata = _slide()
    adata.obsm["X_umap"] = adata.obsm.pop("spatial")
    with pytest.raises(InputError, match=r"no spot coordinates \(obsm\['spatial'\] is missing\) \(obsm holds "
                                         r"\['X_umap'\]\)\. Fix: store the x, y coordinates"):
        stcore.tl.domains(adata, n_clusters=2, **FAST)


# --- settings, n_clusters and the clustering, before any training ------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"train": {"epoch": 2}}, r"^train: Additional properties are not allowed \('epoch' was unexpected\)\. "
                              r"Fix: use the keys of train: in stcore/schemas/config\.schema\.yaml \(epochs, lr,"),
    ({"train": {"epochs": 0}}, r"^train\.epochs: 0 is less than the minimum of 1\."),
    ({"train": {"epochs": 2.5}}, r"^train\.epochs: 2\.5 is not of type 'integer'"),
    ({"cluster": {"n_int": 1}}, r"^cluster: Additional properties are not allowed \('n_int' was unexpected\)"),
    ({"cluster": {"method": "leiden"}}, r"^cluster\.method is now cluster\.algorithm\. Fix: pass cluster=\{'algorithm': 'leiden'\}$"),
    ({"cluster": {"algorithm": "hdbscan"}}, r"^cluster\.algorithm: 'hdbscan' is not one of \['mclust'"),
    ({"cluster": {"algorithm": "own"}}, r"^cluster\.algorithm own, but model 'graphst' has no clustering of its own\. "
                                     r"Fix: use it with a model that clusters itself \(.*spagcn"),
    ({"cluster": {"subset": 10}, "n_clusters": 12}, r"^cluster\.subset 10 must exceed the number of domains"),
    ({"cluster": {"auto_range": [9, 3]}}, r"^cluster\.auto_range \[9, 3\] runs from high to low\. Fix: write it as \[3, 9\]"),
    # auto is chosen with mclust's mixture (was: refused by the clustering, after the training)
    ({"cluster": {"algorithm": "leiden"}, "n_clusters": "auto"},
     r"^n_clusters 'auto' is chosen with mclust's mixture; cluster\.algorithm 'leiden' has none\. "
     r"Fix: pass cluster=\{'algorithm': 'mclust'\}, or give n_clusters as a number"),
    ({"n_clusters": 65}, r"^n_clusters=65 is larger than the 64 spots\. Fix: lower n_clusters$"),
    ({"n_clusters": True}, r"^n_clusters=True is not a whole number"),
    ({"method": "nope"}, r"^unknown method model 'nope'\. Fix: use one of \["),
    ({"method": None}, r"^method None is not a method's name or several\. Fix: name one \(method='graphst'\) or several"),
    ({"method": 3}, r"^method 3 is not a method's name or several"),
    ({"train": ["epochs", 2]}, r"^train must be a dict of settings, not list"),
    ({"hvg_flavor": "seurat_v4"}, r"^hvg\.flavor: 'seurat_v4' is not one of \['seurat_v3', 'seurat', 'cell_ranger'\]"),
    ({"n_top_genes": 0}, r"^hvg\.n_top_genes: 0 is less than the minimum of 1"),
])
def test_bad_settings_are_refused_before_any_training(kwargs, message, no_work):
    settings = dict(FAST, n_clusters=2) | kwargs
    with pytest.raises(InputError, match=message):
        stcore.tl.domains(_slide(), **settings)


@pytest.mark.parametrize("method, peer, message", [
    # the recommended answer's methods with BANKSY's n_top_genes (its memory refusal's fix): CellCharter takes
    # no such key (was: refused by CellCharter's fit, after graphst and BANKSY had trained)
    (["graphst", "banksy", "cellcharter"], {"n_top_genes": 500},
     r"^method 'cellcharter': unknown train\.peer setting\(s\) \['n_top_genes'\]\. Fix: use only \["),
    ("banksy", {"lamda": 0.2}, r"^method 'banksy': unknown train\.peer setting\(s\) \['lamda'\]\. "
                               r"Fix: write lambda for lamda"),
])
def test_a_peer_setting_a_method_does_not_take_is_refused_before_any_training(method, peer, message, no_work):
    """train['peer'] goes to every peer of the call; a key one of them does not take is refused before any
    method trains, as the other settings are, not by that method's fit after the others' training."""
    for m in [method] if isinstance(method, str) else method:
        if m != "graphst" and importlib.util.find_spec(m) is None:
            pytest.skip(f"method {m!r} needs its extra")
    with pytest.raises(InputError, match=message):
        stcore.tl.domains(_slide(), **(FAST | {"n_clusters": 2, "method": method,
                                               "train": dict(FAST.get("train") or {}, peer=peer)}))


@pytest.fixture
def no_training(monkeypatch):
    """tl.domains must refuse before any method trains: a fit reached fails the test."""
    def reached(*args, **kwargs):
        raise AssertionError("the check came after a method had trained")

    monkeypatch.setattr("stcore.methods.fit", reached)


def _need_peers(*names):
    for name in names:
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"method {name!r} needs its extra")


def _on_a_line(a):
    a.obsm["spatial"] = np.c_[np.arange(a.n_obs, dtype=float), np.zeros(a.n_obs)]


def _shadowed(tmp_path, monkeypatch, package):
    """A module of ``package``'s name first on the path, which fails on import (a broken install)."""
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("raise ImportError('a broken install')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in list(__import__("sys").modules) if m == package or m.startswith(package + ".")]:
        monkeypatch.delitem(__import__("sys").modules, name)


@pytest.mark.parametrize("case", ["on a line", "banksy memory", "spagcn genes", "import", "banksy lambda",
                                  "stagate radius"])
def test_a_peer_that_refuses_the_slide_refuses_it_before_any_method_trains(case, no_training, tmp_path, monkeypatch):
    """With several methods, what a peer's fit refuses and can be known before training (spots on one line for
    CellCharter, BANKSY's matrix larger than the memory free, 50 genes or fewer for SpaGCN, a package that fails on
    import, a setting out of range, STAGATE's rad_cutoff in other units: below the spots' spacing, 100 here) is
    refused before the first method trains, not after graphst's minutes."""
    _need_peers("banksy", "cellcharter", "SpaGCN", "STAGATE_pyG")
    adata = _slide()
    methods, train, message = ["graphst", "banksy", "cellcharter"], dict(FAST["train"]), None
    if case == "on a line":
        _on_a_line(adata)
        message = r"^method 'cellcharter': the spots' 64 distinct positions lie on one straight line"
    elif case == "banksy memory":
        from stcore.peers import banksy_memory_mb

        monkeypatch.setattr("stcore.workflow.available_memory_mb", lambda: banksy_memory_mb(64, 10.5))
        message = (r"^method 'banksy': 64 spots x 30 genes need about .* free here\. Fix: .*give banksy 10 genes or "
                   r"fewer .*in tl\.domains, train=\{'peer': \{'banksy': \{'n_top_genes': 10\}\}\}\)")
    elif case == "spagcn genes":
        methods = ["graphst", "spagcn"]
        message = r"^method 'spagcn': .* needs more than 50 genes; this slide has 30"
    elif case == "import":
        _shadowed(tmp_path, monkeypatch, "cellcharter")
        message = r"^method 'cellcharter' needs 'cellcharter', which cannot be imported \(a broken install\)"
    elif case == "stagate radius":
        methods, train["peer"] = ["graphst", "stagate"], {"rad_cutoff": 50}
        message = r"^method 'stagate': no two spots are within rad_cutoff=50 \(the nearest two are 100 apart\)"
    else:
        train["peer"] = {"banksy": {"lambda": 1.5}}
        message = r"^method 'banksy': lambda 1\.5 is outside \[0, 1\]"
    with pytest.raises(InputError, match=message):
        stcore.tl.domains(adata, **(FAST | {"n_clusters": 2, "method": methods, "train": train}))


def test_each_peer_of_a_call_takes_its_own_settings(monkeypatch):
    """train={'peer': {'banksy': {...}}} gives BANKSY its settings and the call's other peers theirs (the
    workflow's methods.<name>.train.peer): the fix BANKSY's memory refusal names, which a shared train['peer']
    cannot follow with CellCharter in the call (it takes no n_top_genes).  A block of a method the call does not
    run, or of a method that reads no peer settings, is refused; a shared block of one method runs as before."""
    _need_peers("banksy", "cellcharter")
    from stcore.peers import settings_of

    train = dict(FAST["train"], peer={"banksy": {"n_top_genes": 20}, "cellcharter": {"n_layers": 2}})
    got = stcore.tl.domains(_slide(), **(FAST | {"n_clusters": 2, "method": ["graphst", "banksy", "cellcharter"],
                                                 "train": train, "copy": True, "progress": False}))
    read = got.uns["stcore"]["train"]
    assert read["banksy"]["peer"] == settings_of("banksy", {"peer": {"n_top_genes": 20}})
    assert read["cellcharter"]["peer"] == settings_of("cellcharter", {"peer": {"n_layers": 2}})
    assert got.obsm["X_cellcharter"].shape[1] == 10 * 3          # rep_dims x (n_layers + 1)
    shared = dict(FAST["train"], peer={"n_top_genes": 500})
    with pytest.raises(InputError, match=r"unknown train\.peer setting\(s\) \['n_top_genes'\]\. Fix: use only \[.*"
                                         r"train=\{'peer': \{'banksy': \{'n_top_genes': 500\}\}\}"):
        stcore.tl.domains(_slide(), **(FAST | {"n_clusters": 2, "method": ["graphst", "banksy", "cellcharter"],
                                               "train": shared}))
    monkeypatch.setattr("stcore.methods.fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    for peer, message in [({"banksy": {"n_top_genes": 20}}, r"^train\['peer'\] holds settings for 'banksy', which "
                                                            r"this call does not run"),
                          ({"graphst": {"epochs": 2}}, r"^train\['peer'\] holds settings for 'graphst', which reads no "
                                                       r"peer settings"),
                          ({"cellcharter": {"n_layers": 2}, "n_top_genes": 20},
                           r"^train\['peer'\] mixes settings \(n_top_genes\) with blocks by method \(cellcharter\)"),
                          ({"cellcharter": 2}, r"^train\['peer'\]\['cellcharter'\] is not a dict of settings")]:
        with pytest.raises(InputError, match=message):
            stcore.tl.domains(_slide(), **(FAST | {"n_clusters": 2, "method": ["graphst", "cellcharter"],
                                                   "train": dict(FAST["train"], peer=peer)}))
    # peer settings in a call of the built-in models only: read by none (they were ignored without a word)
    with pytest.raises(InputError, match=r"^train\['peer'\] holds settings \(n_top_genes\), which only the peer "
                                         r"methods read, but the call runs none \(method=\['graphst'\]\)"):
        stcore.tl.domains(_slide(), **(FAST | {"n_clusters": 2, "train": dict(FAST["train"],
                                                                                peer={"n_top_genes": 20})}))


def test_whole_numbers_written_as_floats_are_read_as_integers():
    train, cluster, hvg = check_settings(train={"epochs": 20.0, "lr": 1.0}, cluster={"n_pcs": 5.0},
                                         hvg={"n_top_genes": 30.0})
    assert train == {"epochs": 20, "lr": 1.0} and cluster == {"n_pcs": 5} and hvg == {"n_top_genes": 30}
    assert type(train["epochs"]) is int and type(train["lr"]) is float
    adata = _slide()
    stcore.tl.domains(adata, n_clusters=2.0, **(FAST | {"n_top_genes": 30.0}))
    chosen = adata.uns["stcore"]["n_clusters"]["chosen"]
    assert chosen == 2 and type(chosen) is int
    assert type(adata.uns["stcore"]["hvg"]["n_top_genes"]) is int


def test_the_config_schema_ships_with_the_package_and_the_workflow_reads_it():
    """One schema: inside the package (package data), and the file the Snakefile validates with."""
    package = Path(stcore.__file__).resolve().parent
    assert CONFIG_SCHEMA.is_file() and CONFIG_SCHEMA.parent.parent == package
    common = (REPO / "rules" / "common.smk").read_text()
    used = re.findall(r'^_CONFIG_SCHEMA = os\.path\.join\(workflow\.basedir, ((?:"[^"]+"(?:, )?)+)\)', common, re.M)
    assert len(used) == 1 and REPO.joinpath(*re.findall(r'"([^"]+)"', used[0])).resolve() == CONFIG_SCHEMA
    assert "lambda c: validate(c, _CONFIG_SCHEMA)" in common       # the file checked_config is given
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'\[tool\.setuptools\.package-data\]\nstcore = \["schemas/\*\.yaml"\]', pyproject)
    for dependency in ("jsonschema", "pyyaml"):                    # check_settings needs both at run time
        assert re.search(rf'^\s+"{dependency}>=', pyproject, re.M), dependency


# --- never writing over a user's column --------------------------------------------------------------

def test_an_annotation_under_key_added_is_never_overwritten(no_work):
    adata = tiny_slide()                                        # obs['domain']: the simulation's truth
    truth = adata.obs["domain"].copy()
    for copy in (False, True):
        with pytest.raises(InputError, match=r"^obs\['domain'\] already holds a column that stcore did not write "
                                             r".*Fix: pass another key_added \(e\.g\. key_added='stcore_domain'\), "
                                             r"delete the column \(del adata\.obs\['domain'\]\), or pass overwrite=True$"):
            stcore.tl.domains(adata, n_clusters=2, copy=copy, **FAST)
    assert adata.obs["domain"].equals(truth) and "stcore" not in adata.uns and "X_graphst" not in adata.obsm


def test_another_key_overwrite_and_an_earlier_result(monkeypatch):
    adata = tiny_slide()
    truth = adata.obs["domain"].copy()
    stcore.tl.domains(adata, n_clusters=2, key_added="stcore_domain", **FAST)
    assert adata.obs["domain"].equals(truth) and adata.uns["stcore"]["method"] == "graphst"
    assert adata.uns["stcore"]["key"] == "stcore_domain"
    stcore.tl.domains(adata, n_clusters=2, key_added="stcore_domain", seed=1, **FAST)       # its own: replaced
    assert adata.uns["stcore"]["seed"] == 1
    stcore.tl.domains(adata, n_clusters=2, overwrite=True, **FAST)
    assert set(adata.obs["domain"].cat.categories) <= {"0", "1"} and adata.uns["stcore"]["key"] == "domain"


def test_a_slide_taken_out_of_joined_results_names_the_record_concat_dropped():
    """Two slides clustered each on its own, joined with anndata.concat (which drops uns, the record
    of the columns stcore wrote) and one taken out: tl.domains does not overwrite obs['domain'] (an
    annotation under it looks the same), but says the record was dropped and how to go on (it said
    'a column that stcore did not write (an annotation?)'); overwrite=True, or concat's
    uns_merge='first', clusters it again."""
    slides = {}
    for name, seed in (("a", 0), ("b", 1)):
        slides[name] = tiny_slide(seed=seed)
        slides[name].obs["truth"] = slides[name].obs.pop("domain")
        stcore.tl.domains(slides[name], n_clusters=2, **FAST)
    joined = ad.concat(slides, label="library_id", index_unique="-")
    one = joined[joined.obs["library_id"] == "a"].copy()
    with pytest.raises(InputError, match=r"^obs\['domain'\] holds a column, and this object has no record of the "
                                         r"stcore calls .* obsm\['X_graphst'\] .* anndata\.concat .*Fix: if "
                                         r"obs\['domain'\] holds stcore's domains, pass overwrite=True .*uns_merge="
                                         r"'first'.*key_added='stcore_domain'"):
        stcore.tl.domains(one, n_clusters=2, **FAST)
    stcore.tl.domains(one, n_clusters=2, seed=1, overwrite=True, **FAST)
    kept = ad.concat(slides, label="library_id", index_unique="-", uns_merge="first")
    stcore.tl.domains(kept[kept.obs["library_id"] == "b"].copy(), n_clusters=2, **FAST)
    # an annotation under 'domain' beside stcore's 'stcore_domain', joined so: still refused
    truth = tiny_slide(seed=2)
    stcore.tl.domains(truth, n_clusters=2, key_added="stcore_domain", **FAST)
    other = ad.concat({"a": truth, "b": truth.copy()}, label="library_id", index_unique="-")
    with pytest.raises(InputError, match=r"or an annotation is not known; it is not overwritten"):
        stcore.tl.domains(other[other.obs["library_id"] == "a"].copy(), n_clusters=2, **FAST)


def test_the_workflow_file_follows_the_same_rule(tmp_path):
    """domains.h5ad (stcore.export.domains_adata): the slide's own 'domain' is kept and the
    domains go to 'stcore_domain' (the name the API's error suggests); a slide with both is refused."""
    slide = tiny_slide()
    n = slide.n_obs
    args = (np.arange(n) % 2, np.zeros((n, 4), np.float32), sp.identity(n, format="csr"))
    free = slide.copy()
    del free.obs["domain"]
    assert domains_adata(free, *args, method="graphst", info={}).uns["stcore"]["key"] == "domain"
    out = domains_adata(slide, *args, method="graphst", info={})
    assert out.uns["stcore"]["key"] == "stcore_domain" and out.obs["domain"].equals(slide.obs["domain"])
    slide.obs["stcore_domain"] = "mine"
    message = (r"obs\['stcore_domain'\] already holds a column that stcore did not write .*Fix: rename the slide's "
               r"obs column 'stcore_domain' or 'domain'")
    with pytest.raises(InputError, match=message):
        domains_adata(slide, *args, method="graphst", info={})
    with pytest.raises(InputError, match=message):                 # the qc job refuses it, before training
        prepare_slide(str(write(slide, tmp_path / "both.h5ad")), "h5ad", QCParams())
    again = domains_adata(out, *args, method="graphst", info={})     # a domains.h5ad read back: its own column
    assert again.uns["stcore"]["key"] == "stcore_domain"


def test_domains_h5ad_says_what_its_x_holds():
    """domains.h5ad (stcore.export.domains_adata) keeps X as the slide gave it: for a slide whose sheet
    says values: log_normalized (a Seurat object converted, without scanpy's uns['log1p']), X is
    marked logged as scanpy marks it, so a scanpy user's sc.pp.log1p warns and rank_genes_groups reads
    it as logged, and uns['stcore']['values'] names what X holds; nothing said that X was not the raw
    counts the README promises, and normalize_total + log1p transformed the values a second time."""
    import scanpy as sc

    slide = tiny_slide()
    del slide.obs["domain"]
    n = slide.n_obs
    args = (np.arange(n) % 2, np.zeros((n, 4), np.float32), sp.identity(n, format="csr"))
    counts = domains_adata(slide, *args, method="graphst", info={})
    assert counts.uns["stcore"]["values"] == "counts" and "log1p" not in counts.uns
    logged = slide.copy()
    sc.pp.normalize_total(logged)
    sc.pp.log1p(logged)
    del logged.uns["log1p"]                                        # as a converted Seurat object holds it
    out = domains_adata(logged, *args, method="graphst", info={}, values="log_normalized")
    # what sc.pp.log1p checks before it warns 'adata.X seems to be already log-transformed'
    assert out.uns["stcore"]["values"] == "log_normalized" and out.uns["log1p"] == {"base": None}
    normal = domains_adata(slide, *args, method="graphst", info={}, values="normalized")
    assert normal.uns["stcore"]["values"] == "normalized" and "log1p" not in normal.uns


def test_a_column_an_earlier_call_wrote_is_stcores_for_every_step(tmp_path):
    """One rule says which columns stcore wrote (stcore.validate.written_by_stcore): a column that an
    earlier tl.domains call, not the last, wrote (listed in uns['stcore']['columns']) is replaced by
    domains.h5ad as by tl.domains, and refused as the truth by the qc job; domains.h5ad kept it as an
    annotation and wrote to 'stcore_domain'."""
    from stcore.validate import key_is_free, written_by_stcore

    slide = tiny_slide()
    n = slide.n_obs
    slide.obs["other"] = pd.Categorical(["0"] * n)
    slide.uns["stcore"] = {"method": "graphst", "n_clusters": 2, "key": "other", "columns": ["domain", "other"]}
    assert written_by_stcore(slide, "domain") and key_is_free(slide, "domain")
    args = (np.arange(n) % 2, np.zeros((n, 4), np.float32), sp.identity(n, format="csr"))
    assert domains_adata(slide, *args, method="graphst", info={}).uns["stcore"]["key"] == "domain"
    with pytest.raises(InputError, match=r"truth column 'domain' holds the domains an earlier stcore run found"):
        prepare_slide(str(write(slide, tmp_path / "fed_back.h5ad")), "h5ad", QCParams(), truth="domain")


def test_the_graph_api_checks_the_coordinates_too():
    """stcore.gr.spatial_graph: the same coordinate checks (was a bare KeyError on a missing key)."""
    adata = _slide()
    adata.obsm["spatial"][:3] = np.nan
    with pytest.raises(InputError, match=r"^3 spots have NaN or infinite coordinates"):
        stcore.gr.spatial_graph(adata)
    del adata.obsm["spatial"]
    with pytest.raises(InputError, match=r"no spot coordinates \(obsm\['spatial'\] is missing\)"):
        stcore.gr.spatial_graph(adata)
    assert "spatial_connectivities" not in adata.obsp


def test_an_installed_package_carries_the_schema(tmp_path):
    """The wheel built from pyproject.toml holds stcore/schemas/config.schema.yaml (package data),
    so check_settings works outside a checkout."""
    import shutil
    import subprocess
    import sys
    import zipfile

    pytest.importorskip("setuptools", reason="building the wheel without build isolation needs setuptools")
    src = tmp_path / "src"
    shutil.copytree(REPO / "stcore", src / "stcore", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp_path / "wheel")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "wheel").glob("stcore-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read("stcore/schemas/config.schema.yaml") == CONFIG_SCHEMA.read_bytes()


def test_a_seed_given_as_text_is_refused_not_read_digit_by_digit(no_work):
    """seed='42' (from a config file or argparse without type=int) ran the consensus of seeds 4 and 2."""
    for seed in ("42", b"42", 4.5):
        with pytest.raises(InputError, match=r"^seed .* is not a whole number or several\. Fix: give seed as an int"):
            stcore.tl.domains(_slide(), n_clusters=2, seed=seed, **FAST)


def test_no_seed_or_seeds_that_are_not_numbers_are_one_line(no_work):
    """seed=[] (or range(0)) was refused as 'one seed or several different seeds, got [] (a seed repeated
    runs the same labelling twice ...)', of repetitions; seed=[None] or [0, 'a'] stopped with int()'s
    TypeError or ValueError."""
    for seed, said in (([], r"seed \[\] holds no seed\. Fix: give one seed \(seed=0\) or several"),
                       (range(0), r"seed range\(0, 0\) holds no seed\. Fix: "),
                       ([None], r"seed None \(of \[None\]\) is not a whole number\. Fix: give whole numbers as seeds"),
                       ([0, "a"], r"seed 'a' \(of \[0, 'a'\]\) is not a whole number\. Fix: ")):
        with pytest.raises(InputError) as err:
            stcore.tl.domains(_slide(), n_clusters=2, seed=seed, **FAST)
        assert re.match(said, str(err.value)) and "\n" not in str(err.value), str(err.value)


def test_a_graph_built_before_spots_were_removed_is_refused(no_work, caplog):
    """gr.spatial_graph, then a filter on the spots: anndata keeps the graph's remaining rows, so
    spots lose neighbours (some all); tl.domains refuses it and names the fix, without first warning
    of the spots it leaves without a neighbour (that warning is for a graph that is taken); rebuilt,
    it is taken."""
    import logging

    caplog.set_level(logging.WARNING, logger="stcore")
    adata = _slide()
    stcore.gr.spatial_graph(adata)
    kept = adata[adata.obsm["spatial"][:, 0] > 150].copy()
    with pytest.raises(InputError, match=r"obsp\['spatial_connectivities'\] gives \d+ spots fewer than the 3 "
                                         r"neighbours its knn graph gave each spot: it was built before spots were "
                                         r"removed\. Fix: build it again on these spots: stcore\.gr\.spatial_graph"):
        stcore.tl.domains(kept, n_clusters=2, **FAST)
    assert not [r for r in caplog.records if "without a neighbour" in r.getMessage()]
    alone = adata[~np.isin(np.arange(adata.n_obs), adata.obsp["spatial_connectivities"][0].indices)].copy()
    with pytest.raises(InputError, match=r"built before spots were removed"):      # spot 0 left without one
        stcore.tl.domains(alone, n_clusters=2, **FAST)
    assert not [r for r in caplog.records if "without a neighbour" in r.getMessage()]
    stcore.gr.spatial_graph(kept)
    with pytest.raises(AssertionError, match="after the work had started"):     # the checks pass: work starts
        stcore.tl.domains(kept, n_clusters=2, **FAST)
    sq = pytest.importorskip("squidpy", reason="squidpy's graph: the cellcharter extra")
    adata = _slide()                                     # squidpy's knn graph, then the same filter: refused too
    sq.gr.spatial_neighbors(adata, coord_type="generic", n_neighs=6)
    kept = adata[adata.obsm["spatial"][:, 0] > 150].copy()
    with pytest.raises(InputError, match=r"gives \d+ spots fewer than the 6 neighbours its knn graph gave each spot"):
        stcore.tl.domains(kept, n_clusters=2, **FAST)
    sq.gr.spatial_neighbors(kept, coord_type="generic", radius=120.0)     # a radius graph: no count to hold it to
    with pytest.raises(AssertionError, match="after the work had started"):
        stcore.tl.domains(kept, n_clusters=2, **FAST)


def test_a_knn_graph_with_each_spot_joined_to_itself_built_before_a_spot_was_removed_is_refused(no_work):
    """squidpy's knn graph with set_diag=True stores each spot as its own neighbour, one more entry a
    row: a spot that lost one of its 6 neighbours still had 6 entries, and the graph built before
    one spot was removed was taken as this slide's.  The neighbours other than the spot are counted."""
    sq = pytest.importorskip("squidpy", reason="squidpy's graph: the cellcharter extra")
    adata = _slide()
    sq.gr.spatial_neighbors(adata, coord_type="generic", n_neighs=6, set_diag=True)
    with pytest.raises(AssertionError, match="after the work had started"):      # as built: taken
        stcore.tl.domains(adata.copy(), n_clusters=2, **FAST)
    kept = adata[np.arange(adata.n_obs) != 27].copy()
    with pytest.raises(InputError, match=r"gives \d+ spots fewer than the 6 neighbours its knn graph gave each spot"):
        stcore.tl.domains(kept, n_clusters=2, **FAST)


def test_a_delaunay_graph_built_before_spots_were_removed_is_refused(no_work):
    """squidpy's Delaunay graph (delaunay=True) records no n_neighbors, so no count held it: kept
    after spots were filtered, the spots around each removed one lost the edges across the gap, and
    it was taken.  It is held to a triangulation of the spots left (on a square grid too, where
    points on one circle are triangulated either way); as built it is taken, with squidpy's set_diag,
    transform and percentile, and under the n_neighbors an older squidpy stored with it (refused as a
    knn graph of 6 neighbours before)."""
    sq = pytest.importorskip("squidpy", reason="squidpy's graph: the cellcharter extra")
    adata = _slide()
    for built in ({}, {"set_diag": True}, {"transform": "spectral"}, {"percentile": 95.0}):
        sq.gr.spatial_neighbors(adata, coord_type="generic", delaunay=True, **built)
        with pytest.raises(AssertionError, match="after the work had started"):      # as built: taken
            stcore.tl.domains(adata.copy(), n_clusters=2, **FAST)
    sq.gr.spatial_neighbors(adata, coord_type="generic", delaunay=True)
    kept = adata[np.random.default_rng(1).random(adata.n_obs) > 0.15]
    with pytest.raises(InputError, match=r"^obsp\['spatial_connectivities'\] is a Delaunay triangulation \(squidpy's "
                                         r"delaunay=True\) that lacks \d+ of the \d+ edges a triangulation of these "
                                         r"spots has, and gives \d+ spots fewer neighbours than it: it was built before "
                                         r"spots were removed.*Fix: build it again on these spots"):
        stcore.tl.domains(kept.copy(), n_clusters=2, **FAST)
    older = adata.copy()                                 # squidpy before its graph builders: n_neighbors 6 kept
    older.uns["spatial_neighbors"]["params"]["n_neighbors"] = 6
    with pytest.raises(AssertionError, match="after the work had started"):
        stcore.tl.domains(older, n_clusters=2, **FAST)
    ii, jj = np.meshgrid(np.arange(10), np.arange(10))     # a square grid (bins): four points on each circle
    grid = tiny_slide(n_side=10)
    del grid.obs["domain"]
    grid.obsm["spatial"] = np.column_stack([ii.ravel(), jj.ravel()]) * 8.0
    sq.gr.spatial_neighbors(grid, coord_type="generic", delaunay=True)
    with pytest.raises(AssertionError, match="after the work had started"):
        stcore.tl.domains(grid[np.random.default_rng(0).permutation(grid.n_obs)].copy(), n_clusters=2, **FAST)
    with pytest.raises(InputError, match=r"is a Delaunay triangulation .* built before spots were removed"):
        stcore.tl.domains(grid[np.arange(grid.n_obs) != 44].copy(), n_clusters=2, **FAST)


def test_spots_without_counts_are_refused_by_the_api(no_work):
    """The workflow's qc job drops spots whose counts are all 0; tl.domains put them into domains
    (on a 1,000-spot DLPFC crop, 50 emptied spots spread over 6 of 7 domains)."""
    adata = _slide()
    x = adata.X.toarray()
    x[[3, 9, 17]] = 0
    adata.X = sp.csr_matrix(x)
    with pytest.raises(InputError, match=r"^3 of 64 spots hold no counts \(every value 0\); they would be put into "
                                         r"domains without any signal.*Fix: keep the spots with counts"):
        stcore.tl.domains(adata, n_clusters=2, **FAST)


@pytest.mark.parametrize("flag", [["True"] * 60 + ["False"] * 4, [" true"] * 60 + ["FALSE "] * 4,
                                  [True] * 60 + [False] * 4, ["1"] * 60 + ["0"] * 4])
def test_spots_outside_the_tissue_are_refused_whatever_the_flag_is_written_as(flag, no_work):
    """obs['in_tissue'] as text 'True'/'False' (a CSV read without dtypes) passed the check."""
    adata = _slide()
    adata.obs["in_tissue"] = flag
    with pytest.raises(InputError, match=r"^4 of 64 spots are outside the tissue"):
        stcore.tl.domains(adata, n_clusters=2, **FAST)


def test_half_precision_values_are_read_as_float32(tmp_path, no_work):
    """A dense float16 X (written by a tool that saves space) failed with scipy's 'does not support
    dtype float16' outside the reader's message; it is read exactly as float32, by the workflow's
    reader and by tl.domains."""
    from stcore.io import read_slide

    adata = _slide()
    adata.X = adata.X.toarray().astype(np.float16)
    path = write(adata, tmp_path / "half.h5ad")
    read = read_slide(str(path), "h5ad")
    assert read.X.dtype == np.float32 and np.array_equal(read.X.toarray(), adata.X.astype(np.float32))
    with pytest.raises(AssertionError, match="after the work had started"):    # every check passed
        stcore.tl.domains(adata, n_clusters=2, **FAST)



def test_half_precision_values_beyond_its_largest_number_are_named(tmp_path, no_work):
    """Normalised values to a total of a million (CPM) written as float16 to save space: every value above
    65504, float16's largest (a gene of more than 6.6% of a spot's counts), became infinite when written
    (was: `X (values 'normalized') holds NaN or infinite values: ... Fix: store the slide's normalised
    values in X (before any centring)`, of values the source holds finite).  Named with float16 and the
    fix, by the workflow's reader and by tl.domains, for X and for a layer passed."""
    adata = _slide()
    x = adata.X.toarray()
    with np.errstate(over="ignore"):
        adata.X = (x / x.sum(axis=1, keepdims=True) * 1e6).astype(np.float16)
    beyond = int(np.isinf(adata.X).sum())
    assert beyond > 0
    message = (rf"X holds {beyond} infinite values \(in \d+ spots and \d+ genes\): it is stored as float16, whose "
               r"largest number is 65504, and these values were beyond it when they were written as float16.*"
               r"Fix: store X as float32 from its source")
    path = write(adata, tmp_path / "cpm.h5ad")
    with pytest.raises(InputError, match=r"cpm\.h5ad': " + message):
        prepare_slide(str(path), "h5ad", QCParams(), n_clusters=2, values="normalized")
    with pytest.raises(InputError, match=message):
        stcore.tl.domains(adata, n_clusters=2, values="normalized", **FAST)
    adata.layers["cpm"], adata.X = adata.X, x
    with pytest.raises(InputError, match=r"layers\['cpm'\] holds \d+ infinite values .*float16"):
        stcore.tl.domains(adata, n_clusters=2, values="normalized", layer="cpm", **FAST)


def test_counts_held_as_python_objects_are_read_as_their_numbers_and_text_is_named(no_work):
    """X as an array of Python objects: ``ad.AnnData(table)`` of a counts table with pandas' nullable
    integer columns (``read_csv(...).convert_dtypes()``, Int64), or of one read without ``index_col=0``
    whose first column holds the spots' names, or numbers written as text (was: scipy's ``ValueError:
    scipy.sparse does not support dtype object``, naming neither X nor a fix).  Numbers are read as
    numbers (the same domains and input digest as the counts stored as floats; a missing value is NaN,
    named by the count checks); values that are not numbers are named with the fix."""
    plain = _slide()
    table = pd.DataFrame(plain.X.toarray(), index=plain.obs_names, columns=plain.var_names).astype("Int64")
    held = _slide()
    held.X = table.to_numpy()
    assert held.X.dtype == object
    with pytest.raises(AssertionError, match="after the work had started"):    # every check passed
        stcore.tl.domains(held, n_clusters=2, **FAST)
    missing = _slide()
    gap = table.copy()
    gap.iloc[3, 4] = pd.NA
    missing.X = gap.to_numpy()
    with pytest.raises(InputError, match=r"NaN or infinite values: 1 of them.*spot 'spot0003', gene 'gene004'"):
        stcore.tl.domains(missing, n_clusters=2, **FAST)
    names = _slide()
    names.X = table.reset_index().iloc[:, :plain.n_vars].to_numpy()      # the spots' names as the first column
    with pytest.raises(InputError, match=r"X holds values that are not numbers \(dtype object\): 64 of them \(first: "
                                         r"'spot0000', spot 'spot0000', gene 'gene000'\); gene 'gene000' holds no number "
                                         r"in any spot: names read as a column of the table \(pd.read_csv without "
                                         r"index_col=0\?\)\. Fix: store the counts as numbers in X: .*index_col=0"):
        stcore.tl.domains(names, n_clusters=2, **FAST)
    text = _slide()
    text.X = plain.X.toarray().astype(str)
    with pytest.raises(InputError, match=r"X holds text \(dtype <U32\), not numbers \(first: '.*', spot 'spot0000', "
                                         r"gene 'gene000'\)\. Fix: store them as numbers: adata.X = "
                                         r"adata.X.astype\('float64'\)"):
        stcore.tl.domains(text, n_clusters=2, **FAST)
    layer = _slide()
    layer.layers["counts"] = table.to_numpy()
    layer.layers["counts"][0, 0] = "n/a"
    with pytest.raises(InputError, match=r"layers\['counts'\] holds values that are not numbers.*first: 'n/a'"):
        stcore.tl.domains(layer, layer="counts", n_clusters=2, **FAST)


def test_an_h5ad_of_text_counts_is_named_by_the_workflows_reader(tmp_path):
    """An .h5ad whose X is text (anndata writes an array of strings) was refused by scipy's 'does not
    support dtype object' in the qc job; now with the file, the first value, its spot and gene and the fix."""
    from stcore.io import read_slide

    adata = _slide()
    adata.X = adata.X.toarray().astype(str)
    path = write(adata, tmp_path / "text.h5ad")
    with pytest.raises(InputError, match=r"file '.*text.h5ad': X holds text \(dtype object\), not numbers \(first: "
                                         r"'.*', spot 'spot0000', gene 'gene000'\)\. Fix: store them as numbers"):
        read_slide(str(path), "h5ad")


def test_counts_held_as_python_objects_give_the_domains_of_the_counts():
    """Counts of pandas' nullable integers (an array of Python objects) train as the same counts stored as
    floats: the same embedding and the same input digest."""
    plain, held = _slide(), _slide()
    held.X = pd.DataFrame(plain.X.toarray()).astype("Int64").to_numpy()
    for adata in (plain, held):
        stcore.tl.domains(adata, n_clusters=2, **FAST)
    assert np.array_equal(held.obsm["X_graphst"], plain.obsm["X_graphst"])
    assert held.uns["stcore"]["input_digest"] == plain.uns["stcore"]["input_digest"]


def test_entries_stored_twice_for_a_spot_and_gene_select_the_same_genes():
    """A count split over two stored entries of one (spot, gene) (a CSR built from its arrays by hand):
    the same matrix by value, but scanpy's seurat_v3 variances square each stored entry, so other genes
    were selected without a word.  as_csr adds them up, as scipy reads them."""
    from stcore.hvg import HVGParams, run_hvg
    from stcore.io import as_csr

    adata = _slide()
    x = sp.csr_matrix(adata.X).tocoo()
    half = np.floor(x.data / 2)
    rows, cols, data = np.r_[x.row, x.row], np.r_[x.col, x.col], np.r_[x.data - half, half]
    keep = data != 0
    order = np.lexsort((cols[keep], rows[keep]))
    split = sp.csr_matrix((data[keep][order], cols[keep][order],
                           np.r_[0, np.cumsum(np.bincount(rows[keep], minlength=x.shape[0]))]), shape=x.shape)
    assert not split.has_canonical_format and abs(split - adata.X).sum() == 0
    chosen = []
    for matrix in (adata.X, split):
        counts = ad.AnnData(as_csr(matrix), obs=adata.obs[[]], var=adata.var[[]])
        chosen.append(list(run_hvg(counts, HVGParams(n_top_genes=10)).var_names))
    assert chosen[0] == chosen[1]


def _documented_names(*files: Path) -> set[str]:
    """Every ``stcore.<module>.<name>`` (and deeper) the files name."""
    names = set()
    for f in files:
        names |= set(re.findall(r"\bstcore(?:\.[A-Za-z_]\w*){2,}", f.read_text()))
    return names


def test_every_name_the_notebook_docs_give_resolves_after_import_stcore():
    """The README and docs/notebook.md name calls as a notebook makes them after a plain ``import
    stcore`` (``stcore.simulate.write_visium`` was an AttributeError there): each resolves, in a
    fresh interpreter.  Every such name in docs/*.md exists in the package."""
    import importlib
    import subprocess
    import sys

    names = sorted(_documented_names(REPO / "README.md", REPO / "docs" / "notebook.md"))
    assert {"stcore.simulate.write_visium", "stcore.export.domains_spatialdata", "stcore.tl.domains"} <= set(names)
    script = ("import functools, stcore, sys\n"
              "bad = []\n"
              "for name in sys.argv[1:]:\n"
              "    try: functools.reduce(getattr, name.split('.')[1:], stcore)\n"
              "    except AttributeError as e: bad.append(f'{name}: {e}')\n"
              "print('\\n'.join(bad)); sys.exit(1 if bad else 0)\n")
    run = subprocess.run([sys.executable, "-c", script, *names], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stdout + run.stderr
    for name in sorted(_documented_names(REPO / "README.md", *(REPO / "docs").glob("*.md"))):
        parts = name.split(".")
        for cut in range(len(parts) - 1, 0, -1):             # the longest prefix that is a module, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for part in parts[cut:]:
                obj = getattr(obj, part, None)
            assert obj is not None, f"{name}, named in the docs, is not in the package"
            break
    import stcore

    assert not hasattr(stcore, "no_such_module")                 # other names stay AttributeErrors


def test_coordinates_under_another_key_are_pointed_to_before_obs_columns():
    """obsm['X_spatial'] holding the positions and obs the array's grid indices: the fix names the
    key (it named obs['array_col'], obs['array_row'], the grid indices, as the coordinates)."""
    from stcore.validate import check_coordinates

    adata = _slide()
    _coordinates_as_x_spatial(adata)
    with pytest.raises(InputError) as err:
        check_coordinates(adata)
    assert err.value.fix == ("store them under 'spatial': adata.obsm['spatial'] = adata.obsm['X_spatial'] "
                             "(stcore.tl.domains also reads them with spatial_key='X_spatial')")
    assert np.array_equal(check_coordinates(adata, "X_spatial"), tiny_slide().obsm["spatial"])


@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
def test_a_slide_read_backed_is_read_into_memory_once(tmp_path, dense):
    """ad.read_h5ad(path, backed='r') keeps X on disk (anndata's sparse dataset, an h5py dataset):
    tl.domains stopped with scipy's 'does not support dtype object'; X is read, and the result is
    the in-memory slide's (copy=True gives an AnnData in memory)."""
    adata = _slide()
    if dense:
        adata.X = adata.X.toarray()
    path = write(adata, tmp_path / "slide.h5ad")
    want = stcore.tl.domains(ad.read_h5ad(path), n_clusters=2, copy=True, **FAST).obs["domain"]
    backed = ad.read_h5ad(path, backed="r")
    stcore.tl.domains(backed, n_clusters=2, **FAST)
    assert backed.isbacked and backed.obs["domain"].equals(want)
    out = stcore.tl.domains(ad.read_h5ad(path, backed="r"), n_clusters=2, copy=True, **FAST)
    assert not out.isbacked and out.obs["domain"].equals(want)
    graph = stcore.gr.spatial_graph(ad.read_h5ad(path, backed="r"), copy=True)
    assert not graph.isbacked and (graph.obsp["spatial_connectivities"] != out.obsp["spatial_connectivities"]).nnz == 0


def test_a_part_of_a_slide_read_backed_gives_the_parts_domains():
    """A part of a slide opened backed, ``ad.read_h5ad(path, backed='r')[mask]`` (the tissue region a
    user cares about, without reading the whole slide): its X is already the part's rows in memory,
    which tl.domains took for a dataset on disk and failed on with scipy's 'The truth value of an array
    with more than one element is ambiguous'; with copy=True it gives the part's domains read in memory,
    and in place (anndata cannot turn a backed view into an object of its own) it is refused before
    any work, naming the fix; gr.spatial_graph likewise, and pl.domains, which keeps the colours it draws in
    uns (was: anndata's 'To copy an AnnData object in backed mode, pass a filename')."""
    import tempfile

    adata = _slide()
    with tempfile.TemporaryDirectory() as tmp:
        path = write(adata, Path(tmp) / "slide.h5ad")
        mask = adata.obsm["spatial"][:, 0] < np.median(adata.obsm["spatial"][:, 0])
        want = stcore.tl.domains(ad.read_h5ad(path)[mask].copy(), n_clusters=2, copy=True, **FAST)
        part = ad.read_h5ad(path, backed="r")[mask]
        out = stcore.tl.domains(part, n_clusters=2, copy=True, **FAST)
        assert not out.isbacked and out.n_obs == int(mask.sum())
        assert out.obs["domain"].equals(want.obs["domain"])
        assert np.array_equal(out.obsm["X_graphst"], want.obsm["X_graphst"])
        graph = stcore.gr.spatial_graph(ad.read_h5ad(path, backed="r")[mask], copy=True)
        assert (graph.obsp["spatial_connectivities"] != want.obsp["spatial_connectivities"]).nnz == 0
        for call, name in ((lambda a: stcore.tl.domains(a, n_clusters=2, **FAST), "tl.domains"),
                           (stcore.gr.spatial_graph, "gr.spatial_graph")):
            with pytest.raises(InputError, match=rf"^stcore\.{name} writes its results into the object given, and "
                                                 r"this is a view of a slide opened backed .*\. Fix: take the part into "
                                                 r"memory first, part = adata\[\.\.\.\]\.to_memory\(\), .*copy=True"):
                call(ad.read_h5ad(path, backed="r")[mask])
        out.write_h5ad(Path(tmp) / "part.h5ad")
        drawn = ad.read_h5ad(Path(tmp) / "part.h5ad", backed="r")
        with pytest.raises(InputError, match=r"^stcore\.pl\.domains writes the colours it draws .* into the object given, "
                                             r"and this is a view of a slide opened backed .*\. Fix: take the part into "
                                             r"memory first, part = adata\[\.\.\.\]\.to_memory\(\), then "
                                             r"stcore\.pl\.domains\(part, \.\.\.\)$"):
            stcore.pl.domains(drawn[:10])


def test_the_graph_api_refuses_duplicate_spot_ids_as_tl_domains_does(no_work):
    """stcore.gr.spatial_graph: duplicate spot ids are refused with tl.domains' message (was: a
    graph whose rows could not be told apart by id); duplicate gene ids do not concern it."""
    adata = _slide()
    duplicate_spot(adata)
    with pytest.raises(InputError, match=r"^1 duplicate spot ids \(first: 'spot0004'\)") as graph:
        stcore.gr.spatial_graph(adata)
    with pytest.raises(InputError) as domains:
        stcore.tl.domains(adata, n_clusters=3, **FAST)
    assert str(graph.value) == str(domains.value)
    assert "spatial_connectivities" not in adata.obsp
    genes = _slide()
    genes.var_names = ["g0"] * 2 + list(genes.var_names[2:])
    stcore.gr.spatial_graph(genes)
    assert "spatial_connectivities" in genes.obsp


def test_a_domains_h5ad_written_before_it_recorded_its_graphs_settings_is_named_with_the_fix(tmp_path):
    """A domains.h5ad of an earlier version (its graph's params name no mode or n_neighbors) was refused as
    'a Delaunay triangulation ... built before spots were removed'; it is named as what it is, with the fixes,
    and the first fix lets tl.domains run."""
    out = _workflow_domains_h5ad(_slide(), tmp_path)
    for k in ("mode", "n_neighbors", "radius"):
        out.uns["spatial_neighbors"]["params"].pop(k)
    with pytest.raises(InputError, match=r"obsp\['spatial_connectivities'\] is a graph stcore stored before it "
                                         r"recorded the graph's settings \(a workflow's domains\.h5ad .*Fix: del "
                                         r"adata\.obsp\['spatial_connectivities'\] and tl\.domains builds the "
                                         r"workflow's graph .*or write the file again .*snakemake --forcerun export"):
        stcore.tl.domains(out, n_clusters=2, seed=1, **FAST)
    del out.obsp["spatial_connectivities"]
    stcore.tl.domains(out, n_clusters=2, seed=1, **FAST)
    assert out.uns["stcore"]["seed"] == 1 and out.uns["spatial_neighbors"]["params"]["mode"] == "knn"


def test_fewer_components_than_n_pcs_are_recorded_as_used():
    """uns['stcore']['cluster'] recorded n_pcs 50, as asked, where the 30 genes' reconstruction gave 30
    components; the components used, as many as asked, are recorded alone, and the domains are those of
    n_pcs 30 (which components are clustered is unchanged)."""
    fewer, same = _slide(), _slide()
    stcore.tl.domains(fewer, n_clusters=2, **(FAST | {"cluster": {"n_init": 1, "n_pcs": 50}}))
    stcore.tl.domains(same, n_clusters=2, **(FAST | {"cluster": {"n_init": 1, "n_pcs": 30}}))
    assert fewer.uns["stcore"]["cluster"]["n_pcs"] == 30 and fewer.uns["stcore"]["cluster"]["n_pcs_asked"] == 50
    assert same.uns["stcore"]["cluster"]["n_pcs"] == 30 and "n_pcs_asked" not in same.uns["stcore"]["cluster"]
    assert (fewer.obs["domain"] == same.obs["domain"]).all()


def test_the_workflows_record_holds_the_components_clustered(tmp_path):
    """The workflow's domains.h5ad recorded cluster.n_pcs 30, as asked, for an embedding of 20
    dimensions (20 components clustered); a combination records each method's from its own output."""
    from types import SimpleNamespace

    from slides import script
    from stcore.methods import MethodResult

    asked = {"algorithm": "mclust", "input": "embedding", "n_pcs": 30}
    out = _workflow_domains_h5ad(_slide(), tmp_path, cluster=asked, dims=20)
    assert out.uns["stcore"]["cluster"] == asked | {"n_pcs": 20, "n_pcs_asked": 30}
    MethodResult(embedding=np.zeros((64, 40), np.float32), machine={}).save(tmp_path / "wide.npz")
    members = SimpleNamespace(params=SimpleNamespace(members=["a", "b", "c"], cluster={
        "a": asked, "b": asked, "c": {"algorithm": "own"}}), input=SimpleNamespace(
        member_npz=[str(tmp_path / "train.npz"), str(tmp_path / "wide.npz"), str(tmp_path / "wide.npz")]))
    assert script("export").clustered(members, None) == {"a": asked | {"n_pcs": 20, "n_pcs_asked": 30}, "b": asked,
                                                         "c": {"algorithm": "own"}}


def test_fewer_genes_than_n_top_genes_are_recorded_as_used():
    """uns['stcore']['hvg'] recorded n_top_genes 3000, as asked, where the slide's 40 genes were used."""
    adata = _slide()
    stcore.tl.domains(adata, n_clusters=2, **(FAST | {"n_top_genes": 3000}))
    assert adata.uns["stcore"]["hvg"] == {"n_top_genes": 40, "n_top_genes_asked": 3000, "flavor": "seurat_v3"}


def test_the_readmes_scanpy_plot_line_draws_a_slide_with_or_without_a_tissue_image(tmp_path):
    """The README's ``sc.pl.spatial`` line (``spot_size=100`` alone) raised KeyError 'images' on an .h5ad
    whose uns['spatial'] holds scale factors and no image (DLPFC 151673 as distributed), and StopIteration
    on a Visium folder read without its tissue images (stcore.read.visium keeps ``images: {}``); it draws
    those, a slide without uns['spatial'] and one with its images."""
    import shutil

    import matplotlib
    import scanpy as sc

    from stcore.simulate import write_visium

    matplotlib.use("Agg")
    line = next(ln.split("  #")[0] for ln in (REPO / "README.md").read_text().splitlines()
                if ln.startswith("sc.pl.spatial(adata"))
    slide = tiny_slide()
    slide.obsm["spatial"] = slide.obsm["spatial"] * 100.0
    write_visium(slide, tmp_path / "outs")
    with_images = stcore.read.visium(tmp_path / "outs")
    shutil.copytree(tmp_path / "outs", tmp_path / "bare")
    for png in (tmp_path / "bare" / "spatial").glob("*.png"):
        png.unlink()
    without_images = stcore.read.visium(tmp_path / "bare")
    assert without_images.uns["spatial"]["bare"]["images"] == {}
    scale_only = tiny_slide()
    scale_only.uns["spatial"] = {"s": {"scalefactors": {"spot_diameter_fullres": 0.5, "tissue_hires_scalef": 0.2}}}
    for adata in (with_images, without_images, scale_only, tiny_slide()):
        adata.obs["domain"] = pd.Categorical(np.arange(adata.n_obs) % 2)
        eval(line.replace(")", ", show=False)"), {"sc": sc, "adata": adata})


def test_an_h5ads_spots_off_its_tissue_image_are_said_by_the_qc_job_and_tl_domains(no_work, tmp_path, caplog):
    """An .h5ad (sc.read_visium's output saved) whose obsm['spatial'] is at the hires image's scale beside its
    images and scale factors: the qc job and tl.domains took it without a word, and the run's domains.h5ad kept
    the images, so sc.pl.spatial(adata, color='domain') drew the spots in the image's corner (DLPFC 151673 at
    tissue_hires_scalef: on 15% of the tissue's extent).  Now one warning each, naming the file, the library,
    the scale and the fix; the qc job leaves the images out of the run's files (as the Visium reader does for
    another run's scale factors), tl.domains keeps the object's own.  Full-resolution pixels pass without a word."""
    from stcore.simulate import write_visium

    slide = _slide()
    slide.obsm["spatial"] = slide.obsm["spatial"] * 16     # a Visium slide's extent: tissue_hires_scalef 0.16
    good = stcore.read.visium(write_visium(slide, tmp_path / "outs"))
    (library,) = good.uns["spatial"]
    scalef = good.uns["spatial"][library]["scalefactors"]["tissue_hires_scalef"]
    hires = good.copy()
    hires.obsm["spatial"] = good.obsm["spatial"] * scalef

    def said(records) -> list[str]:
        return [r.getMessage() for r in records if "uns['spatial']" in r.getMessage()]

    for adata, name in ((good, "good.h5ad"), (hires, "hires.h5ad")):
        path = write(adata, tmp_path / name)
        caplog.clear()
        with caplog.at_level("WARNING", logger="stcore"):
            qc, _ = prepare_slide(str(path), "h5ad", QCParams(), n_clusters=2)
        kept = qc.uns["spatial"][library]
        assert kept["scalefactors"]["tissue_hires_scalef"] == scalef
        if adata is good:
            assert set(kept["images"]) == {"hires", "lowres"} and not said(caplog.records), caplog.text
            continue
        assert kept["images"] == {}
        (line,) = said(caplog.records)
        assert re.fullmatch(
            rf"{re.escape(str(path))}: uns\['spatial'\]\['{library}'\]: the spots lie .* apart .*: the coordinates are "
            rf"not the image's full-resolution pixels but at the hires image's scale \(tissue_hires_scalef "
            rf"{scalef:g}\), and the spots would be drawn on {scalef:.0%} of the tissue's extent; the hires and "
            rf"lowres images of the slide are left out of the run's files \(qc\.h5ad, domains\.h5ad\), and its figures are "
            rf"drawn without them \(sc\.pl\.spatial\(adata, color='domain', img_key=None\) draws domains\.h5ad\)\. "
            rf"Fix: store the spots' full-resolution pixel coordinates in obsm\['spatial'\] \(as Space Ranger's "
            rf"tissue_positions give them: adata\.obsm\['spatial'\] = adata\.obsm\['spatial'\] / {scalef:g}\), "
            rf"or the scale factors of the image they were measured on", line), line
    for adata in (good, hires):
        caplog.clear()
        with caplog.at_level("WARNING", logger="stcore"), pytest.raises(AssertionError, match="after the work"):
            stcore.tl.domains(adata, n_clusters=2, **FAST)        # stopped at the work (no_work): checked before it
        assert set(adata.uns["spatial"][library]["images"]) == {"hires", "lowres"}
        if adata is good:
            assert not said(caplog.records), caplog.text
            continue
        (line,) = said(caplog.records)
        assert re.fullmatch(
            rf"uns\['spatial'\]\['{library}'\]: the spots lie .* at the hires image's scale .*; the hires and lowres "
            rf"images in uns\['spatial'\] stay as given, and sc\.pl\.spatial draws the spots on them out of place "
            rf"\(stcore\.pl\.domains draws the map without them\)\. Fix: .*adata\.obsm\['spatial'\] = "
            rf"adata\.obsm\['spatial'\] / {scalef:g}\), or the scale factors of the image they were measured on",
            line), line


def test_counts_logged_or_square_rooted_without_normalising_are_refused_whatever_values_says(no_work, tmp_path):
    """Raw counts transformed without normalising each spot: log1p or log2(1 + x) given as values
    'normalized' (logged a second time, each spot's depth kept), square roots given as 'log_normalized',
    'normalized' or as counts with hvg_flavor 'seurat' (were taken without a word: DLPFC 151673, graphst at
    100 epochs, seeds 0-2, log1p of its counts as 'normalized' ARI 0.276, 0.299, 0.225 where its counts give
    0.380, 0.343, 0.365).  The
    qc job and tl.domains alike; log-normalised values of target_sum 1 (every value near 0, its expm1 near
    the whole number 0) are not taken for the log1p of counts."""
    def transformed(fn) -> ad.AnnData:
        adata = _slide()
        adata.X = sp.csr_matrix(fn(adata.X.toarray()).astype(np.float32))
        return adata

    cases = [
        (np.log1p, "normalized", {}, r"X holds the log1p of whole numbers \(expm1 of every value is whole\): raw counts "
                                     r"logged without normalising each spot, or SCTransform's corrected counts "
                                     r"logged \(Seurat's SCT assay data\), but values is normalized: they would be "
                                     r"logged \(log1p\) over the transform.*Fix: store the raw counts in X with values "
                                     r"counts \(np\.rint\(np\.expm1\(X\)\) where raw counts were logged"),
        (lambda x: np.log2(1 + x), "normalized", {}, r"X holds log2\(1 \+ x\) values .*values is normalized"),
        (np.sqrt, "log_normalized", {}, r"X holds the square roots of whole numbers \(the square of every value is "
                                        r"whole\): raw counts square-rooted without normalising each spot, but values "
                                        r"is log_normalized.*Fix: store the raw counts in X \(its values squared and "
                                        r"rounded: adata\.X\.data = np\.rint\(adata\.X\.data \*\* 2\)"),
        (np.sqrt, "normalized", {}, r"X holds the square roots of whole numbers .*values is normalized"),
        (np.sqrt, "counts", {"hvg_flavor": "seurat"}, r"X holds the square roots of whole numbers .*values is counts "
                                                      r"with an hvg flavour for counts that are not whole numbers"),
    ]
    for fn, values, kw, message in cases:
        with pytest.raises(InputError, match=message):
            stcore.tl.domains(transformed(fn), n_clusters=2, values=values, **kw, **FAST)
        path = write(transformed(fn), tmp_path / "transformed.h5ad")
        with pytest.raises(InputError, match=r"transformed\.h5ad': " + message):
            prepare_slide(str(path), "h5ad", QCParams(), n_clusters=2, values=values,
                          hvg_flavor=kw.get("hvg_flavor", "seurat_v3"))
    per_one = transformed(lambda x: np.log1p(x / x.sum(axis=1, keepdims=True)))     # normalize_total to 1, log1p
    path = write(per_one, tmp_path / "per_one.h5ad")
    prepare_slide(str(path), "h5ad", QCParams(), n_clusters=2, values="log_normalized")


def test_sctransform_data_is_refused_naming_its_corrected_counts(no_work, tmp_path):
    """Seurat's SCTransform data (log1p of its corrected counts: whole numbers at one depth) given as
    'log_normalized' is refused as the log1p of whole numbers; the message said only 'raw counts logged
    without normalising each spot', and its fix (np.rint(np.expm1(X))) gave back the corrected counts,
    not the raw ones.  Now it names both and the Spatial (or RNA) assay's counts; the qc job and
    tl.domains alike."""
    adata = _slide()
    x = adata.X.toarray()
    depth = x.sum(axis=1, keepdims=True)
    corrected = np.rint(x / depth * np.median(depth))             # whole numbers at the median depth
    adata.X = sp.csr_matrix(np.log1p(corrected).astype(np.float32))
    message = (r"X holds the log1p of whole numbers \(expm1 of every value is whole\): raw counts logged without "
               r"normalising each spot, or SCTransform's corrected counts logged \(Seurat's SCT assay data\), but "
               r"values is log_normalized\. Fix: store the raw counts in X with values counts .*for SCTransform's "
               r"data, the counts of Seurat's Spatial or RNA assay, as expm1 gives SCT's corrected counts")
    with pytest.raises(InputError, match=message):
        stcore.tl.domains(adata.copy(), n_clusters=2, values="log_normalized", **FAST)
    path = write(adata, tmp_path / "sct.h5ad")
    with pytest.raises(InputError, match=r"sct\.h5ad': " + message):
        prepare_slide(str(path), "h5ad", QCParams(), n_clusters=2, values="log_normalized")


def test_counts_wrapped_by_a_small_integer_type_are_named(no_work, tmp_path):
    """Counts cast to int8 (or int16): those above 127 (32767) wrap round to negative numbers, which
    were refused as scaled values ('negative values ... not scaled values', or 'as after sc.pp.scale'
    with whole numbers in a layer).  Now the cast is named, with the type's largest number and the
    fix; the qc job and tl.domains alike."""
    for dtype, big, top in ((np.int8, 200, 127), (np.int16, 40000, 32767)):
        adata = _slide()
        x = adata.X.toarray()
        x[0, 0] = big
        adata.X = sp.csr_matrix(x.astype(np.int64).astype(dtype))
        name = np.dtype(dtype).name
        message = (rf"the count matrix is stored as {name} and holds 1 negative value \(down to -\d+\): counts above "
                   rf"{top} do not fit {name} and wrap round to negative numbers when cast to it "
                   rf"\(X\.astype\(np\.{name}\)\), not scaled values\. Fix: store the counts as int32 or float32 "
                   rf"from their source")
        with pytest.raises(InputError, match=message):
            stcore.tl.domains(adata.copy(), n_clusters=2, **FAST)
        path = write(adata, tmp_path / "wrapped.h5ad")
        with pytest.raises(InputError, match=r"wrapped\.h5ad': " + message):
            prepare_slide(str(path), "h5ad", QCParams(), n_clusters=2)
        adata.layers["counts"] = sp.csr_matrix(x)             # the counts kept beside: still the cast named
        with pytest.raises(InputError, match=message):
            stcore.tl.domains(adata, n_clusters=2, **FAST)


def test_values_scaled_per_gene_without_centring_are_refused(no_work, tmp_path):
    """GraphST's own preprocess (normalize_total, log1p, then sc.pp.scale(zero_center=False, max_value=10)):
    values that stay non-negative, so no negative value shows the scaling.  Given as 'log_normalized' or
    'normalized' they were taken without a word: the genes selected on values where every gene varies
    alike (DLPFC 151673, graphst at 100 epochs, seeds 0-2: ARI 0.269, 0.319, 0.287 as log_normalized, where
    its counts give 0.380, 0.343, 0.365 and the values before the scaling 0.317, 0.320, 0.303).  Refused by
    the qc job and tl.domains; the log-normalised values before the scaling pass."""
    import scanpy as sc

    adata = _slide()
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    logged = adata.copy()
    sc.pp.scale(adata, zero_center=False, max_value=10)
    del adata.uns["log1p"]
    message = (r"X holds values scaled per gene: \d+% of its 40 genes that vary have a standard deviation of exactly "
               r"1, as sc\.pp\.scale leaves them \(here without centring: zero_center=False, as GraphST's preprocess "
               r"runs it\), not {} \(values is {}\).*Fix: store the raw counts in X \(the slide before its "
               r"preprocessing\) with values counts, or the log-normalised values before the scaling")
    for values, kind in (("log_normalized", "log-normalised values"), ("normalized", "normalised values")):
        with pytest.raises(InputError, match=message.format(kind, values)):
            stcore.tl.domains(adata.copy(), n_clusters=2, values=values, **FAST)
        path = write(adata, tmp_path / "scaled.h5ad")
        with pytest.raises(InputError, match=r"scaled\.h5ad': " + message.format(kind, values)):
            prepare_slide(str(path), "h5ad", QCParams(), n_clusters=2, values=values)
    with pytest.raises(InputError, match=message.format("counts", "counts")):
        stcore.tl.domains(adata.copy(), n_clusters=2, hvg_flavor="seurat", **FAST)
    with pytest.raises(AssertionError, match="after the work had started"):      # every check passed
        stcore.tl.domains(logged, n_clusters=2, values="log_normalized", **FAST)
    adata.layers["counts"] = _slide().X                 # the counts kept beside, as scanpy's tutorials keep them
    beside = (r"X holds values scaled per gene \(each gene's standard deviation 1, as after sc\.pp\.scale\), and "
              r"layers\['counts'\] holds whole numbers: the raw counts\? Fix: ")
    with pytest.raises(InputError, match=beside + r"pass layer='counts'"):
        stcore.tl.domains(adata.copy(), n_clusters=2, values="log_normalized", **FAST)
    path = write(adata, tmp_path / "beside.h5ad")
    with pytest.raises(InputError, match=beside + r"store them in X: adata\.X = adata\.layers\['counts'\]"):
        prepare_slide(str(path), "h5ad", QCParams(), n_clusters=2, values="log_normalized")


def test_normalised_values_of_a_spots_fractions_are_warned_of(no_work, tmp_path, caplog):
    """Values normalised to a total of 1 a spot (normalize_total(target_sum=1): each gene's fraction), given
    as values 'normalized': the hvg step's log1p is nearly linear below 0.1, so they were used almost
    unlogged without a word (DLPFC 151673, graphst at 100 epochs, seeds 0, 1: ARI 0.295, 0.268, where the
    same values times 10,000 give 0.317, 0.320).  Warned of by the qc job and tl.domains, with the fix; the
    same values at 10,000 a spot are not."""
    def normalised(total: float) -> ad.AnnData:
        adata = _slide()
        x = adata.X.toarray()
        adata.X = sp.csr_matrix((x / x.sum(axis=1, keepdims=True) * total).astype(np.float32))
        return adata

    warning = (r"X holds normalised values of a small scale \(90% of them below 0\.\d+, as a spot's fractions of its "
               r"total are: normalize_total to 1\): log1p, which the hvg step takes of values normalized, is nearly "
               r"linear there, so they would be used almost unlogged\. Fix: scale them to a count's depth before the "
               r"run, e\.g\. adata\.X = adata\.X \* 1e4")
    for total, warned in ((1.0, True), (1e4, False)):
        caplog.clear()
        with caplog.at_level("WARNING"), pytest.raises(AssertionError, match="after the work had started"):
            stcore.tl.domains(normalised(total), n_clusters=2, values="normalized", **FAST)
        assert bool(re.search(warning, caplog.text)) is warned
        caplog.clear()
        path = write(normalised(total), tmp_path / "fractions.h5ad")
        with caplog.at_level("WARNING"):
            prepare_slide(str(path), "h5ad", QCParams(), n_clusters=2, values="normalized")
        assert bool(re.search(r"fractions\.h5ad: " + warning, caplog.text)) is warned


def _sparse_counts(n_side: int = 14, n_genes: int = 2000, seed: int = 0) -> ad.AnnData:
    """A slide of counts as sparse as a Visium slide's (most values 0, then 1), its spots' depths
    spread as real ones are (lognormal, sd 0.5), on the tiny slide's grid."""
    grid = tiny_slide(n_side=n_side)
    rng = np.random.default_rng(seed)
    rates = rng.gamma(0.3, 1.0, n_genes)
    depth = rng.lognormal(0.0, 0.5, grid.n_obs)
    counts = rng.poisson(np.outer(depth, rates)).astype(np.float32)
    return ad.AnnData(sp.csr_matrix(counts), obs=pd.DataFrame(index=grid.obs_names),
                      var=pd.DataFrame(index=[f"gene{g:04d}" for g in range(n_genes)]),
                      obsm={"spatial": grid.obsm["spatial"]})


def test_normalised_values_rounded_at_the_median_total_are_named(no_work, tmp_path):
    """Counts normalised to the median total (scanpy's normalize_total without target_sum, or divided by
    size factors) and rounded to whole numbers were taken as counts without a word: DLPFC 151673 so,
    graphst at 100 epochs, seed 0, ARI 0.322 against the annotation where its counts give 0.380.  Their
    spots scaled up by 1.5 or more hold no 1 though they hold many 2s, which raw counts never do; the
    qc job and tl.domains now name them, given as counts or as normalized.  The raw counts pass."""
    import scanpy as sc

    adata = _sparse_counts()
    stcore.validate.check_values_match(adata.X, "counts", whole=True)
    sc.pp.normalize_total(adata)
    adata.X.data = np.rint(adata.X.data)
    adata.X.eliminate_zeros()
    message = (r"the count matrix holds whole numbers, but \d+ of its 196 spots hold no value of 1 and 50 or more of "
               r"their smallest value, 2 or more \(first: row \d+, \d+ values of \d\).*normalised values rounded to "
               r"whole numbers \(normalize_total to the median total, or counts divided by size factors, then "
               r"rounding\).*Fix: store the raw counts in X")
    with pytest.raises(InputError, match="^" + message):
        stcore.tl.domains(adata.copy(), n_clusters=2, **FAST)
    path = write(adata, tmp_path / "rounded.h5ad")
    with pytest.raises(InputError, match=rf"^file '{re.escape(str(path))}': {message}"):
        prepare_slide(str(path), "h5ad", QCParams(), n_clusters=2)
    # said to be normalized, they were refused as raw counts with the fix 'set values to counts', which
    # then took them as counts; they are named as what they are, with the counts as the fix
    told = message.replace("the count matrix holds", "X holds")
    with pytest.raises(InputError, match="^" + told + r" with values counts"):
        stcore.tl.domains(adata.copy(), n_clusters=2, values="normalized", hvg_flavor="seurat", **FAST)
    with pytest.raises(InputError, match=rf"^file '{re.escape(str(path))}': {told}"):
        prepare_slide(str(path), "h5ad", QCParams(), n_clusters=2, values="normalized", hvg_flavor="seurat")


def test_normalised_values_rounded_at_the_median_total_given_as_log_normalized_are_named(no_work, tmp_path):
    """The same rounded normalised values given as log_normalized were refused as raw counts, with the fix 'set
    values to counts', which the next run refused as rounded normalised values; they are named as what they are
    at once, with the counts as the fix; normalised values rounded at one total (normalize_total to 10,000) given as
    log_normalized were refused likewise as raw counts, and are named with values normalized as the fix.  The raw
    counts given as log_normalized are still named as counts."""
    import scanpy as sc

    adata = _sparse_counts()
    counts = write(adata, tmp_path / "counts.h5ad")
    with pytest.raises(InputError, match=r"raw counts rather than log-normalised values, but values is "
                                         r"log_normalized\. Fix: set values to counts"):
        prepare_slide(str(counts), "h5ad", QCParams(), n_clusters=2, values="log_normalized")
    sc.pp.normalize_total(adata)
    adata.X.data = np.rint(adata.X.data)
    adata.X.eliminate_zeros()
    message = (r"X holds whole numbers, but \d+ of its 196 spots hold no value of 1 and 50 or more of their smallest "
               r"value, 2 or more .*normalised values rounded to whole numbers .*; not log-normalised values, nor "
               r"normalised values as measured: .*Fix: store the raw counts in X with values counts")
    with pytest.raises(InputError, match="^" + message):
        stcore.tl.domains(adata.copy(), n_clusters=2, values="log_normalized", **FAST)
    path = write(adata, tmp_path / "rounded.h5ad")
    with pytest.raises(InputError, match=rf"^file '{re.escape(str(path))}': {message}"):
        prepare_slide(str(path), "h5ad", QCParams(), n_clusters=2, values="log_normalized")
    # rounded at one total (normalize_total to 10,000): named as such, with values normalized, which reads them
    adata = _sparse_counts()
    sc.pp.normalize_total(adata, target_sum=1e4)
    adata.X.data = np.rint(adata.X.data)
    adata.X.eliminate_zeros()
    with pytest.raises(InputError, match=r"^X holds whole numbers whose spots all sum to about one total \([\d.]+, each "
                                         r"within [\d.]+ of it: .*not log-normalised values; they would be taken as "
                                         r"already logged\. Fix: set values to normalized"):
        stcore.tl.domains(adata.copy(), n_clusters=2, values="log_normalized", **FAST)
    stcore.validate.check_values_match(adata.X, "normalized")


def test_the_shared_slides_of_counts_hold_no_spot_without_ones():
    """The rounded normalised values' refusal leaves raw counts: no spot of the shared slides of counts
    (DLPFC, STARmap, osmFISH) holds 50 values of its smallest above 1 and no 1; the same DLPFC slide
    normalised to its median total and rounded is refused."""
    from conftest import DATA, need_data
    from stcore.validate import _spots_without_ones

    need_data("DLPFC", "151673.h5ad")
    for path in sorted(DATA.glob("*/*.h5ad")):
        x = ad.read_h5ad(path).X
        if np.array_equal(x.data, np.rint(x.data)):              # MERFISH holds normalised values
            assert _spots_without_ones(x) is None, path.name
            stcore.validate.check_values_match(x, "counts", whole=True)
    x = sp.csr_matrix(ad.read_h5ad(DATA / "DLPFC" / "151673.h5ad").X, dtype=np.float64)
    totals = np.asarray(x.sum(axis=1)).ravel()
    x = sp.csr_matrix(sp.diags(np.median(totals) / totals) @ x)
    x.data = np.rint(x.data)
    x.eliminate_zeros()
    assert _spots_without_ones(x)[:2] == (885, 3639)


def test_labels_assigned_to_a_column_a_call_wrote_are_not_overwritten():
    """obs['domain'] written by tl.domains, then labels assigned to it (here the annotation; one seed's picked, domains
    merged by hand likewise): the next tl.domains call with the default key wrote over them without a word, as the
    record listed the column as its own.  Now refused before any work, naming the call and the fixes; renamed domains
    (the same grouping) are still the call's and are replaced."""
    adata = tiny_slide()
    adata.obs["truth"] = adata.obs.pop("domain")
    stcore.tl.domains(adata, n_clusters=2, **FAST)
    adata.obs["domain"] = adata.obs["domain"].cat.rename_categories(lambda c: f"layer {c}")
    stcore.tl.domains(adata, n_clusters=2, seed=1, **FAST)                    # renamed: still its own, replaced
    assert adata.uns["stcore"]["seed"] == 1
    mine = adata.obs["truth"].astype(str).to_numpy()
    adata.obs["domain"] = pd.Categorical(mine)
    record = dict(adata.uns["stcore"])
    with pytest.raises(InputError, match=r"^obs\['domain'\] holds other labels than the tl\.domains call that wrote it "
                                         r"\(graphst, seed 1\) left there: .* they are not overwritten\. Fix: pass "
                                         r"another key_added \(e\.g\. key_added='domain_2'\), .* or pass "
                                         r"overwrite=True to write over them$"):
        stcore.tl.domains(adata, n_clusters=2, seed=2, **FAST)
    assert (adata.obs["domain"].astype(str).to_numpy() == mine).all() and adata.uns["stcore"]["seed"] == 1
    assert adata.uns["stcore"].keys() == record.keys()
    stcore.tl.domains(adata, n_clusters=2, seed=2, overwrite=True, **FAST)
    assert adata.uns["stcore"]["seed"] == 2

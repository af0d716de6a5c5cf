"""Slides trained as one (the sample sheet's `group` column): the library pieces, the whole
DAG on a simulated pair of sections of one tissue, and bad input."""
import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from slides import snakemake, tiny_slide, workdir

from stcore.errors import InputError
from stcore.evaluate import integration_metrics
from stcore.graph import GraphParams, spatial_adjacency
from stcore.group import join_slides, slide_codes
from stcore.simulate import SimParams, simulate_slide

HEADER = "sample\tpath\tformat\tn_clusters\ttruth\tgroup\n"


def _section(seed: int, layout: str, n_spots: int) -> ad.AnnData:
    """A section of one simulated tissue: the gene programs come from tissue_seed, so two
    sections share their domains but not their spots."""
    return simulate_slide(SimParams(n_spots=n_spots, n_genes=200, markers_per_domain=30, marker_fold=3.0,
                                    n_layers=3, n_regions=0, layout=layout, seed=seed, tissue_seed=7))


def test_join_keeps_the_shared_genes_and_names_each_spots_slide(caplog):
    a, b = tiny_slide(n_side=6, seed=1), tiny_slide(n_side=5, seed=2)
    b = b[:, b.var_names[1:]].copy()                    # gene000 only on slide a
    with caplog.at_level("INFO"):
        joined, report = join_slides({"a": a, "b": b}, {"a": "domain", "b": ""}, "g")
    assert list(joined.var_names) == list(b.var_names)
    assert report["shared_genes"] == a.n_vars - 1
    assert report["slides"]["a"]["genes_left_out"] == 1 and report["slides"]["b"]["genes_left_out"] == 0
    assert "slide a: 1 of its 40 genes are not on every slide" in caplog.text and "gene000" in caplog.text
    assert list(joined.obs["slide"]) == ["a"] * a.n_obs + ["b"] * b.n_obs
    assert joined.obs_names[0] == f"a:{a.obs_names[0]}" and joined.obs_names.is_unique
    np.testing.assert_array_equal(joined.X[: a.n_obs].toarray(), a[:, b.var_names].X.toarray())
    np.testing.assert_array_equal(joined.obsm["spatial"][a.n_obs:], b.obsm["spatial"])
    assert joined.obs["truth"].iloc[: a.n_obs].notna().all() and joined.obs["truth"].iloc[a.n_obs:].isna().all()


def test_the_steps_that_score_a_group_read_the_annotation_the_join_gave(tmp_path, caplog):
    """The workflow's group job joins no annotation (a changed truth column reruns no training); the
    scoring steps read each slide's from its own file (stcore.workflow.group_truth): the same labels,
    categories and respellings as join_slides given the truth columns, and a column that is no
    annotation refused naming its slide."""
    from stcore.io import write_h5ad
    from stcore.workflow import group_truth

    a, b = tiny_slide(n_side=6, seed=1), tiny_slide(n_side=5, seed=2)
    b.obs["domain"] = b.obs["domain"].astype(str).str.lower()           # respelled to a's labels
    write_h5ad(a, tmp_path / "a.h5ad")
    write_h5ad(b, tmp_path / "b.h5ad")
    joined, _ = join_slides({"a": a, "b": b}, {"a": "domain", "b": "domain"}, "g")
    bare, _ = join_slides({"a": a, "b": b}, None, "g")
    assert "truth" not in bare.obs and (bare.X != joined.X).nnz == 0
    members = {"a": (str(tmp_path / "a.h5ad"), "domain"), "b": (str(tmp_path / "b.h5ad"), "domain")}
    with caplog.at_level("WARNING"):
        read = group_truth(bare.obs, members, "g")
    pd.testing.assert_series_equal(read, joined.obs["truth"], check_names=False)
    assert "group g: slide b writes" in caplog.text
    members["b"] = (str(tmp_path / "b.h5ad"), "Domain")
    with pytest.raises(InputError, match="sample 'b'.*truth column 'Domain' is not in obs"):
        group_truth(bare.obs, members, "g")


def test_join_refuses_one_slide_and_slides_without_a_shared_gene():
    a = tiny_slide(seed=1)
    with pytest.raises(InputError, match=r"group 'g' has one slide \(a\).*Fix: give another slide the same group"):
        join_slides({"a": a}, {"a": ""}, "g")
    b = tiny_slide(seed=2)
    b.var_names = [f"other{i}" for i in range(b.n_vars)]
    with pytest.raises(InputError, match=r"group 'g': slides a, b share no gene name.*Fix: group slides measured"):
        join_slides({"a": a, "b": b}, {"a": "", "b": ""}, "g")


def test_join_refuses_one_slide_given_twice():
    """Two rows of the sheet reading the same data in one group (a file named twice, or copied): the
    group trained the slide with itself, and scored it as perfectly integrated (iLISI, domains_shared,
    layers_consistent 1.0, with a one-line warning at the start of the run only)."""
    a, c = tiny_slide(seed=1), tiny_slide(seed=2)
    for slide, digest, path in ((a, "ab" * 32, "a.h5ad"), (c, "cd" * 32, "c.h5ad")):
        slide.uns["provenance"] = {"input_sha256": digest, "input_path": path}
    again = a.copy()
    again.uns["provenance"] = dict(a.uns["provenance"], input_path="copy_of_a.h5ad")
    with pytest.raises(InputError, match=r"^group 'g': slides sa and sa2 read the same data \('a\.h5ad' and "
                                         r"'copy_of_a\.h5ad', input_sha256 abababababab\.\.\.\): the group would train one "
                                         r"slide with itself.*Fix: give each slide once in the group"):
        join_slides({"sa": a, "sc": c, "sa2": again}, {"sa": "", "sc": "", "sa2": ""}, "g")
    join_slides({"sa": a, "sc": c}, {"sa": "", "sc": ""}, "g")


def test_join_refuses_slides_named_by_ensembl_ids_beside_slides_named_by_symbols():
    """One slide's genes named by Ensembl ids, another's by symbols, except the genes without a
    symbol, named by their id as some exports do: they shared those 3 genes, and the group was
    trained on them alone (an info line only)."""
    a, b = tiny_slide(seed=1), tiny_slide(seed=2)
    ids = [f"ENSG{i:011d}" for i in range(a.n_vars)]
    a.var_names = ids
    a.var["gene_symbols"] = [f"SYM{i}" for i in range(a.n_vars)]
    b.var_names = [f"SYM{i}" for i in range(b.n_vars - 3)] + ids[-3:]
    with pytest.raises(InputError, match=r"group 'g': slide a names genes by Ensembl ids \(e\.g\. 'ENSG00000000000'\) "
                                         r"and slide b by gene symbols \(e\.g\. 'SYM0'\): they share 3 gene names "
                                         r"\(of 40 on the smallest slide\), so the group would be trained on those alone"
                                         r".*Fix: .*var\['gene_symbols'\] of slide a holds its gene symbols"):
        join_slides({"a": a, "b": b}, {"a": "", "b": ""}, "g")
    b.var_names = a.var_names
    joined, _ = join_slides({"a": a, "b": b}, {"a": "", "b": ""}, "g")      # ids on both: joined as before
    assert joined.n_vars == a.n_vars
    half = [f"SYM{i}" if i % 2 else g for i, g in enumerate(ids)]          # half ids on each: alike
    a.var_names, b.var_names = half[:21] + ids[21:22] + half[22:], half       # 21 ids of 40 on a, 20 on b
    assert join_slides({"a": a, "b": b}, {"a": "", "b": ""}, "g")[0].n_vars == 39


def test_join_refuses_slides_of_other_panels_that_share_a_few_genes():
    """Two panels (166 genes and 33, as STARmap's and osmFISH's) sharing 11: the group was trained on
    those 11 alone, with an info line and the hvg job's 'all genes are used'."""
    a, b = tiny_slide(n_genes=166, seed=1), tiny_slide(n_genes=33, seed=2)
    a.var_names = [f"pa{i}" for i in range(155)] + [f"both{i}" for i in range(11)]
    b.var_names = [f"pb{i}" for i in range(22)] + [f"both{i}" for i in range(11)]
    with pytest.raises(InputError, match=r"group 'g': slides a, b share only 11 genes \(after QC\), 33% of those of b, "
                                         r"the slide with the fewest \(genes: a 166, b 33\): measured on other gene "
                                         r"panels, the group would be trained on those 11 alone\. Fix: group slides "
                                         r"measured on the same genes"):
        join_slides({"a": a, "b": b}, {"a": "", "b": ""}, "g")
    small = a[:, [f"both{i}" for i in range(11)] + ["pa0"]].copy()       # a panel within the other: joined
    joined, _ = join_slides({"a": a, "small": small}, {"a": "", "small": ""}, "g")
    assert joined.n_vars == 12


def test_join_refuses_ensembl_ids_with_a_version_beside_ids_without():
    """GENCODE's ids with a version on one slide ('ENSG00000000000.5'), Space Ranger's without on
    another: they shared no gene name, refused as 'share no gene name ... all symbols or all
    Ensembl ids', which both slides were."""
    a, b = tiny_slide(seed=1), tiny_slide(seed=2)
    a.var_names = [f"ENSG{i:011d}" for i in range(a.n_vars)]
    b.var_names = [f"{g}.{i % 7 + 1}" for i, g in enumerate(a.var_names)]
    with pytest.raises(InputError, match=r"group 'g': slide b writes Ensembl ids with a version \('ENSG00000000000' on "
                                         r"a, 'ENSG00000000000\.1' on b\): they share 0 gene names as written, 40 "
                                         r"without the versions, so the slides of the group could not be joined\. Fix: write the ids without "
                                         r"their version"):
        join_slides({"a": a, "b": b}, {"a": "", "b": ""}, "g")
    b.var_names = a.var_names
    assert join_slides({"a": a, "b": b}, {"a": "", "b": ""}, "g")[0].n_vars == 40


def _log_normalised(adata, total):
    x = adata.X.toarray()
    adata.X = sp.csr_matrix(np.log1p(x / x.sum(axis=1, keepdims=True) * total))
    return adata


def test_join_refuses_slides_normalised_to_other_totals():
    """Two published log-normalised slides, one normalize_total to 10,000 and log1p, the other to a
    million (CPM) and log1p, with values log_normalized: joined as they were, every gene's log value
    4.6 higher on one slide, a slide effect the model learned first."""
    a, b = _log_normalised(tiny_slide(seed=1), 1e4), _log_normalised(tiny_slide(seed=2), 1e6)
    with pytest.raises(InputError, match=r"group 'g': its slides' log-normalised values were normalised to other "
                                         r"totals \(median spot total over the shared genes, after expm1: a 10,000, b "
                                         r"1,000,000\): one model would see the same expression 100 times higher on b "
                                         r"than on a \(every log value 4\.6 higher\)\. Fix: normalise every slide of the "
                                         r"group to one total from its raw counts"):
        join_slides({"a": a, "b": b}, {"a": "", "b": ""}, "g", values="log_normalized")
    c = _log_normalised(tiny_slide(seed=3), 1e4)
    assert join_slides({"a": a, "c": c}, {"a": "", "c": ""}, "g", values="log_normalized")[0].n_vars == 40
    a.X, b.X = sp.csr_matrix(np.expm1(a.X.toarray())), sp.csr_matrix(np.expm1(b.X.toarray()))
    with pytest.raises(InputError, match=r"its slides' normalised values were normalised to other totals \(median "
                                         r"spot total over the shared genes: a 10,000, b 1,000,000\): one model would see "
                                         r"the same expression 100 times higher on b than on a\. Fix: "):
        join_slides({"a": a, "b": b}, {"a": "", "b": ""}, "g", values="normalized")


def test_join_refuses_slides_that_write_the_same_genes_in_other_case():
    """Mouse symbols on one slide ('Gfap'), the same upper-cased on another ('GFAP', as for human
    orthologs), but for 3 genes written alike ('H19'): the group was trained on those 3 alone."""
    a, b = tiny_slide(seed=1), tiny_slide(seed=2)
    a.var_names = [f"Gene{i}" for i in range(a.n_vars - 3)] + ["H19", "H2-K1", "C4B"]
    b.var_names = [g.upper() for g in a.var_names]
    with pytest.raises(InputError, match=r"group 'g': its slides write the same genes in other case \('Gene0' on a, "
                                         r"'GENE0' on b\): they share 3 gene names as written, 40 whatever the case, "
                                         r"so the group would be trained on those written alike only\. Fix: write "):
        join_slides({"a": a, "b": b}, {"a": "", "b": ""}, "g")
    c, d = tiny_slide(seed=3), tiny_slide(seed=4)                 # a few genes in other case: joined as before
    d.var_names = [g.upper() if i < 5 else g for i, g in enumerate(c.var_names)]
    joined, _ = join_slides({"c": c, "d": d}, {"c": "", "d": ""}, "g")
    assert joined.n_vars == 35


def test_annotation_labels_written_otherwise_on_another_slide_are_one_label_of_the_group(caplog):
    """Slide a annotates 'Layer1', 'Layer2', 'WM'; slide b 'layer_1', 'layer 2', 'WM' (another
    annotator): the group's annotation held five labels, and layers_consistent compared 'WM' alone
    (1.0 for domains that put layer 1 and 2 into other domains on each slide; 0.33 with one spelling)."""
    a, b = tiny_slide(n_side=6, seed=1, domains=3), tiny_slide(n_side=6, seed=2, domains=3)
    a.obs["domain"] = a.obs["domain"].map({"D0": "Layer1", "D1": "Layer2", "D2": "WM"}).astype(str)
    b.obs["layer"] = b.obs["domain"].map({"D0": "layer_1", "D1": " layer 2", "D2": "WM"}).astype(str)
    b.obs.loc[b.obs_names[0], "layer"] = "NA"
    with caplog.at_level("WARNING"):
        joined, report = join_slides({"a": a, "b": b}, {"a": "domain", "b": "layer"}, "g")
    truth = joined.obs["truth"].astype(object)
    assert set(truth[joined.obs["slide"] == "b"].dropna()) == {"Layer1", "Layer2", "WM", "NA"}
    assert report["slides"]["b"]["labels_respelled"] == {"layer 2": "Layer2", "layer_1": "Layer1"}
    assert "slide b writes 2 annotation labels otherwise than the slide before it ('layer 2' as 'Layer2', " \
           "'layer_1' as 'Layer1')" in caplog.text
    on_b = (joined.obs["slide"] == "b").to_numpy()
    found = np.where(on_b, truth.map({"Layer1": 1, "Layer2": 0, "WM": 2, "NA": 2}), truth.map({"Layer1": 0, "Layer2": 1, "WM": 2}))
    assert integration_metrics(None, found, joined.obs["slide"], truth.to_numpy())["layers_consistent"] == \
        pytest.approx(1 / 3)
    c = tiny_slide(n_side=6, seed=3, domains=3)       # 'layer3' beside 'Layer3' on one slide: kept apart
    c.obs["domain"] = c.obs["domain"].map({"D0": "Layer1", "D1": "layer1", "D2": "WM"}).astype(str)
    joined, report = join_slides({"a": a, "c": c}, {"a": "domain", "c": "domain"}, "g")
    assert "labels_respelled" not in report["slides"]["c"]
    assert set(joined.obs["truth"].astype(object)[joined.obs["slide"] == "c"]) == {"Layer1", "layer1", "WM"}
    d, e = tiny_slide(n_side=6, seed=4), tiny_slide(n_side=6, seed=5)       # '-1' (unlabelled) is not '1'
    d.obs["domain"] = d.obs["domain"].map({"D0": -1, "D1": 2}).astype(int)
    e.obs["domain"] = e.obs["domain"].map({"D0": "1.0", "D1": "2.0"}).astype(str)
    joined, report = join_slides({"d": d, "e": e}, {"d": "domain", "e": "domain"}, "g")
    assert report["slides"]["e"]["labels_respelled"] == {"2.0": "2"}
    assert set(joined.obs["truth"].astype(object)) == {"-1", "1.0", "2"}


def test_group_graph_is_each_slides_own_graph_and_nothing_between():
    a, b = tiny_slide(n_side=7, seed=1), tiny_slide(n_side=6, seed=2)     # overlapping coordinates
    coords = np.vstack([a.obsm["spatial"], b.obsm["spatial"]])
    codes = np.repeat([0, 1], [a.n_obs, b.n_obs])
    for params in (GraphParams(), GraphParams(mode="radius", radius=150.0)):
        adj = spatial_adjacency(coords, params, slides=codes)
        rows, cols = adj.nonzero()
        assert (codes[rows] == codes[cols]).all()
        assert (adj[: a.n_obs, : a.n_obs] != spatial_adjacency(a.obsm["spatial"], params)).nnz == 0
        assert (adj[a.n_obs:, a.n_obs:] != spatial_adjacency(b.obsm["spatial"], params)).nnz == 0
        assert (adj != adj.T).nnz == 0 and sp.isspmatrix_csr(adj)
    assert spatial_adjacency(coords)[: a.n_obs, a.n_obs:].nnz > 0       # without slides, the overlap would join them


def test_one_radius_over_slides_at_other_spacings_is_warned_of(caplog):
    """Slide a's coordinates 100 apart (microns), b's 137 (full-resolution pixels of the same grid):
    one graph.radius (210) joined a's spots to 13.5 neighbours on average and b's to 5 without a word."""
    a, b = tiny_slide(seed=1), tiny_slide(seed=2)
    xy = np.vstack([a.obsm["spatial"], b.obsm["spatial"] * 1.37])
    slides = np.array(["a"] * a.n_obs + ["b"] * b.n_obs)
    params = GraphParams(mode="radius", radius=210)
    with caplog.at_level("WARNING"):
        adj = spatial_adjacency(xy, params, slides=slides)
    assert adj[: a.n_obs, a.n_obs:].nnz == 0
    assert "graph.radius 210 is one distance on every slide of the group, but their spots lie at other spacings " \
           "(median distance to a spot's nearest neighbour: a 100, b 137), so it joins each spot to other numbers of " \
           "neighbours (on average: a 13.5, b 5.0): coordinates in other units on each slide (pixels, microns)? " \
           "Fix: store every slide's coordinates in one unit" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        spatial_adjacency(np.vstack([a.obsm["spatial"], b.obsm["spatial"] * 1.1]), params, slides=slides)
        spatial_adjacency(xy, GraphParams(n_neighbors=3), slides=slides)       # knn: each slide's nearest
    assert "other spacings" not in caplog.text


def test_integration_metrics_tell_consistent_from_inconsistent_labels():
    rng = np.random.default_rng(0)
    slides = np.repeat(["a", "b"], 200)
    truth = np.tile(np.repeat(["L1", "L2"], 100), 2)
    mixed = rng.normal(size=(400, 5)) + (truth == "L2")[:, None] * 4          # slides mixed, layers apart
    same = (truth == "L2").astype(int)
    flipped = np.where(slides == "a", same, 1 - same)                          # domain 0 is L1 on a, L2 on b
    good = integration_metrics(mixed, same, slides, truth)
    assert good["layers_consistent"] == 1.0 and good["domains_shared"] == 1.0 and good["iLISI"] > 0.7
    assert integration_metrics(mixed, flipped, slides, truth)["layers_consistent"] == 0.0
    apart = mixed + (slides == "b")[:, None] * 100                              # each slide on its own
    assert integration_metrics(apart, same, slides, truth)["iLISI"] == 0.0
    only_a = np.where(np.arange(400) < 50, 2, same)                            # domain 2 on slide a only
    assert integration_metrics(mixed, only_a, slides)["domains_shared"] == pytest.approx(2 / 3)
    assert np.isnan(integration_metrics(mixed, same, slides)["layers_consistent"])


def test_slides_that_name_their_layers_otherwise_are_warned_of_and_not_scored_consistent(caplog):
    """Slide a annotates 'Layer1', 'Layer2', 'Layer3', 'WM', slide b 'L1', 'L2', 'L3', 'WM' (another
    annotation): layers_consistent compared 'WM' alone and scored 1.0 for domains that swap the
    layers between the slides."""
    a, b = tiny_slide(n_side=8, seed=1, domains=4), tiny_slide(n_side=8, seed=2, domains=4)
    a.obs["domain"] = a.obs["domain"].map({"D0": "Layer1", "D1": "Layer2", "D2": "Layer3", "D3": "WM"}).astype(str)
    b.obs["domain"] = b.obs["domain"].map({"D0": "L1", "D1": "L2", "D2": "L3", "D3": "WM"}).astype(str)
    with caplog.at_level("WARNING"):
        joined, _ = join_slides({"a": a, "b": b}, {"a": "domain", "b": "domain"}, "g")
    assert "group g: the annotations of its slides share 1 label (WM) of a's 4, b's 4: they name the layers " \
           "otherwise (a: Layer1, Layer2, Layer3, WM; b: L1, L2, L3, WM), so layers_consistent" in caplog.text
    truth = joined.obs["truth"].astype(object).to_numpy()
    swapped = np.where(joined.obs["slide"] == "a", pd.Series(truth).map({"Layer1": 0, "Layer2": 1, "Layer3": 2, "WM": 3}),
                       pd.Series(truth).map({"L1": 1, "L2": 2, "L3": 0, "WM": 3}))
    assert np.isnan(integration_metrics(None, swapped, joined.obs["slide"], truth)["layers_consistent"])
    caplog.clear()
    with caplog.at_level("WARNING"):          # a slide without two of the layers (DLPFC 151669): as before
        join_slides({"a": a, "c": a[a.obs["domain"].isin(["Layer3", "WM"])].copy()}, {"a": "domain", "c": "domain"}, "g")
    assert "name the layers otherwise" not in caplog.text


def test_layers_consistent_needs_two_annotated_slides():
    """A group whose annotation is on one slide only (the other's truth cell empty): random
    domains scored layers_consistent 1.0, as each label of the one slide has one most common domain."""
    rng = np.random.default_rng(0)
    slides = np.repeat(["a", "b"], 200)
    truth = np.concatenate([np.repeat(["L1", "L2", "L3", "WM"], 50), np.full(200, np.nan)]).astype(object)
    random_domains = rng.integers(0, 4, 400)
    assert np.isnan(integration_metrics(None, random_domains, slides, truth)["layers_consistent"])
    both = np.tile(np.repeat(["L1", "L2", "L3", "WM"], 50), 2).astype(object)
    three = np.concatenate([both, np.full(100, np.nan, dtype=object)])      # a third slide without labels
    found = np.concatenate([np.tile(np.repeat([0, 1, 2, 3], 50), 2), rng.integers(0, 4, 100)])
    assert integration_metrics(None, found, np.repeat(["a", "b", "c"], [200, 200, 100]), three)[
        "layers_consistent"] == 1.0


def test_slide_codes_are_none_for_one_slide():
    assert slide_codes(pd.DataFrame(index=["x"])) is None
    np.testing.assert_array_equal(slide_codes(pd.DataFrame({"slide": ["b", "a", "b"]})), [1, 0, 1])


@pytest.fixture(scope="module")
def group_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("group")
    a = _section(1, "hex", 300)
    b = _section(2, "scatter", 250)
    b = b[:, b.var_names[:-1]].copy()                  # the last gene only on slide sa
    a.write_h5ad(tmp / "a.h5ad")
    b.write_h5ad(tmp / "b.h5ad")
    workdir(tmp, {}, epochs=20, extra_config="hvg: {n_top_genes: 150}\n")
    (tmp / "samples.tsv").write_text(HEADER + "sa\ta.h5ad\th5ad\t3\tdomain\tpair\nsb\tb.h5ad\th5ad\t3\tdomain\tpair\n")
    run = snakemake(tmp, "--cores", "2", timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    return tmp


def test_a_group_trains_as_one_and_its_labels_hold_across_slides(group_run):
    w = group_run
    report = pd.read_json(w / "results/pair/qc.json", typ="series")
    assert report["shared_genes"] == 199 and report["slides"]["sa"]["genes_left_out"] == 1
    assert "slide sa: 1 of its 200 genes are not on every slide of the group and are left out (e.g. gene00199)" \
        in (w / "logs/group/pair.log").read_text()
    # One graph made of the slides' own graphs, no edge between them.
    joint = sp.load_npz(w / "results/pair/graph.npz")
    n_a = report["slides"]["sa"]["spots"]
    assert joint[:n_a, n_a:].nnz == 0
    assert (joint[:n_a, :n_a] != sp.load_npz(w / "results/sa/graph.npz")).nnz == 0
    assert (joint[n_a:, n_a:] != sp.load_npz(w / "results/sb/graph.npz")).nnz == 0
    # The long table: each slide alone, and each slide's row of the group's run.
    table = pd.read_csv(w / "results/table.tsv", sep="\t", dtype={"group": str}, keep_default_na=False)
    alone = table[table["group"] == ""]
    together = table[table["group"] == "pair"]
    assert sorted(alone["sample"]) == ["sa", "sb"] and sorted(together["sample"]) == ["sa", "sb"]
    # Shared domains: every annotated layer maps to the same joint domain on both slides, and
    # the joint labels find the layers on each slide (20 epochs: well above chance, not more;
    # measured 0.31 / 0.14, each slide alone -0.00 / 0.05).
    assert (together["layers_consistent"].astype(float) == 1.0).all()
    assert (together["ARI"].astype(float) > 0.1).all(), together[["sample", "ARI"]]
    assert together["iLISI"].astype(float).between(0, 1).all()
    summary = (w / "results/summary.md").read_text()
    assert "graphst (joint)" in summary and "## Slides trained as one (groups)" in summary
    # One h5ad for the group's run, in scanpy's layout, with each spot's slide.
    out = ad.read_h5ad(w / "results/pair/graphst/seed0/domains.h5ad")
    n = n_a + report["slides"]["sb"]["spots"]
    assert out.n_obs == n and list(out.obs["slide"].cat.categories) == ["sa", "sb"]
    assert out.obs["domain"].notna().all() and out.obsm["X_graphst"].shape == (n, 64)
    per_slide = out.uns["stcore"]["metrics"]["per_slide"]          # each slide's scores, not the first's alone
    assert sorted(per_slide) == ["sa", "sb"] and "ARI" not in out.uns["stcore"]["metrics"]
    assert [per_slide[s]["ARI"] for s in ("sa", "sb")] == pytest.approx(
        together.set_index("sample").loc[["sa", "sb"], "ARI"].astype(float).tolist(), abs=1e-4)
    labels = pd.read_csv(w / "results/pair/graphst/seed0/labels.tsv", sep="\t")
    assert list(labels.columns) == ["spot", "domain", "slide"]


def _steps(out: str) -> set:
    """The steps a dry run (``-n --quiet rules``) would run: Snakemake's job stats."""
    return {line.split()[0] for line in out.splitlines()
            if len(line.split()) == 2 and line.split()[1].isdigit() and line.split()[0] not in ("total", "all")}


def test_a_grouped_slides_truth_column_reruns_the_steps_that_read_the_annotation_only(group_run, tmp_path):
    """A grouped slide's annotation is read by the steps that score the group, from the slide's own
    qc.h5ad; the group's qc.h5ad holds none, so a changed truth column reruns no group, hvg, graph or
    train job (it reran them all), and a column that is no annotation is still refused before any score."""
    import shutil

    work = tmp_path / "run"
    shutil.copytree(group_run, work, symlinks=True)
    sheet = (work / "samples.tsv").read_text()
    (work / "samples.tsv").write_text(sheet.replace("sb\tb.h5ad\th5ad\t3\tdomain", "sb\tb.h5ad\th5ad\t3\t"))
    steps = _steps(snakemake(work, "-n", "--quiet", "rules", check=True).stdout)
    assert "evaluate" in steps and not steps & {"qc", "group", "hvg", "graph", "train", "cluster"}, steps
    (work / "samples.tsv").write_text(sheet.replace("sb\tb.h5ad\th5ad\t3\tdomain", "sb\tb.h5ad\th5ad\t3\tDomain"))
    proc = snakemake(work, "--cores", "2", "--keep-going", timeout=900)
    assert proc.returncode != 0 and "logs/group/" not in proc.stderr and "logs/train/" not in proc.stderr
    assert ("FAILED logs/evaluate/pair.graphst.seed0.log: sample 'sb', file 'b.h5ad': truth column 'Domain' is not "
            "in obs ('domain' differs only in case or spaces") in proc.stderr, proc.stderr[-3000:]
    assert not (work / "results" / "pair" / "graphst" / "seed0" / "metrics.tsv").exists()


def test_a_groups_consensus_of_seeds_scores_each_slide_against_its_annotation(group_run, tmp_path):
    """The consensus of a group's seeds reads each slide's annotation from the slide's own qc.h5ad (the
    group's holds none): its table rows, its metrics per slide and its domains.h5ad's annotation."""
    import shutil

    work = tmp_path / "run"
    shutil.copytree(group_run, work, symlinks=True)
    config = (work / "config.yaml").read_text()
    assert "seeds: [0]\n" in config
    (work / "config.yaml").write_text(config.replace("seeds: [0]\n", "seeds: [0, 1, 2]\n"))
    target = "results/pair/graphst/consensus/domains.h5ad"
    run = snakemake(work, "--cores", "2", target, "results/pair/graphst/consensus/metrics.tsv", timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    metrics = pd.read_csv(work / "results/pair/graphst/consensus/metrics.tsv", sep="\t")
    assert sorted(metrics["sample"]) == ["sa", "sb"] and metrics["ARI"].between(-1, 1).all(), metrics
    out = ad.read_h5ad(work / target)
    per_slide = out.uns["stcore"]["metrics"]["per_slide"]
    assert sorted(per_slide) == ["sa", "sb"]
    assert [per_slide[s]["ARI"] for s in ("sa", "sb")] == pytest.approx(
        metrics.set_index("sample").loc[["sa", "sb"], "ARI"].tolist(), abs=1e-4)
    assert out.obs["truth"].notna().all() and out.obs["truth"].nunique() == 3      # the slides' annotation
    assert out.obsm["domain_seeds"].shape == (out.n_obs, 3)


def _parse(tmp, rows: str):
    workdir(tmp, {})
    (tmp / "samples.tsv").write_text(HEADER + rows)
    (tmp / "x.h5ad").write_bytes(b"")
    return snakemake(tmp, "--dry-run", "--cores", "1", timeout=120)


@pytest.mark.parametrize("rows, expected", [
    ("a\tx.h5ad\th5ad\t2\t\tg\nb\tx.h5ad\th5ad\t2\t\t\n",
     r"group 'g' has one slide \(a\); a group trains several slides as one\. Fix: give another slide the same group"),
    ("a\tx.h5ad\th5ad\t2\t\tg\nb\tx.h5ad\th5ad\t3\t\tg\n",
     r"group 'g': its slides differ in n_clusters \(a: 2, b: 3\).*Fix: give them the same n_clusters"),
    ("a\tx.h5ad\th5ad\t2\t\tA\nb\tx.h5ad\th5ad\t2\t\tA\n",
     r"group 'A' is also a sample id \('a'\).*Fix: rename the group"),
    ("a\tx.h5ad\th5ad\t2\t\t../g\nb\tx.h5ad\th5ad\t2\t\t../g\n", r"column group: '\.\./g' is not valid\. Fix: group: slides with the same group"),
    # a slide meant for two groups (its 'g1,g2' was 'not valid', the fix the column's description)
    ("a\tx.h5ad\th5ad\t2\t\tg1,g2\nb\tx.h5ad\th5ad\t2\t\tg1\n",
     r"row 1 \(sample 'a'\), column group: 'g1,g2' names 2 groups \('g1', 'g2'\); a row's slide belongs to one "
     r"group\. Fix: give the row one group; to train the slide in each, give it a row per group under another "
     r"sample id \(the same path\), e\.g\. 'a_g2' with group 'g2'"),
])
def test_bad_groups_stop_at_parse_time(tmp_path, rows, expected):
    run = _parse(tmp_path, rows)
    text = run.stdout + run.stderr
    assert run.returncode != 0 and re.search(expected, text, re.S), text[-2000:]
    assert "Traceback" not in text and not (tmp_path / "results").exists()


def test_a_group_without_shared_genes_fails_alone_with_one_line(tmp_path):
    a, b = tiny_slide(n_side=6, seed=1), tiny_slide(n_side=6, seed=2)
    b.var_names = [f"other{i}" for i in range(b.n_vars)]
    a.write_h5ad(tmp_path / "a.h5ad")
    b.write_h5ad(tmp_path / "b.h5ad")
    workdir(tmp_path, {}, epochs=2)
    (tmp_path / "samples.tsv").write_text(HEADER + "a\ta.h5ad\th5ad\t2\tdomain\tg\nb\tb.h5ad\th5ad\t2\tdomain\tg\n")
    run = snakemake(tmp_path, "--cores", "2", "--keep-going", "results/g/qc.h5ad", "results/a/hvg.h5ad")
    assert run.returncode != 0
    assert re.search(r"FAILED logs/group/g\.log: sample 'g': group 'g': slides a, b share no gene name.*Fix: ",
                     run.stderr), run.stderr[-3000:]
    assert not (tmp_path / "results/g/qc.h5ad").exists() and (tmp_path / "results/a/hvg.h5ad").exists()


def test_harmony_mixes_the_slides_and_a_missing_extra_says_how_to_install(monkeypatch):
    from stcore.cluster import correct_slides

    rng = np.random.default_rng(0)
    slides = np.repeat(["a", "b"], 300)
    layer = np.tile(np.repeat([0, 1, 2], 100), 2)
    x = rng.normal(size=(600, 10)) + layer[:, None] * 3.0 + (slides == "b")[:, None] * 6.0   # a slide shift
    np.testing.assert_array_equal(correct_slides(x[:300], None), x[:300])                      # one slide
    pytest.importorskip("harmonypy", reason="the integration extra: pip install -e '.[integration]'")
    fixed = correct_slides(x, slides, seed=0)
    assert fixed.shape == x.shape
    before = integration_metrics(x, layer, slides)["iLISI"]
    after = integration_metrics(fixed, layer, slides)["iLISI"]
    assert before < 0.1 and after > 0.2, (before, after)      # measured 0.00 -> 0.30
    monkeypatch.setitem(__import__("sys").modules, "harmonypy", None)
    with pytest.raises(InputError, match=r"needs harmonypy.*Fix: pip install -e '\.\[integration\]'"):
        correct_slides(x, slides)


def test_join_refuses_a_slide_whose_gene_names_are_the_default_index():
    """A slide of a group without gene names (anndata's default index '0', '1', ...; QC may have
    dropped some) is refused, naming the slide, its file and the fix; before, two such slides of
    different panels were joined gene by position.  Gene ids that are numbers (Entrez ids) and
    names with digits are joined by name."""
    a, b = tiny_slide(seed=1), tiny_slide(seed=2)
    b = b[:, ::-1].copy()                               # another order of genes: by position, other genes
    for slide in (a, b):
        slide.var_names = [str(i) for i in range(slide.n_vars)]
    a.uns["provenance"] = {"input_path": "data/a.h5ad"}
    with pytest.raises(InputError, match=r"^sample 'a', file 'data/a\.h5ad': slide of group 'g' has no gene names: "
                                         r"its var_names are anndata's default index \('0', '1', \.\.\., '39'\).*"
                                         r"Fix: store the gene names in var_names"):
        join_slides({"a": a, "b": b}, {"a": "", "b": ""}, "g")
    kept = b[:, [i for i in range(b.n_vars) if i % 3]].copy()           # after QC: some left out
    good = tiny_slide(seed=3)
    with pytest.raises(InputError, match=r"^sample 'b': slide of group 'g' has no gene names"):
        join_slides({"good": good, "b": kept}, {"good": "", "b": ""}, "g")
    for names in ([str(7157 + 1000 * i) for i in range(40)], [f"{i}" for i in range(40)][::-1],
                  [f"0{i}" for i in range(40)]):
        a.var_names, b.var_names = names, names
        joined, _ = join_slides({"a": a, "b": b}, {"a": "", "b": ""}, "g")
        assert joined.n_vars == 40


def test_a_groups_domains_h5ad_keeps_each_slides_metrics():
    """A group's run has a row per slide in its metrics.tsv: its domains.h5ad's uns['stcore']['metrics']
    was the first slide's row (sample 'sa', that slide's ARI), read as the group's run's."""
    from stcore.export import run_metrics

    rows = pd.DataFrame({"sample": ["sa", "sb"], "group": "pair", "method": "graphst", "seed": 0,
                         "ARI": [0.31, 0.14], "spots": [300, 250], "domains_found": 3, "iLISI": 0.6, "recon_r": np.nan,
                         "torch_version": "2.5.1"})
    metrics = run_metrics(rows)
    assert "ARI" not in metrics and "sample" not in metrics and "recon_r" not in metrics
    assert metrics["group"] == "pair" and metrics["iLISI"] == 0.6 and metrics["torch_version"] == "2.5.1"
    # a slide's own value stays its own where the slides happen to agree: 3 domains found on each, not the group's
    assert "domains_found" not in metrics
    assert metrics["per_slide"] == {"sa": {"ARI": 0.31, "spots": 300, "domains_found": 3},
                                    "sb": {"ARI": 0.14, "spots": 250, "domains_found": 3}}
    one = run_metrics(rows.iloc[:1])                 # a slide's own run: its row, as before
    assert one["sample"] == "sa" and one["ARI"] == 0.31 and "recon_r" not in one and "per_slide" not in one


def test_the_columns_of_each_slide_are_those_label_rows_computes_per_slide():
    from stcore.evaluate import SLIDE_COLUMNS, label_rows

    obs = pd.DataFrame({"slide": ["a"] * 20 + ["b"] * 20})
    xy = np.random.default_rng(0).random((40, 2))
    labels = pd.Series(np.arange(40) % 3)
    truth = pd.Series(np.where(np.arange(40) % 2, "L1", "L2"))
    rows = label_rows(obs, xy, labels, truth, {"sample": "g", "method": "m", "seed": 0})
    alone = label_rows(pd.DataFrame(index=range(40)), xy, labels, truth, {"sample": "a", "method": "m", "seed": 0})
    per_slide = set(alone[0]) - {"group", "method", "seed"}
    assert per_slide == set(SLIDE_COLUMNS) and per_slide < set(rows[0])

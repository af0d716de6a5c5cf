import re
from pathlib import Path

import numpy as np
import pytest
from conftest import run_in_fresh_python

from stcore.evaluate import (
    chaos,
    domain_metrics,
    matched_f1,
    morans_i,
    pas,
    plot_domains,
    spatial_asw,
    spatial_metrics,
)


def test_perfect_and_relabelled_clusterings_score_one():
    truth = np.array(["a", "a", "b", "b", "c", "c"])
    m = domain_metrics(truth, np.array([2, 2, 0, 0, 1, 1]))
    for key in ("ARI", "NMI", "AMI", "homogeneity", "completeness", "F1"):
        assert m[key] == pytest.approx(1.0)


def test_spots_without_truth_are_left_out_and_counted():
    truth = np.array(["a", "a", None, "b", "b", np.nan], dtype=object)
    pred = np.array([0, 0, 1, 1, 1, 0])
    m = domain_metrics(truth, pred)
    assert m["n_labelled"] == 4 and m["n_unlabelled"] == 2
    assert m["ARI"] == pytest.approx(1.0)


def test_wrong_clustering_scores_low():
    rng = np.random.default_rng(0)
    truth = np.repeat(["a", "b", "c"], 100)
    assert domain_metrics(truth, rng.integers(0, 3, 300))["ARI"] < 0.1


def test_matched_f1_counts_unmatched_labels_as_zero():
    truth = np.array(["a", "a", "b", "b"])
    assert matched_f1(truth, np.array([0, 0, 0, 0])) == pytest.approx((2 * 0.5 * 1 / 1.5 + 0) / 2)


def test_plot_domains_writes_png(tmp_path):
    xy = np.random.default_rng(0).random((50, 2))
    out = tmp_path / "map.png"
    plot_domains(xy, np.arange(50) % 3, np.array(["x", "y"] * 25), title="t", path=out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- spatial coherence metrics (SDMBench) ---------------------------------------------


def _line(n):
    return np.c_[np.arange(n, dtype=float), np.zeros(n)]


def _grid_2x4():
    # x = 0..3, y = 0..1, row-major: (0,0) (1,0) (2,0) (3,0) (0,1) (1,1) (2,1) (3,1)
    return np.c_[np.tile(np.arange(4.0), 2), np.repeat([0.0, 1.0], 4)]


def test_chaos_by_hand_on_a_2x4_grid():
    xy = _grid_2x4()
    # Standardised x: values 0..3 (each twice), mean 1.5, population variance 1.25, so one
    # step in x is 1/sqrt(1.25) = 2/sqrt(5) = 0.8944; y: values 0/1, s.d. 0.5, one step is 2.
    # Left 2x2 square "a", right 2x2 square "b": every spot's nearest same-domain spot is
    # its x neighbour, 2/sqrt(5) away; 8 spots * (2/sqrt(5)) / 8 = 2/sqrt(5).
    assert chaos(xy, ["a", "a", "b", "b"] * 2) == pytest.approx(2 / np.sqrt(5))
    # x = 0..2 "a" (6 spots, each has an x neighbour at 2/sqrt(5)); x = 3 "b" has 2 spots and
    # is skipped but stays in the denominator: 6 * (2/sqrt(5)) / 8 = 3/(2 sqrt(5)) = 0.6708.
    assert chaos(xy, ["a", "a", "a", "b"] * 2) == pytest.approx(3 / (2 * np.sqrt(5)))
    # All domains of <= 2 spots: nothing is summed.
    assert chaos(xy, np.arange(8) // 2) == 0.0


def test_pas_by_hand_on_a_line():
    xy = _line(12)
    # On 12 equally spaced spots the 10 nearest of spot i are all others but the farthest
    # end (spot 11 for i <= 5, spot 0 for i >= 6); no ties at the 10th distance.
    # "a" = 0..3: each a-spot sees 3 a and 7 b -> 7 > 5, abnormal.  b-spots 4, 5 see 4 a,
    # b-spots 6..11 see 3 a -> not abnormal.  PAS = 4/12.
    assert pas(xy, list("aaaabbbbbbbb")) == pytest.approx(4 / 12)
    # Halves: every spot sees exactly 5 of the other label; 5 is not > 10/2, so PAS = 0.
    assert pas(xy, list("aaaaaabbbbbb")) == 0.0
    # Fewer spots than k: 4 spots use their 3 others, threshold 3/2.  Spot 0 ("a") sees 3 b
    # -> abnormal; each b sees one a -> not.  PAS = 1/4.
    assert pas(_line(4), list("abbb")) == pytest.approx(1 / 4)


def test_spatial_asw_by_hand_on_a_line():
    xy = np.c_[[0.0, 1.0, 3.0, 4.0], np.zeros(4)]
    # Spot 0: a = 1, b = (3 + 4)/2 = 3.5, s = 2.5/3.5 = 5/7; spot 1: a = 1, b = (2 + 3)/2 = 2.5,
    # s = 1.5/2.5 = 3/5; spots 3 and 2 mirror them.  ASW = (5/7 + 3/5)/2 = 23/35 = 0.6571.
    assert spatial_asw(xy, list("aabb")) == pytest.approx(23 / 35)
    # Undefined with one domain, or with every spot its own domain.
    assert np.isnan(spatial_asw(xy, list("aaaa")))
    assert np.isnan(spatial_asw(xy, list("abcd")))


def test_spatial_asw_subsamples_large_slides_reproducibly():
    rng = np.random.default_rng(3)
    xy, lab = rng.random((300, 2)), (rng.random(300) > 0.5).astype(int)
    a = spatial_asw(xy, lab, sample_size=100, random_state=1)
    assert a == spatial_asw(xy, lab, sample_size=100, random_state=1)
    assert np.isfinite(a) and a != spatial_asw(xy, lab, sample_size=None)


def test_morans_i_by_hand_on_a_line():
    xy = _line(8)
    # k = 2 on 8 equally spaced spots: interior spots have i-1, i+1; spot 0 has 1, 2; spot 7
    # has 6, 5 (no ties at the 2nd distance); w = 1/2.
    # Halves "aaaabbbb": indicator of a, z = +1/2 (spots 0..3), -1/2 (4..7).
    # (Wz) = [.5, .5, .5, 0, 0, -.5, -.5, -.5]; z'Wz = 6 * 1/4 = 1.5; z'z = 8/4 = 2;
    # I = (N/S0) z'Wz / z'z = 1 * 1.5/2 = 0.75; the same for b, mean 0.75.
    assert morans_i(xy, list("aaaabbbb"), k=2) == pytest.approx(0.75)
    # Alternating "abababab": interior spots see only the other label, (Wz)_i = -z_i; the
    # ends see one of each, (Wz) = 0.  z'Wz = -6/4, I = -1.5/2 = -0.75.
    assert morans_i(xy, list("abababab"), k=2) == pytest.approx(-0.75)
    assert np.isnan(morans_i(xy, ["a"] * 8))


def test_morans_i_matches_the_dense_formula():
    from stcore.graph import knn_indices

    rng = np.random.default_rng(1)
    xy, lab = rng.random((200, 2)), rng.integers(0, 4, 200)
    idx, _ = knn_indices(xy, 6)
    W = np.zeros((200, 200))
    W[np.repeat(np.arange(200), 6), idx.ravel()] = 1 / 6
    expected = []
    for d in range(4):
        z = (lab == d) - np.mean(lab == d)
        expected.append(200 / W.sum() * (z @ W @ z) / (z @ z))
    assert morans_i(xy, lab) == pytest.approx(np.mean(expected))


def test_coherent_labelling_beats_random_on_a_20x20_grid():
    gx, gy = np.meshgrid(np.arange(20.0), np.arange(20.0))
    xy = np.c_[gx.ravel(), gy.ravel()]
    coherent = (xy[:, 0] >= 10).astype(int) * 2 + (xy[:, 1] >= 10).astype(int)  # 4 quadrants
    random = np.random.default_rng(0).integers(0, 4, len(xy))
    good, bad = spatial_metrics(xy, coherent), spatial_metrics(xy, random)
    assert good["CHAOS"] < bad["CHAOS"]
    assert good["PAS"] < bad["PAS"]
    assert good["ASW"] > bad["ASW"]
    assert good["MoranI"] > bad["MoranI"]
    # PAS of the quadrants: 3/400, spots at the four-way junction whose 10 nearest (ties at
    # distance 2 broken by index) hold 6 or more spots of other quadrants.
    assert good["PAS"] == pytest.approx(3 / 400) and good["MoranI"] > 0.5 and abs(bad["MoranI"]) < 0.1


def test_spatial_metrics_on_20000_spots_is_sparse():
    import tracemalloc

    rng = np.random.default_rng(0)
    xy = rng.random((20_000, 2)) * 1000
    lab = rng.integers(0, 7, 20_000)
    tracemalloc.start()
    try:
        m = spatial_metrics(xy, lab)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert set(m) == {"CHAOS", "PAS", "ASW", "MoranI"}
    assert all(isinstance(v, float) and np.isfinite(v) for v in m.values())
    # A dense 20,000 x 20,000 float64 matrix alone would be 3.2 GB.
    assert peak < 400 * 2**20


def test_reconstruction_r_of_a_model_trained_on_pca_scores_is_empty_not_an_error():
    """train.input_pcs: the decoder reconstructs the scores, so there is no r against the genes
    (the evaluate step failed with a shape error on such runs); a genes-wide decoder gets r."""
    import scipy.sparse as sp

    from stcore.evaluate import expression_reconstruction_r

    rng = np.random.default_rng(0)
    x = sp.random(40, 12, 0.5, format="csr", random_state=1)
    decoded = rng.standard_normal((40, 4))
    assert np.isnan(expression_reconstruction_r(x, decoded, rng.standard_normal((4, 5))))   # 5 PCA scores
    w2 = np.linalg.lstsq(decoded, x.toarray(), rcond=None)[0]                                # genes wide
    assert 0 < expression_reconstruction_r(x, decoded, w2) <= 1


def test_ari_is_scikit_learns_bit_for_bit():
    """stcore.evaluate.ari (no scikit-learn import) against adjusted_rand_score: the same float,
    bit for bit, on random labelings of several sizes and numbers of domains, string and integer
    labels, NaN as a label, the same partition under other names, one domain, one spot, none."""
    from sklearn.metrics import adjusted_rand_score

    from stcore.evaluate import ari

    rng = np.random.default_rng(0)
    cases = []
    for n, ka, kb in [(10, 2, 3), (500, 7, 7), (3639, 7, 9), (20000, 20, 5), (7, 7, 1)]:
        a, b = rng.integers(0, ka, n), rng.integers(0, kb, n)
        b[: n // 2] = a[: n // 2]                       # partly agreeing
        cases += [(a, b), (a.astype(str), b), (np.array([f"L{v}" for v in a], dtype=object), b + 100)]
    a = rng.integers(0, 4, 300)
    cases += [(a, (a + 1) % 4), (a, a), (a, np.zeros(300, int)), (np.zeros(300, int), np.zeros(300, int)),
              (np.array([1]), np.array([2])), (np.array([], int), np.array([], int))]
    for a, b in cases:
        want = adjusted_rand_score(a, b)
        assert ari(a, b) == want and np.float64(ari(a, b)).tobytes() == np.float64(want).tobytes(), (a[:5], b[:5])
    assert ari(a, (a + 1) % 4) == 1.0
    with_nan, other = rng.integers(0, 3, 200).astype(float), rng.integers(0, 3, 200)
    with_nan[::7] = np.nan                           # scikit-learn refuses NaN; here it is one more label
    assert ari(with_nan, other) == adjusted_rand_score(np.nan_to_num(with_nan, nan=-1), other)
    with pytest.raises(ValueError, match="same spots"):
        ari(np.zeros(3), np.zeros(4))


def test_table_and_consensus_import_no_scikit_learn():
    """The table and consensus steps' fixed cost: seed agreement and the consensus of seeds
    use stcore.evaluate.ari, not scikit-learn (about 1 s of imports)."""
    code = ("import sys, numpy as np; from stcore.consensus import consensus; import stcore.table; "
            "labs = [np.random.default_rng(s).integers(0, 3, 50) for s in range(3)]; consensus(labs); "
            "assert 'sklearn' not in sys.modules, 'scikit-learn was imported'")
    run_in_fresh_python(code)


def _labelling_cases(rng):
    """Pairs of labellings: random, partly agreeing, string and integer labels, renamed, one
    domain on either side or both, one spot, none."""
    cases = []
    for n, ka, kb in [(10, 2, 3), (500, 7, 7), (3639, 7, 9), (4000, 20, 5), (7, 7, 1), (6, 1, 3)]:
        a, b = rng.integers(0, ka, n), rng.integers(0, kb, n)
        b[: n // 2] = a[: n // 2]
        cases += [(a, b), (a.astype(str), b), (np.array([f"L{v}" for v in a], dtype=object), b + 100)]
    a = rng.integers(0, 4, 300)
    cases += [(a, (a + 1) % 4), (a, a), (a, np.zeros(300, int)), (np.zeros(300, int), np.zeros(300, int)),
              (np.array([1]), np.array([2])), (np.array([], int), np.array([], int))]
    return cases


def test_information_scores_are_scikit_learns():
    """NMI, homogeneity and completeness are scikit-learn's bit for bit (the same operations on
    the same contingency table); AMI's expected mutual information sums the same terms in
    blocks (scikit-learn sums them one at a time in compiled code), so it agrees to 1e-13."""
    from sklearn import metrics as m

    from stcore.evaluate import information_scores

    for a, b in _labelling_cases(np.random.default_rng(1)):
        got = information_scores(a, b)
        for key, score in [("NMI", m.normalized_mutual_info_score), ("homogeneity", m.homogeneity_score),
                           ("completeness", m.completeness_score)]:
            assert np.float64(got[key]).tobytes() == np.float64(score(a, b)).tobytes(), (key, a[:5], b[:5])
        assert got["AMI"] == pytest.approx(m.adjusted_mutual_info_score(a, b), abs=1e-13), (a[:5], b[:5])
    # an AMI that is not near 0 or 1, where the expectation matters
    a = np.repeat(np.arange(5), 40)
    b = np.where(np.arange(200) % 3 == 0, (a + 1) % 5, a)
    assert 0.3 < information_scores(a, b)["AMI"] < 0.9


def test_spatial_asw_is_scikit_learns_silhouette():
    """The blocked silhouette against scikit-learn's silhouette_score, on clouds with singleton
    domains, duplicate positions and more spots than one 64 MiB block holds."""
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(2)
    for n, k in [(5, 2), (60, 3), (800, 7), (5000, 12)]:
        xy = rng.normal(size=(n, 2)) * 300 + 5000
        lab = rng.integers(0, k, n)
        lab[0] = k                                       # a domain of one spot
        xy[1] = xy[2]                                    # two spots at one position
        assert spatial_asw(xy, lab, sample_size=None) == pytest.approx(silhouette_score(xy, lab), abs=1e-12)


def test_evaluate_step_imports_no_scikit_learn_or_anndata():
    """The evaluate step's fixed cost: one slide's metrics without scikit-learn (about 0.7 s of
    imports) and its inputs read without anndata (about 1 s)."""
    code = ("import sys, numpy as np; import stcore.evaluate as E; "
            "rng = np.random.default_rng(0); xy = rng.normal(size=(300, 2)); lab = rng.integers(0, 4, 300); "
            "E.domain_metrics(rng.integers(0, 4, 300).astype(str), lab); E.spatial_metrics(xy, lab); "
            "assert 'sklearn' not in sys.modules, 'scikit-learn was imported'; "
            "assert 'anndata' not in sys.modules, 'anndata was imported'")
    run_in_fresh_python(code)


def test_fowlkes_mallows_is_scikit_learns():
    from sklearn.metrics import fowlkes_mallows_score

    from stcore.evaluate import fowlkes_mallows

    rng = np.random.default_rng(5)
    for _ in range(20):
        a, b = rng.integers(0, 6, 300), rng.integers(0, 4, 300)
        assert fowlkes_mallows(a, b) == fowlkes_mallows_score(a, b)
    assert fowlkes_mallows(a, a) == 1.0 and fowlkes_mallows(np.arange(5), np.zeros(5)) == 0.0


def test_labels_differing_only_by_surrounding_whitespace_are_one_domain():
    """Before: half of 'Layer3' written 'Layer3 ' (a spreadsheet's trailing space) made a perfect
    prediction score ARI 0.86.  Case is kept: 'layer3' may be meant as another label."""
    from stcore.evaluate import integration_metrics

    truth = np.repeat(np.array(["Layer1", "Layer2", "Layer3"], dtype=object), 40)
    pred = np.repeat([0, 1, 2], 40)
    spaced = truth.copy()
    spaced[80::2] = "Layer3 "
    spaced[81::4] = " Layer3\t"
    m = domain_metrics(spaced, pred)
    for key in ("ARI", "NMI", "AMI", "homogeneity", "completeness", "F1"):
        assert m[key] == pytest.approx(1.0), key
    assert m["n_labelled"] == 120
    cased = truth.copy()
    cased[80::2] = "layer3"
    assert domain_metrics(cased, pred)["ARI"] < 0.99
    from stcore.evaluate import label_text

    assert list(label_text(["Layer3 ", " Layer3", "layer3"])) == ["Layer3", "Layer3", "layer3"]
    slides = np.tile([0, 1], 60)
    assert integration_metrics(None, pred, slides, spaced)["layers_consistent"] == 1.0


def test_missing_label_spellings_are_left_out_whatever_their_case_and_spaces():
    truth = np.array(["a", "a", "NaN", " na ", "None", "", "b", "b"], dtype=object)
    m = domain_metrics(truth, np.array([0, 0, 1, 0, 1, 0, 1, 1]))
    assert m["n_labelled"] == 4 and m["n_unlabelled"] == 4 and m["ARI"] == pytest.approx(1.0)


def test_an_annotation_that_scores_something_else_is_named(tmp_path, caplog):
    """Placeholder labels ('Unknown', 'unassigned', MERFISH's 'Ambiguous', -1) are scored as a domain of
    their own, and one label for every spot makes every ARI 0: both were scored without a word.  Said
    (not changed: the label may be meant) by the qc job and by pl.domains; a per-spot value is refused."""
    import logging

    import matplotlib
    from slides import tiny_slide, write

    from stcore.evaluate import annotation_problems
    from stcore.qc import QCParams, prepare_slide

    matplotlib.use("Agg")
    said, refusal = annotation_problems(["L1", "L2", "unassigned ", "Unknown", "unassigned", np.nan, "-1"], "layer")
    assert refusal is None and len(said) == 1
    assert said[0].startswith("truth column 'layer' holds 'unassigned' (2 spots), 'Unknown' (1 spots), '-1' (1 spots), "
                              "a label that often means 'no label'; it is scored as a domain of its own. Fix: if those "
                              "spots are not annotated, set them to NaN"), said
    said, _ = annotation_problems(["cortex", "cortex ", None, "NA"], "region")
    assert said == ["truth column 'region' gives every annotated spot one label ('cortex'): every score compares the "
                    "domains with one class (ARI 0 whatever they are). Fix: name the column of the domain annotation"]
    assert annotation_problems(["L1", "L2", "L3"] * 50, "layer") == ([], None)
    assert annotation_problems([str(i) for i in range(150)], "n_counts")[1].startswith(
        "truth column 'n_counts' has 150 distinct labels on 150 annotated spots")
    adata = tiny_slide()
    adata.obs["domain"] = adata.obs["domain"].astype(str).where(adata.obs_names != "spot0003", "Unknown")
    caplog.set_level(logging.WARNING, logger="stcore")
    prepare_slide(str(write(adata, tmp_path / "s.h5ad")), "h5ad", QCParams(), truth="domain")
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 's.h5ad'}: truth column 'domain' holds 'Unknown' (1 spots), a label that often means 'no label'; "
        "it is scored as a domain of its own. Fix: if those spots are not annotated, set them to NaN before writing "
        "the file (adata.obs.loc[adata.obs['domain'] == 'Unknown', 'domain'] = np.nan)"]
    caplog.clear()
    adata.obs["found"] = adata.obs["domain"]
    stcore_pl_domains(adata)
    assert [r.getMessage() for r in caplog.records if "'Unknown'" in r.getMessage()], caplog.records
    adata.obs["domain"] = adata.obs["domain"].astype(str).replace("Unknown", "D0")
    caplog.clear()
    prepare_slide(str(write(adata, tmp_path / "t.h5ad")), "h5ad", QCParams(), truth="domain")
    assert not caplog.records                                   # an annotation as it should be: no word


def stcore_pl_domains(adata):
    import matplotlib.pyplot as plt

    import stcore

    fig = stcore.pl.domains(adata, key="found", truth="domain", return_fig=True, show=False)
    plt.close(fig)


def test_missing_labels_written_as_pandas_writes_them_are_left_out():
    """A nullable annotation (Int64, string) made text with astype(str) holds '<NA>' where a spot has
    no label: left out of every score as a missing label is, not scored as a domain '<NA>'."""
    import pandas as pd

    from stcore.evaluate import domain_metrics, is_missing_label

    layer = pd.array([1, 1, 2, 2, None, None, 3, 3], dtype="Int64")
    pred = np.array(["a", "a", "b", "b", "c", "c", "c", "c"])
    as_text = pd.Series(layer).astype(str)
    assert list(as_text[4:6]) == ["<NA>", "<NA>"]
    assert is_missing_label(as_text).tolist() == is_missing_label(pd.Series(layer)).tolist()
    text, labelled = domain_metrics(as_text, pred), domain_metrics(pd.Series(layer), pred)
    assert text["n_unlabelled"] == 2 and text["ARI"] == labelled["ARI"] == 1.0


def test_missing_labels_as_excel_and_pandas_read_csv_write_them_are_left_out():
    """An annotation merged in a spreadsheet holds Excel's '#N/A' where its lookup found no label
    (or 'N/A', SQL's 'NULL'); read as text (by R, or with keep_default_na=False) those stay in the
    column.  They are the spellings pandas' read_csv reads as missing: left out of every score and
    of qc's all-missing check, not scored as a domain '#N/A' of its own."""
    import pandas as pd

    from stcore.evaluate import domain_metrics, is_missing_label

    truth = pd.Series(["L1", "L1", "L2", "L2", "#N/A", "N/A", "NULL", "n/a", " #N/A "])
    pred = np.array(["a", "a", "b", "b", "b", "a", "b", "a", "a"])
    assert is_missing_label(truth).tolist() == [False] * 4 + [True] * 5
    scores = domain_metrics(truth, pred)
    assert scores["n_unlabelled"] == 5 and scores["ARI"] == 1.0
    # every spelling pandas' read_csv reads as missing by default is a missing label here
    import io
    spellings = ["#N/A", "#N/A N/A", "N/A", "n/a", "#NA", "NULL", "null", "-NaN", "-nan", "1.#IND", "-1.#IND",
                 "1.#QNAN", "-1.#QNAN", "NA", "NaN", "nan", "None", "<NA>", ""]
    read = pd.read_csv(io.StringIO("label\n" + "\n".join(f'"{s}"' for s in spellings) + "\n"))["label"]
    assert read.isna().all() and is_missing_label(pd.Series(spellings)).all()


def test_layers_consistent_does_not_hang_on_the_order_of_the_spots():
    """Slide A's L1 spots lie in domains 0 and 1 alike (a tie), slide B's in domain 0: L1 may map to domain 0
    on both, whatever the spots' order (was 0.5 in one order and 0.0 in the other: the tie went to the
    domain of the first spot)."""
    import numpy as np

    from stcore.evaluate import integration_metrics

    slides = np.array(["A"] * 4 + ["B"] * 4)
    truth = np.array(["L1", "L1", "L2", "L2"] * 2, dtype=object)
    for labels in ([0, 1, 1, 1, 0, 0, 2, 2], [1, 0, 1, 1, 0, 0, 2, 2]):
        assert integration_metrics(None, np.array(labels), slides, truth)["layers_consistent"] == 0.5


def test_a_numeric_placeholder_is_named_with_a_fix_that_selects_it():
    """A numeric annotation with -1 for spots without a domain: stored as floats (codes with NaN, as a CSV
    with empty cells reads) its -1.0 was not named at all; as integers the fix compared the column with
    the text '-1', which selects no spot of a column of numbers."""
    import pandas as pd

    from stcore.evaluate import annotation_problems

    for codes in (pd.Series([1.0, 2.0, -1.0, np.nan, 1.0]), pd.Series([1, 2, -1, 1]),
                  pd.Series(pd.Categorical([1, 2, -1, 1]))):
        said, refusal = annotation_problems(codes, "code")
        assert refusal is None and len(said) == 1, (codes.dtype, said)
        assert said[0].startswith("truth column 'code' holds '-1' (1 spots), a label that often means"), said
        fix = re.search(r"\(adata\.obs\.loc\[(.*), 'code'\] = np\.nan\)$", said[0])[1]
        assert fix == "adata.obs['code'] == -1", said
        obs = pd.DataFrame({"code": codes})
        assert eval(fix, {"adata": type("A", (), {"obs": obs})}).sum() == 1      # the fix selects that spot
    said, _ = annotation_problems(pd.Series(["L1", "L2", "-1", "L1"]), "layer")     # text: compared as text
    assert "(adata.obs.loc[adata.obs['layer'] == '-1', 'layer'] = np.nan)" in said[0]


def test_a_placeholder_written_with_spaces_is_selected_whole_by_the_fix():
    """'unassigned ' (a spreadsheet's trailing space) beside 'unassigned' is one label, as scored; the fix
    compared the column with 'unassigned', which leaves the spots written with the space."""
    import pandas as pd

    from stcore.evaluate import annotation_problems

    for layer in (pd.Series(["L1", "L2", "unassigned ", "unassigned", "L1"]),
                  pd.Series(pd.Categorical(["L1", "L2", "unassigned ", "unassigned", "L1"]))):
        said, _ = annotation_problems(layer, "layer")
        assert said[0].startswith("truth column 'layer' holds 'unassigned' (2 spots)"), said
        fix = re.search(r"\(adata\.obs\.loc\[(.*), 'layer'\] = np\.nan\)$", said[0])[1]
        assert fix == "adata.obs['layer'].str.strip() == 'unassigned'", said
        assert eval(fix, {"adata": type("A", (), {"obs": pd.DataFrame({"layer": layer})})}).sum() == 2


def test_labels_of_one_slide_that_differ_only_in_case_or_spaces_are_named(tmp_path, caplog):
    """One annotation that writes a layer two ways ('Layer3' and 'layer3', 'Layer_3', 'Layer 3'; as two
    annotators or a merged export leave it) scores each spelling as a domain of its own: a perfect
    labelling of DLPFC 151673 with half of Layer3 written 'layer3' scores ARI 0.862, without a word.
    Said (not changed: case is kept, 'layer3' may be meant as another label) by the qc job and by
    pl.domains; the fix, followed, leaves one label and no word."""
    import logging

    import matplotlib
    import pandas as pd
    from slides import tiny_slide, write

    from stcore.evaluate import annotation_problems
    from stcore.qc import QCParams, prepare_slide

    matplotlib.use("Agg")
    said, refusal = annotation_problems(["Layer3", "layer3", "Layer3", "L1", "L1", "L_1", np.nan], "layer")
    assert refusal is None and said == [
        "truth column 'layer' writes labels that differ only in case, spaces or '_' ('Layer3' (2 spots) and 'layer3' "
        "(1 spots) and 1 more): each spelling is scored as a domain of its own, so the spots of one domain count as "
        "split (DLPFC 151673 with half of Layer3 written 'layer3': ARI 0.862 for a perfect labelling). Fix: if they "
        "are one domain, write them alike before writing the file (adata.obs.loc[adata.obs['layer'] == 'layer3', "
        "'layer'] = 'Layer3')"]
    assert annotation_problems(["L1", "L2", "L2 ", "1", "-1", "WM", "wm2"], "layer")[0] == [
        "truth column 'layer' holds '-1' (1 spots), a label that often means 'no label'; it is scored as a domain of "
        "its own. Fix: if those spots are not annotated, set them to NaN before writing the file "
        "(adata.obs.loc[adata.obs['layer'] == '-1', 'layer'] = np.nan)"]       # '-1' is not '1'; 'L2 ' is 'L2'
    adata = tiny_slide()
    adata.obs["domain"] = adata.obs["domain"].astype(str).where(adata.obs_names != "spot0003", "d0")
    caplog.set_level(logging.WARNING, logger="stcore")
    prepare_slide(str(write(adata, tmp_path / "s.h5ad")), "h5ad", QCParams(), truth="domain")
    fix = f"{tmp_path / 's.h5ad'}: truth column 'domain' writes labels that differ only in case, spaces or '_' ('D0' "
    assert [r.getMessage()[:len(fix)] for r in caplog.records] == [fix]
    caplog.clear()
    adata.obs["found"] = adata.obs["domain"]
    stcore_pl_domains(adata)
    assert [r for r in caplog.records if "differ only in case" in r.getMessage()], caplog.records
    adata.obs["domain"] = pd.Categorical(adata.obs["domain"])
    adata.obs.loc[adata.obs["domain"] == "d0", "domain"] = "D0"                   # the fix, followed
    caplog.clear()
    prepare_slide(str(write(adata, tmp_path / "t.h5ad")), "h5ad", QCParams(), truth="domain")
    assert not caplog.records


def test_a_truth_column_changed_after_qc_is_refused_by_the_steps_that_read_it(tmp_path):
    """A changed truth column reruns the steps that read the annotation, not qc: they refuse a column
    that is no annotation with qc's own check, naming the slide's file, before any score is written
    (a group's join, for each of its slides)."""
    import pytest
    from slides import evaluate_inputs, tiny_slide

    from stcore.errors import InputError
    from stcore.group import join_slides
    from stcore.io import read_h5ad_elems
    from stcore.workflow import ANNOTATION_ELEMS, checked_truth

    slide = tiny_slide()
    slide.obs["leiden"] = slide.obs["domain"].cat.codes.astype(str)      # another tool's clusters, by name
    qc, hvg, _, _ = evaluate_inputs(slide, tmp_path, "domain")
    path = str(tmp_path / "slide.h5ad")
    assert checked_truth(read_h5ad_elems(hvg, *ANNOTATION_ELEMS, "uns/domain"), "domain").equals(qc.obs["domain"])
    assert checked_truth(read_h5ad_elems(hvg, *ANNOTATION_ELEMS), "") is None
    with pytest.raises(InputError, match=rf"file '{path}': truth column 'leiden' holds the clusters of scanpy's "
                                         r"sc.tl.leiden or sc.tl.louvain, by its name, not an annotation.*Fix: set "
                                         r"the sample sheet's truth column to the slide's annotation"):
        checked_truth(read_h5ad_elems(hvg, *ANNOTATION_ELEMS, "uns/leiden"), "leiden")
    with pytest.raises(InputError, match=rf"file '{path}': truth column 'Domain' is not in obs \('domain' differs"):
        checked_truth(read_h5ad_elems(hvg, *ANNOTATION_ELEMS, "uns/Domain"), "Domain")
    (tmp_path / "b").mkdir()
    other, _, _, _ = evaluate_inputs(tiny_slide(seed=1), tmp_path / "b", "domain")
    other.obs["leiden"] = other.obs["domain"]
    with pytest.raises(InputError, match=rf"file '{tmp_path / 'b' / 'slide.h5ad'}': truth column 'leiden' holds the clusters"):
        join_slides({"a": qc, "b": other}, {"a": "domain", "b": "leiden"}, "g")


def test_maps_of_a_slide_without_annotation_draw_one_region_in_one_colour(tmp_path, monkeypatch):
    """A slide whose sheet names no truth column: each run's domains.png drew its domains in the palette in the
    order of its own numbers, so one region changed colour from map to map (STARmap BZ5: L2/3 green in the
    answer's map, red in cellcharter seed 0's).  Each map (scripts/evaluate.py, scripts/consensus.py) is matched
    to the domains of the reference run its job is given (rules: Plan.map_reference), as an annotated slide's
    maps are matched to the annotation; an annotated slide's map is the same with or without one."""
    from types import SimpleNamespace

    import pandas as pd

    import stcore.report
    from slides import evaluate_inputs, script, tiny_slide

    adata, hvg, _, npz = evaluate_inputs(tiny_slide(n_side=12, domains=3), tmp_path, "")   # no truth column
    band = adata.obs["domain"].cat.codes.to_numpy()        # three bands of rows
    changed = np.arange(0, adata.n_obs, 17)
    runs = {"ref": band, "other": (band + 1) % 3, "moved": (band + 1) % 3}      # the same regions, numbered otherwise
    runs["moved"][changed] = (runs["moved"][changed] + 1) % 3                 # and a few spots elsewhere
    for name, domains in runs.items():
        pd.DataFrame({"spot": adata.obs_names, "domain": domains}).to_csv(tmp_path / f"{name}.tsv", sep="\t",
                                                                          index=False)
    drawn = {}
    save = stcore.report.save_figure
    monkeypatch.setattr(stcore.report, "save_figure", lambda fig, path: (
        drawn.__setitem__(path, fig.axes[0].collections[0].get_facecolors()[:, :3].copy()), save(fig, path)))

    def draw(step, labels, reference, truth="", name="map"):
        png = str(tmp_path / f"{name}.png")
        run = {"sample": "s", "method": "m", "seed": "consensus" if step == "consensus" else 0, "trained_by": "m",
               "consensus_of": "0,1"}
        script(step).main(SimpleNamespace(
            input=SimpleNamespace(labels=labels, h5ad=str(hvg), npz=str(npz),
                                  reference=[str(tmp_path / f"{reference}.tsv")] if reference else []),
            output=SimpleNamespace(metrics=str(tmp_path / f"{name}.metrics.tsv"), png=png,
                                   labels=str(tmp_path / f"{name}.labels.tsv")),
            params=SimpleNamespace(truth=truth, settings={}, run=run)))
        return png

    ref = drawn[draw("evaluate", str(tmp_path / "ref.tsv"), None, name="ref")]          # the reference's own map
    other = drawn[draw("evaluate", str(tmp_path / "other.tsv"), "ref", name="other")]
    assert len({tuple(c) for c in ref}) == 3 and np.array_equal(other, ref)           # every spot as in the reference
    moved = drawn[draw("evaluate", str(tmp_path / "moved.tsv"), "ref", name="moved")]
    kept = np.setdiff1d(np.arange(adata.n_obs), changed)
    assert np.array_equal(moved[kept], ref[kept]) and not np.array_equal(moved[changed], ref[changed])
    vote = drawn[draw("consensus", [str(tmp_path / f"{n}.tsv") for n in ("other", "moved", "other")], "ref",
                      name="vote")]
    assert np.array_equal(vote, ref)                   # a vote's map too (consensus step: the seeds', the methods')
    # an annotated slide: its map matches the annotation, whatever reference its job were given
    adata, hvg, _, npz = evaluate_inputs(tiny_slide(n_side=12, domains=3), tmp_path, "domain")
    with_ref = Path(draw("evaluate", str(tmp_path / "other.tsv"), "ref", truth="domain", name="a1")).read_bytes()
    assert with_ref == Path(draw("evaluate", str(tmp_path / "other.tsv"), None, truth="domain", name="a2")).read_bytes()


def test_domains_h5ad_of_a_slide_without_annotation_keeps_the_colours_its_map_draws(tmp_path, monkeypatch):
    """domains.h5ad keeps the colours of its run's map (uns['domain_colors'], so sc.pl.spatial draws the same):
    on a slide without an annotation, those matched to the reference run's domains (stcore.export.domains_adata's
    reference, the export jobs' input as the evaluate and consensus jobs'); it kept the colours of its own
    numbers, another colour than its map's for the same spots."""
    import scipy.sparse as sp
    from matplotlib.colors import to_hex

    import stcore.report
    from slides import evaluate_inputs, tiny_slide
    from stcore.export import domains_adata

    adata, _, _, _ = evaluate_inputs(tiny_slide(n_side=12, domains=3), tmp_path, "")     # no truth column
    ref = adata.obs["domain"].cat.codes.to_numpy()
    other = (ref + 1) % 3                     # the same regions, numbered otherwise

    def kept(labels, reference):
        h5ad = domains_adata(adata, labels, np.zeros((adata.n_obs, 2)), sp.identity(adata.n_obs, format="csr"),
                             method="graphst", info={}, reference=reference)
        key = h5ad.uns["stcore"]["key"]           # stcore_domain: the slide has a 'domain' column of its own
        colours = dict(zip(h5ad.obs[key].cat.categories, h5ad.uns[f"{key}_colors"]))
        return [colours[v] for v in h5ad.obs[key].astype(str)]

    drawn = []
    save = stcore.report.save_figure
    monkeypatch.setattr(stcore.report, "save_figure", lambda fig, path: (
        drawn.append([to_hex(c) for c in fig.axes[0].collections[0].get_facecolors()]), save(fig, path)))
    plot_domains(adata.obsm["spatial"], other, reference=ref, path=tmp_path / "other.png")
    assert kept(other, ref) == drawn[0] == kept(ref, None)         # as its map, and as the reference's own
    assert kept(other, None) != drawn[0]                           # without the reference: its own numbers' colours

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from stcore.cluster import ClusterParams, graph_communities, pca_scores, refine, run_cluster
from stcore.evaluate import domain_metrics


def _blobs(n=300, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, size=(k, 10))
    truth = np.repeat(np.arange(k), n // k)
    return centres[truth] + rng.normal(size=(len(truth), 10)), truth


def test_pca_of_factored_product_equals_pca_of_the_product():
    rng = np.random.default_rng(1)
    left, right = rng.normal(size=(200, 8)), rng.normal(size=(8, 50))
    ours = pca_scores(left, right, 5)
    ref = PCA(n_components=5, svd_solver="full").fit_transform(left @ right)
    for j in range(5):  # equal up to the sign of each component
        assert np.allclose(ours[:, j], ref[:, j], atol=1e-8) or np.allclose(ours[:, j], -ref[:, j], atol=1e-8)


@pytest.mark.parametrize("algorithm", ["mclust", "gmm_tied", "kmeans", "leiden", "louvain"])
def test_every_algorithm_finds_separated_blobs(algorithm):
    x, truth = _blobs()
    labels = run_cluster(x, np.zeros((len(x), 2)), 3, ClusterParams(algorithm=algorithm, n_init=3))
    assert len(np.unique(labels)) == 3
    assert domain_metrics(truth, labels)["ARI"] > 0.95


def test_resolution_search_hits_the_number_of_clusters():
    x = np.random.default_rng(2).random((500, 2))   # one connected cloud: any k is reachable
    for algorithm in ("leiden", "louvain"):
        for k in (4, 9):
            labels = graph_communities(x, k, algorithm=algorithm, seed=0)
            assert len(np.unique(labels)) == k


def test_same_seed_same_labels():
    x, _ = _blobs(seed=3)
    p = ClusterParams(algorithm="mclust", seed=4, n_init=2)
    assert np.array_equal(run_cluster(x, np.zeros((len(x), 2)), 3, p), run_cluster(x, np.zeros((len(x), 2)), 3, p))


def test_refine_takes_the_neighbourhood_majority():
    xy = np.column_stack([np.arange(30.0), np.zeros(30)])
    labels = np.array([0] * 15 + [1] * 15)
    noisy = labels.copy()
    noisy[5] = 1
    noisy[20] = 0
    assert np.array_equal(refine(noisy, xy, n_neighbors=5), labels)


def test_refine_keeps_own_label_on_ties():
    xy = np.array([[0.0, 0], [1, 0], [2, 0], [3, 0]])
    # spot 1 sees itself (1), spot 0 (0), spot 2 (0 or 1)... build an exact 2-2 tie with 4 neighbours
    labels = np.array([0, 1, 1, 0])
    assert np.array_equal(refine(labels, xy, n_neighbors=4), labels)


def test_own_returns_the_methods_labels_and_fails_clearly_without_them():
    from stcore.errors import InputError

    xy = np.column_stack([np.arange(6.0), np.zeros(6)])
    own = np.array([2, 2, 0, 0, 1, 1])
    p = ClusterParams(algorithm="own")
    assert np.array_equal(run_cluster(None, xy, 3, p, own_labels=own), own)
    with pytest.raises(InputError, match=r"method 'stagate' made none.*Fix: use another cluster.algorithm"):
        run_cluster(None, xy, 3, p, own_labels=None, owner="stagate")
    with pytest.raises(InputError, match="shape"):
        run_cluster(None, xy, 3, p, own_labels=own[:4], owner="spagcn")


def test_consensus_takes_each_spots_majority():
    """The consensus of seeds' labelings: renamed copies of one partition give it back; a spot takes
    the label most labelings give it after matching."""
    from stcore.consensus import consensus
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(4), 50)
    renamed = [np.array(list("abcd"))[truth], (truth + 1) % 4, truth * 10]
    assert adjusted_rand_score(consensus(renamed), truth) == 1.0
    noisy = []
    for _ in range(5):            # each labeling relabels a different 15 % of the spots at random
        lab = truth.copy()
        flip = rng.random(len(lab)) < 0.15
        lab[flip] = rng.integers(0, 4, flip.sum())
        noisy.append(rng.permutation(4)[lab])
    assert all(adjusted_rand_score(lab, truth) < 0.9 for lab in noisy)
    assert adjusted_rand_score(consensus(noisy), truth) > 0.95


def test_labelings_of_different_sizes_keep_the_median_number():
    """With n_clusters auto each run chooses its number; the vote keeps its reference's.  Two copies
    of an 8-domain labeling are each other's best match and would be the medoid of all five; the
    reference is the medoid of the labelings with the median number (4), so the answer has 4.
    Labelings of one size: the medoid of all, as before."""
    from sklearn.metrics import adjusted_rand_score

    from stcore.consensus import _vote, consensus

    rng = np.random.default_rng(1)
    truth = np.repeat(np.arange(4), 60)
    four = []
    for _ in range(3):
        lab = truth.copy()
        flip = rng.random(len(lab)) < 0.3
        lab[flip] = rng.integers(0, 4, flip.sum())
        four.append(lab)
    eight = truth * 2 + (np.arange(len(truth)) % 2)          # every domain halved
    labelings = four + [eight, eight.copy()]
    mean = [np.mean([adjusted_rand_score(a, b) for j, b in enumerate(labelings) if j != i])
            for i, a in enumerate(labelings)]
    assert int(np.argmax(mean)) == 3                          # the medoid of all: a copy of the 8
    answer = consensus(labelings)
    assert len(np.unique(answer)) == 4 and adjusted_rand_score(answer, truth) > 0.8
    codes = [pd.factorize(lab)[0] for lab in four]             # one size: the medoid of all, as before
    medoid = int(np.argmax([np.mean([adjusted_rand_score(a, b) for j, b in enumerate(four) if j != i])
                            for i, a in enumerate(four)]))
    assert np.array_equal(consensus(four), _vote(codes, codes[medoid]))


def test_spatial_vote_decides_a_three_way_split_by_the_neighbours():
    """With ``adjacency`` each spot's votes are counted over it and its neighbours: a spot where
    three labelings disagree takes its neighbourhood's domain, not the medoid's own label; a spot
    every labeling agrees on keeps it; without a graph the vote is unchanged."""
    import scipy.sparse as sp

    from stcore.consensus import consensus

    line = np.repeat([0, 1, 2], [5, 5, 2])           # twelve spots on a line, three domains
    a, b, c = line.copy(), line.copy(), line.copy()
    b[7], c[7] = 0, 2                                # spot 7: three labels from three labelings
    path = sp.diags([np.ones(11), np.ones(11)], [-1, 1], format="csr")
    alone, spatial = consensus([a, b, c]), consensus([a, b, c], path + sp.eye(12))   # a self loop is no extra vote
    assert alone[7] != alone[6] and spatial[7] == spatial[6] == spatial[9] != spatial[0]
    assert np.array_equal(alone[:7], spatial[:7]) and np.array_equal(consensus([a, b, c], None), alone)


def test_stability_peaks_at_the_number_of_separated_groups_or_one_above():
    """auto stability on blobs: every number below the groups merges two of them and agrees less
    with its neighbours, so the peak is at the number of groups or one above it (a split added
    to the right number is redone alike by every run, a merge is not: the neighbour comparison's
    known lean to one more)."""
    from stcore.mclust import mclust_stability

    for k in (3, 5):
        x, _ = _blobs(n=300, k=k, seed=k)
        best, curve = mclust_stability(x, range(2, 8), repeats=3, seed=1)
        assert best in (k, k + 1) and sorted(curve) == list(range(2, 8))
        assert all(curve[g] < curve[k] for g in range(2, k))


def test_stability_compares_two_with_the_one_cluster_labelling_below_it():
    """G = 2's neighbours are G = 3 and the one-cluster labelling (as ClusterAutoK fits it): under
    'ari' half of its pairs agree 0, so its score is half its agreement with G = 3; a range that
    starts above 2 leaves every score as it was."""
    from stcore.evaluate import fowlkes_mallows
    from stcore.mclust import mclust_stability

    x, _ = _blobs(n=300, k=2, seed=7)
    _, ari_curve = mclust_stability(x, range(2, 6), repeats=3, seed=1)
    _, fmi_curve = mclust_stability(x, range(2, 6), repeats=3, seed=1, measure="fmi")
    _, from3 = mclust_stability(x, range(3, 6), repeats=3, seed=1)
    assert ari_curve[2] <= 0.5 and fmi_curve[2] > ari_curve[2]
    assert all(ari_curve[g] == from3[g] for g in (3, 4, 5))
    two = np.repeat([0, 1], [150, 150])
    assert fowlkes_mallows(two, np.zeros(300, dtype=int)) == pytest.approx(np.sqrt(149 / 299))


def test_auto_stability_records_its_curve_and_clusters_as_if_given(caplog):
    x, truth = _blobs(n=300, k=4, seed=4)
    xy = np.zeros((len(x), 2))
    p = ClusterParams(auto="stability", auto_range=(2, 6), auto_repeats=3, auto_measure="fmi", seed=2)
    record = {}
    with caplog.at_level("INFO", logger="stcore.cluster"):
        labels = run_cluster(x, xy, "auto", p, record=record)
    assert record["by"] == "stability" and record["measure"] == "fmi" and record["repeats"] == 3
    assert record["n_clusters"] == [2, 3, 4, 5, 6] and len(record["score"]) == 5
    assert record["chosen"] == len(np.unique(labels))
    assert np.array_equal(labels, run_cluster(x, xy, record["chosen"], p))       # the features reclustered alike
    assert "n_clusters auto: stability (fmi, 3 runs) by G: 2: " in caplog.text
    bic = {}
    run_cluster(x, xy, "auto", ClusterParams(auto="bic", auto_range=(2, 6)), record=bic)
    assert bic["by"] == "bic" and bic["chosen"] == 4 and bic["n_clusters"] == [2, 3, 4, 5, 6]


def test_auto_that_chooses_the_top_of_its_range_says_so(caplog):
    """n_clusters 'auto' whose score is highest at the largest number of cluster.auto_range has found no
    peak: the features may hold more domains than the range reaches (four blobs, a range of [2, 3]), or
    none that a rerun finds again (the recommended answer on a 196-spot slide of 3 domains at 20 epochs:
    4 of its 9 runs chose 15, stability at most 0.16, and the answer had 12 domains, ARI 0.40 against
    0.73 with the number given).  It was taken without a word; now a warning names the number, the range
    and the fix.  A number inside the range: nothing."""
    x, _ = _blobs(n=300, k=4, seed=4)
    xy = np.zeros((len(x), 2))
    with caplog.at_level("WARNING", logger="stcore.cluster"):
        labels = run_cluster(x, xy, "auto", ClusterParams(auto_range=(2, 3), auto_repeats=3, seed=2))
    assert len(np.unique(labels)) == 3
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) == 1 and said[0].startswith(
        "n_clusters auto chose 3, the largest number of cluster.auto_range [2, 3]: its stability (ari) is highest "
        "there (0.620; 0.264 at 2), so the slide may hold more domains than the range reaches, or none that the "
        "runs find again"), said
    assert said[0].endswith("Fix: widen cluster.auto_range (e.g. [2, 30]) to see where its score peaks, or give "
                            "n_clusters as a number (the sample sheet's column; tl.domains: n_clusters=)")
    caplog.clear()
    with caplog.at_level("WARNING", logger="stcore.cluster"):
        run_cluster(x, xy, "auto", ClusterParams(auto_range=(2, 8), auto_repeats=3, seed=2))
        run_cluster(x, xy, "auto", ClusterParams(auto="bic", auto_range=(2, 6)))
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    # the top that the spots allow, below the range's (stability draws half the spots): named as such
    few, _ = _blobs(n=28, k=14, seed=4)
    caplog.clear()
    with caplog.at_level("WARNING", logger="stcore.cluster"):
        run_cluster(few, xy[:28], "auto", ClusterParams(auto_range=(2, 15), auto_repeats=3, seed=2))
    capped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("n_clusters auto")]
    assert len(capped) == 1 and capped[0].startswith(
        "n_clusters auto chose 11, the largest number that 28 spots allow of cluster.auto_range [2, 15]")
    assert capped[0].endswith("Fix: give n_clusters as a number (the sample sheet's column; tl.domains: n_clusters=)")


def test_auto_settings_are_in_the_schema_with_defaults_and_are_checked():
    from dataclasses import fields

    from stcore.errors import InputError
    from stcore.validate import check_settings, config_schema

    props = config_schema()["$defs"]["cluster"]["properties"]
    defaults = {f.name: f.default for f in fields(ClusterParams)}
    defaults["auto_range"] = list(defaults["auto_range"])
    for key in ("auto", "auto_range", "auto_measure", "auto_repeats"):
        assert props[key]["description"] and props[key]["default"] == defaults[key], key
    check_settings(cluster={"auto": "stability", "auto_measure": "fmi", "auto_repeats": 4, "auto_range": [3, 9]})
    for bad in ({"auto": "gap"}, {"auto_measure": "nmi"}, {"auto_repeats": 1}, {"auto_range": [1, 9]}):
        with pytest.raises(InputError, match=f"cluster\\.{next(iter(bad))}"):
            check_settings(cluster=bad)


def _small_slide_features(n_spots=80, seed=1):
    """A tiny simulated slide: four domains on a grid, 20 features (PCs of decreasing spread)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, 20))
    domain = rng.integers(0, 4, n_spots)
    features = (centres[domain] + rng.normal(size=(n_spots, 20))) * np.linspace(3, 0.2, 20)
    coords = np.c_[np.arange(n_spots) % 10, np.arange(n_spots) // 10].astype(float)
    return features, coords


def test_mclust_warns_when_a_small_slide_collapses_into_one_domain(caplog):
    """mclust's EEE mixture on 20 PCs has 293 parameters for 4 domains; fitted on a slide of few
    spots it puts most of them into one domain (300 cells of STARmap BZ5: graphst 95% in one).
    The labels are kept; the log says so, with the fix.  Other algorithms, and a labelling whose
    largest domain holds at most half the spots, get no such line."""
    import logging

    features, coords = _small_slide_features()
    with caplog.at_level(logging.WARNING, logger="stcore.cluster"):
        labels = run_cluster(features, coords, 4, ClusterParams())
    assert np.bincount(labels).max() > 0.5 * len(labels)
    assert "cluster mclust: 57 of the 80 spots (71%) are in one of the 4 domains" in caplog.text
    assert "Fix: cluster: {n_pcs: 5}" in caplog.text and "cluster: {algorithm: kmeans}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="stcore.cluster"):
        run_cluster(features, coords, 4, ClusterParams(algorithm="kmeans"))
        run_cluster(*_small_slide_features(seed=0), 4, ClusterParams())     # largest domain 31%
    assert "cluster mclust" not in caplog.text


def test_n_pcs_used_is_the_number_of_components_clustered():
    """n_pcs_used (the record's n_pcs) counts the columns features_of gives: fewer than asked where the
    embedding has fewer dimensions, the reconstruction fewer genes, or the slide fewer spots."""
    from stcore.cluster import ClusterParams, features_of, n_pcs_used
    from stcore.methods import MethodResult

    rng = np.random.default_rng(0)
    cases = [(MethodResult(embedding=rng.normal(size=(50, 20))), "embedding", 30),
             (MethodResult(embedding=rng.normal(size=(50, 20))), "embedding", 5),
             (MethodResult(embedding=rng.normal(size=(12, 20))), "embedding", 30),
             (MethodResult(embedding=rng.normal(size=(50, 8)), decoded=rng.normal(size=(50, 64)),
                           decoder_weight=rng.normal(size=(64, 33))), "reconstruction", 40)]
    for result, source, n_pcs in cases:
        params = ClusterParams(input=source, n_pcs=n_pcs)
        assert n_pcs_used(result, params) == features_of(result, params).shape[1]
    assert [n_pcs_used(r, ClusterParams(input=s, n_pcs=n)) for r, s, n in cases] == [20, 5, 12, 33]
    assert n_pcs_used(cases[0][0], ClusterParams(algorithm="own")) is None

import numpy as np
import pytest

from stcore.evaluate import domain_metrics, matched_f1, plot_domains


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

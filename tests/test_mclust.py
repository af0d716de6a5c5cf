"""stcore.mclust follows R mclust's EEE clustering: the VVV agglomeration criterion by hand,
the incremental agglomeration against a from-scratch one, EM, the seed's one role, and (with
R installed) the same labels as R's Mclust on the same rows."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import need_r
from stcore.cluster import ClusterParams, run_cluster
from stcore.evaluate import domain_metrics
from stcore.mclust import _criterion, em_eee, estep_eee, hc_vvv, mclust, mstep_eee, subset_rows, svd_transform


def _blobs(n_per=40, p=3, k=3, seed=0, spread=6.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, spread, (k, p))
    x = np.vstack([rng.normal(c, 1.0, (n_per, p)) for c in centres])
    return x, np.repeat(np.arange(k), n_per)


def _crit_of(points, alpha, beta=1.0):
    """The VVV criterion of one cluster, straight from its definition."""
    l, p = points.shape
    w = (points - points.mean(0)).T @ (points - points.mean(0))
    t = np.trace(w)
    if l <= p:
        return l * np.log(beta * (t + alpha) / l)
    if t == 0:
        return l * np.log(alpha * beta / l)
    return l * np.log(np.linalg.det(w / l) + beta * (t + alpha) / l)


def test_criterion_by_hand():
    alpha, p = 0.5, 2
    # A single point: log(alpha * beta); two points 2 apart: trace 2, 2 * log((2 + alpha) / 2).
    assert _criterion(np.array([1.0]), np.array([0.0]), np.array([-np.inf]), alpha, 1.0, p)[0] == pytest.approx(np.log(0.5))
    assert _criterion(np.array([2.0]), np.array([2.0]), np.array([-np.inf]), alpha, 1.0, p)[0] == pytest.approx(
        2 * np.log(2.5 / 2))
    # Three points (l > p): det(W / 3) of the corners of a right triangle, by hand.
    pts = np.array([[0.0, 0], [3, 0], [0, 3]])
    w = (pts - pts.mean(0)).T @ (pts - pts.mean(0))       # [[6, -3], [-3, 6]]
    assert np.allclose(w, [[6, -3], [-3, 6]])
    det = (6 * 6 - 9) / 9                                  # det(W / 3) = 27 / 9 = 3
    got = _criterion(np.array([3.0]), np.array([12.0]), np.array([np.log(det)]), alpha, 1.0, p)[0]
    assert got == pytest.approx(3 * np.log(3 + (12 + alpha) / 3))
    assert got == pytest.approx(_crit_of(pts, alpha))


def _hc_from_scratch(z, n_clusters):
    """Greedy agglomeration recomputing every pair's cost from the points at every step."""
    n, p = z.shape
    alpha = ((z - z.mean(0)) ** 2).sum() / (n * p)
    clusters = [[i] for i in range(n)]
    while len(clusters) > n_clusters:
        best = None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                merged = z[clusters[a] + clusters[b]]
                cost = _crit_of(merged, alpha) - _crit_of(z[clusters[a]], alpha) - _crit_of(z[clusters[b]], alpha)
                if best is None or cost < best[0]:
                    best = (cost, a, b)
        _, a, b = best
        clusters[a] = clusters[a] + clusters.pop(b)
    labels = np.empty(n, dtype=int)
    for k, members in enumerate(clusters):
        labels[members] = k
    return labels


@pytest.mark.parametrize("n_clusters", [20, 8, 3])
def test_agglomeration_matches_a_from_scratch_one(n_clusters):
    x, _ = _blobs(n_per=12, p=2, seed=5, spread=3.0)       # 36 points, clusters grow past p = 2
    z = svd_transform(x)
    ours = hc_vvv(z, n_clusters)
    ref = _hc_from_scratch(z, n_clusters)
    assert domain_metrics(ref, ours)["ARI"] == pytest.approx(1.0)


def test_identical_rows_start_together():
    x, _ = _blobs(n_per=10, p=2, seed=1)
    x = np.vstack([x, x[:5]])                               # five duplicated rows
    labels = hc_vvv(svd_transform(x), 3)
    assert np.array_equal(labels[-5:], labels[:5])


def test_em_raises_the_likelihood_and_finds_blobs():
    x, truth = _blobs(n_per=50, p=4, seed=2)
    rng = np.random.default_rng(0)
    start = np.where(rng.random(len(x)) < 0.3, rng.integers(0, 3, len(x)), truth)   # 30% of labels scrambled
    z = 0.5 * np.eye(3)[start] + 0.5 * rng.dirichlet(np.ones(3), size=len(x))
    lls = []
    for _ in range(15):
        z, ll = estep_eee(x, *mstep_eee(x, z))
        lls.append(ll)
    assert np.all(np.diff(lls) >= -1e-8)
    post, ll, it = em_eee(x, z)
    assert ll >= lls[-1] - 1e-8 and it >= 1
    assert domain_metrics(truth, post.argmax(1))["ARI"] > 0.99


def test_em_by_sufficient_statistics_is_the_same_fit():
    """em_eee with ``gram`` (the stability's fit: M-step from x'x, E-step by one matrix product)
    takes the same steps as the pass per component: the same likelihood, iterations and labels."""
    x, _ = _blobs(n_per=60, p=5, k=4, seed=3, spread=3.0)
    x = x - x.mean(axis=0)
    z0 = np.eye(4)[hc_vvv(svd_transform(x), 4)]
    for gram in (None, x.T @ x):
        pro, mu, chol = mstep_eee(x, z0, gram)
        if gram is None:
            ref = (pro, mu, chol)
        else:
            for a, b in zip(ref, (pro, mu, chol)):
                assert np.allclose(a, b, rtol=1e-10, atol=1e-12)
    post, ll, it = em_eee(x, estep_eee(x, *ref)[0])
    post_g, ll_g, it_g = em_eee(x, estep_eee(x, *ref, expanded=True)[0], gram=x.T @ x)
    assert it_g == it and ll_g == pytest.approx(ll, rel=1e-12)
    assert np.allclose(post_g, post, atol=1e-9) and np.array_equal(post_g.argmax(1), post.argmax(1))


def test_seed_enters_only_through_the_subset():
    x, truth = _blobs(n_per=60, p=3, seed=3, spread=2.5)
    assert np.array_equal(mclust(x, 3, seed=0), mclust(x, 3, seed=99))        # 180 rows <= 2000: no draw
    assert np.array_equal(subset_rows(180, 0, 100), subset_rows(180, 0, 100))
    assert not np.array_equal(subset_rows(180, 0, 100), subset_rows(180, 1, 100))
    labels = run_cluster(x, np.zeros((len(x), 2)), 3, ClusterParams(algorithm="mclust", subset=100, seed=4))
    assert domain_metrics(truth, labels)["ARI"] > 0.95


def test_same_labels_as_r_mclust_on_the_same_rows():
    """R's Mclust(EEE, G) given the same agglomeration subset gives the same labels (needs R)."""
    from stcore.agreement import mclust_r

    need_r()
    x, _ = _blobs(n_per=80, p=5, k=4, seed=4, spread=2.0)   # overlapping blobs: the start matters
    for subset in (400, 150):
        rows = subset_rows(len(x), 7, subset)
        ours = mclust(x, 4, seed=7, subset=subset)
        r = mclust_r(x, 4, seed=7, subset=rows if subset < len(x) else None)
        assert domain_metrics(r, ours)["ARI"] == pytest.approx(1.0)


def test_bic_picks_the_number_of_blobs():
    from stcore.mclust import mclust_bic

    x, truth = _blobs(n_per=60, p=3, k=4, seed=2)
    best, bic, labels = mclust_bic(x, range(2, 8))
    assert best == 4 and set(bic) == set(range(2, 8)) and max(bic, key=bic.get) == 4
    assert domain_metrics(truth, labels)["ARI"] > 0.95
    assert np.array_equal(labels, mclust(x, 4))            # the same fit as mclust at G = 4


def test_agglomeration_cut_at_several_g_equals_one_cut_each():
    from stcore.mclust import hc_vvv_cuts

    x, _ = _blobs(n_per=30, p=3, k=3, seed=5, spread=2.0)
    z = svd_transform(x)
    cuts = hc_vvv_cuts(z, [2, 3, 5])
    for g in (2, 3, 5):
        assert np.array_equal(cuts[g], hc_vvv(z, g))


def test_bic_and_choice_as_r_mclust():
    """R's Mclust(EEE, G = 2:7) on the same rows: the same BIC per G and the same G (needs R)."""
    from stcore.agreement import mclust_r_bic
    from stcore.mclust import mclust_bic

    need_r()
    x, _ = _blobs(n_per=70, p=4, k=4, seed=8, spread=3.0)
    best, bic, _ = mclust_bic(x, range(2, 8))
    r_best, r_bic = mclust_r_bic(x, range(2, 8))
    assert best == r_best
    for g in r_bic:
        assert bic[g] == pytest.approx(r_bic[g], rel=1e-4)

"""mclust's clustering for one Gaussian mixture model with G fixed, in numpy (no R).

R's ``Mclust(x, G, modelNames = "EEE")`` with mclust's defaults (mclust 6) does:

1. take a random subset of ``mclust.options("subset")`` = 2000 rows when there are more;
2. transform that subset as ``hcUse = "SVD"``: centre and scale each column (sd with n - 1),
   rotate onto the right singular vectors and divide each by the square root of its
   singular value;
3. agglomerate it with ``hcModelName = "VVV"``: model-based hierarchical clustering that
   starts from single points (identical rows start together) and merges, at each step, the
   pair of clusters whose merge raises the VVV classification criterion least (Fraley 1998,
   SIAM J Sci Comput 20:270; the regularised criterion of mclust's ``hcVVV``, below);
4. cut the tree at G clusters, take one M-step on the subset from those hard labels, one
   E-step on all rows, then EM for the EEE model (one shared full covariance) on all rows
   until the log-likelihood changes by less than 1e-5 relative (``emControl()``'s tol);
5. label each row by its largest posterior.

On a slide with fewer than n_clusters + p + 1 spots only the first n - n_clusters - 1
columns are used, and a singular covariance gets a small ridge (R's mclust gives no result
there).

This module does the same steps.  Steps 2-5 are deterministic; only step 1 draws (from
``seed``), and only when there are more than ``subset`` rows.  Agglomeration is quadratic
in the subset (a ``subset x subset`` matrix of merge costs, 32 MB at 2000), never in N; EM is
linear in N.

The VVV criterion of a cluster with ``l`` members, scatter matrix ``W`` (p x p) and
``t = trace(W)``, with ``alpha = trace of the scatter of the whole transformed subset / (n p)``
and ``beta = 1`` (mclust's defaults)::

    l <= p:            l * log(beta (t + alpha) / l)
    l >  p, t = 0:     l * log(alpha beta / l)
    l >  p:            l * log(det(W / l) + beta (t + alpha) / l)

and a merge of clusters i and j costs ``crit(i u j) - crit(i) - crit(j)``.
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["MCLUST_SUBSET", "mclust", "fit_from_subset", "mclust_bic", "mclust_stability", "subset_rows",
           "svd_transform", "hc_vvv", "hc_vvv_cuts", "em_eee", "mstep_eee", "estep_eee"]

# mclust.options("subset"): rows used for the agglomeration.
MCLUST_SUBSET = 2000
# emControl(): relative change of the log-likelihood that stops EM, and the floor of
# posterior sums / covariance conditioning.
_TOL = 1e-5
_EPS = np.finfo(float).eps
_RTEPS = np.sqrt(_EPS)


def svd_transform(x: np.ndarray) -> np.ndarray:
    """mclust's ``hcUse = "SVD"`` transformation of the rows to agglomerate."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(axis=0, ddof=1)
    keep = np.isfinite(sd) & (sd > 0)            # scale() gives NaN for constant columns; dropped
    xs = (x[:, keep] - x[:, keep].mean(axis=0)) / sd[keep]
    _, s, vt = np.linalg.svd(xs, full_matrices=False)
    p = min(xs.shape)
    return xs @ vt[:p].T / np.sqrt(s[:p])


def _criterion(count, trace, logdet, alpha, beta, p):
    """The VVV criterion of clusters of ``count`` members (arrays).  ``logdet`` is
    log det(W / count) (-inf where W is singular) and is only read where count > p."""
    count = np.asarray(count, dtype=np.float64)
    reg = beta * (trace + alpha) / count
    out = np.log(reg)
    big = count > p
    if np.any(big):
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            ld = logdet[big]
            r = reg[big]
            val = np.where(ld <= 0, np.log(np.exp(ld) + r), np.log1p(np.exp(-ld) * r) + ld)
            val = np.where(np.isneginf(ld), np.log(r), val)
            val = np.where(trace[big] == 0, np.log(alpha * beta / count[big]), val)
        out[big] = val
    return count * out


def _logdet(w: np.ndarray, count: np.ndarray) -> np.ndarray:
    """log det(W / count) for a stack of scatter matrices; -inf where singular."""
    p = w.shape[-1]
    sign, ld = np.linalg.slogdet(w)
    ld = ld - p * np.log(count)
    return np.where(sign > 0, ld, -np.inf)


def hc_vvv(z: np.ndarray, n_clusters: int, *, alpha: float = 1.0, beta: float = 1.0) -> np.ndarray:
    """Labels 0..n_clusters-1 of the rows of ``z`` (already transformed) after VVV model-based
    agglomeration down to ``n_clusters`` clusters.  Quadratic in the number of rows."""
    return hc_vvv_cuts(z, [n_clusters], alpha=alpha, beta=beta)[n_clusters]


def hc_vvv_cuts(z: np.ndarray, cuts, *, alpha: float = 1.0, beta: float = 1.0) -> dict[int, np.ndarray]:
    """The one agglomeration of :func:`hc_vvv`, cut at each number of clusters in ``cuts``
    (as mclust's ``hclass`` cuts one ``hc`` tree): {G: labels 0..G-1}."""
    cuts = sorted({int(g) for g in cuts}, reverse=True)
    n_clusters = cuts[-1]
    z = np.asarray(z, dtype=np.float64)
    n, p = z.shape
    # Identical rows start as one cluster (mclust's dupPartition).
    _, first, group = np.unique(z, axis=0, return_index=True, return_inverse=True)
    group = group.ravel()
    order = np.argsort(first)                      # clusters in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    group = rank[group]
    m = order.size
    out = {g: group.copy() for g in cuts if g >= m}
    if n_clusters >= m:
        return out
    cnt = np.bincount(group, minlength=m).astype(np.float64)
    mean = np.zeros((m, p))
    np.add.at(mean, group, z)
    mean /= cnt[:, None]
    dev = z - mean[group]
    scat = np.zeros((m, p, p))
    np.add.at(scat, group, dev[:, :, None] * dev[:, None, :])
    trace = np.einsum("kii->k", scat)
    alpha = max(alpha * float(((z - z.mean(axis=0)) ** 2).sum()) / (n * p), _EPS)
    crit = _criterion(cnt, trace, _logdet(scat, cnt), alpha, beta, p)

    def merge_costs(i: int, others: np.ndarray):
        nij = cnt[i] + cnt[others]
        d = mean[others] - mean[i]
        c = cnt[i] * cnt[others] / nij
        tr = trace[i] + trace[others] + c * np.einsum("kj,kj->k", d, d)
        ld = np.full(others.size, -np.inf)
        big = nij > p
        if np.any(big):
            wij = scat[i] + scat[others[big]] + c[big, None, None] * d[big, :, None] * d[big, None, :]
            ld[big] = _logdet(wij, nij[big])
        return _criterion(nij, tr, ld, alpha, beta, p) - crit[i] - crit[others]

    cost = np.full((m, m), np.inf)
    if np.all(cnt == 1) and p >= 2:               # all singletons: pairs have 2 <= p members
        zc = z[first[order]]                      # one row per cluster, in cluster order
        sq = np.einsum("ij,ij->i", zc, zc)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * zc @ zc.T, 0)
        cost = 2 * np.log(beta * (d2 / 2 + alpha) / 2) - 2 * crit[0]
        np.fill_diagonal(cost, np.inf)
    else:
        for i in range(m - 1):
            others = np.arange(i + 1, m)
            cost[i, others] = cost[others, i] = merge_costs(i, others)
    active = np.ones(m, dtype=bool)
    row_arg = np.argmin(cost, axis=1)
    row_min = cost[np.arange(m), row_arg]
    for _ in range(m - n_clusters):
        i = int(np.argmin(row_min))
        j = int(row_arg[i])
        i, j = min(i, j), max(i, j)               # the merged cluster keeps the smaller index
        nij = cnt[i] + cnt[j]
        d = mean[j] - mean[i]
        c = cnt[i] * cnt[j] / nij
        scat[i] += scat[j] + c * np.outer(d, d)
        trace[i] = np.trace(scat[i])
        mean[i] += d * cnt[j] / nij
        cnt[i] = nij
        crit[i] = _criterion(np.array([nij]), np.array([trace[i]]), _logdet(scat[i][None], np.array([nij])),
                             alpha, beta, p)[0]
        group[group == j] = i
        active[j] = False
        cost[j, :] = cost[:, j] = np.inf
        row_min[j] = np.inf
        others = np.flatnonzero(active)
        others = others[others != i]
        cost[i, others] = cost[others, i] = merge_costs(i, others) if others.size else []
        # Rows whose best pair involved i or j, and row i itself, are searched again;
        # any other row only compares with its new cost to i.
        stale = np.flatnonzero(active & ((row_arg == i) | (row_arg == j)))
        stale = np.union1d(stale, [i])
        row_arg[stale] = np.argmin(cost[stale], axis=1)
        row_min[stale] = cost[stale, row_arg[stale]]
        better = active & (cost[:, i] < row_min)
        row_arg[better] = i
        row_min[better] = cost[better, i]
        k = int(active.sum())
        if k in cuts and k not in out:
            out[k] = np.unique(group, return_inverse=True)[1].ravel()
    return out


def mstep_eee(x: np.ndarray, z: np.ndarray, gram: np.ndarray | None = None):
    """Proportions, means and the Cholesky factor of the shared covariance from posteriors z.

    ``gram``: ``x.T @ x``, for posteriors whose rows sum to one; the scatter is then taken from
    sufficient statistics, ``W = x'x - sum_k n_k mu_k mu_k'``, instead of one pass over the rows
    per component (the same W in exact arithmetic, other rounding; for centred ``x``)."""
    n = x.shape[0]
    nk = z.sum(axis=0)
    if nk.min() <= _RTEPS:
        raise ValueError("a mixture component has no weight left")
    sums = z.T @ x
    mu = sums / nk[:, None]
    if gram is not None:
        w = gram - mu.T @ sums
    else:
        w = np.zeros((x.shape[1], x.shape[1]))
        for k in range(z.shape[1]):
            dev = (x - mu[k]) * np.sqrt(z[:, k])[:, None]
            w += dev.T @ dev
    sigma = w / n
    try:
        return nk / n, mu, np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:
        # Singular (duplicated or collinear rows): mclust stops here; a ridge of a millionth of
        # the mean variance keeps the labels defined.
        ridge = 1e-6 * max(np.trace(sigma) / sigma.shape[0], _EPS)
        log.warning("EEE covariance is singular; adding %.3g to its diagonal", ridge)
        return nk / n, mu, np.linalg.cholesky(sigma + ridge * np.eye(sigma.shape[0]))


def estep_eee(x: np.ndarray, pro: np.ndarray, mu: np.ndarray, chol: np.ndarray, *, expanded: bool = False):
    """Posteriors (N, G) and the log-likelihood under the EEE mixture.

    ``expanded``: the squared Mahalanobis distances as ``|a|^2 - 2 a.b + |b|^2`` by one matrix
    product instead of one pass over the rows per component (the same in exact arithmetic)."""
    from scipy.linalg import solve_triangular

    n, p = x.shape
    logdet = 2 * np.log(np.abs(np.diag(chol))).sum()
    # One triangular solve for the rows and one for the means (the covariance is shared):
    # L^-1 (x - mu_k) = L^-1 x - L^-1 mu_k.
    wx = solve_triangular(chol, x.T, lower=True)
    wmu = solve_triangular(chol, mu.T, lower=True)
    if expanded:
        d2 = np.einsum("ij,ij->j", wx, wx)[:, None] - 2 * (wx.T @ wmu) + np.einsum("ij,ij->j", wmu, wmu)
        logp = -0.5 * (p * np.log(2 * np.pi) + logdet + np.maximum(d2, 0))
    else:
        logp = np.empty((n, mu.shape[0]))
        for k in range(mu.shape[0]):
            w = wx - wmu[:, k:k + 1]
            logp[:, k] = -0.5 * (p * np.log(2 * np.pi) + logdet + np.einsum("ij,ij->j", w, w))
    with np.errstate(divide="ignore"):
        logp += np.log(pro)
    top = logp.max(axis=1, keepdims=True)
    post = np.exp(logp - top)
    s = post.sum(axis=1, keepdims=True)
    return post / s, float((np.log(s) + top).sum())


def em_eee(x: np.ndarray, z: np.ndarray, *, tol: float = _TOL, max_iter: int = 10_000,
           gram: np.ndarray | None = None):
    """EM for the EEE mixture from posteriors ``z``: (posteriors, log-likelihood, iterations).
    ``gram`` (``x.T @ x``): both steps by sufficient statistics and matrix products
    (:func:`mstep_eee`, :func:`estep_eee` ``expanded``)."""
    hold = np.inf
    for it in range(1, max_iter + 1):
        post, hood = estep_eee(x, *mstep_eee(x, z, gram), expanded=gram is not None)
        z = post
        if abs(hold - hood) / (1 + abs(hood)) <= tol:
            return z, hood, it
        hold = hood
    return z, hood, max_iter


def mclust_bic(x: np.ndarray, n_clusters_range, *, seed: int = 0, subset: int = MCLUST_SUBSET):
    """mclust's choice of G: the EEE mixture fitted as :func:`mclust` does for every G in
    ``n_clusters_range`` (one agglomeration, cut at each G), scored by mclust's BIC
    ``2 loglik - npar log(n)`` with ``npar = (G - 1) + G p + p (p + 1) / 2``; the largest wins.
    Returns (best G, {G: BIC}, labels at the best G)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    gs = sorted({int(g) for g in n_clusters_range})
    if not gs or gs[0] < 1 or gs[-1] >= n:
        raise ValueError(f"n_clusters range {gs} must lie between 1 and the number of spots {n}")
    x = x[:, :max(1, min(x.shape[1], n - gs[-1] - 1))]   # the same columns for every G: comparable BIC
    p = x.shape[1]
    rows = subset_rows(n, seed, subset)
    cuts = hc_vvv_cuts(svd_transform(x[rows]), gs)
    bic, labels = {}, {}
    for g in gs:
        if g == 1:
            post = np.ones((n, 1))
            _, hood = estep_eee(x, *mstep_eee(x, post))
        else:
            z0 = np.zeros((rows.size, g))
            z0[np.arange(rows.size), cuts[g]] = 1.0
            try:
                post, _ = estep_eee(x, *mstep_eee(x[rows], z0))
                post, hood, _ = em_eee(x, post)
            except ValueError as exc:            # a component emptied: mclust reports NA for this G
                log.info("G=%d: no EEE fit (%s)", g, exc)
                continue
        bic[g] = 2 * hood - ((g - 1) + g * p + p * (p + 1) / 2) * np.log(n)
        labels[g] = post.argmax(axis=1)
    if not bic:
        raise ValueError(f"no EEE mixture could be fitted for any G in {gs}")
    best = max(bic, key=bic.get)
    return best, bic, labels[best]


def mclust_stability(x: np.ndarray, n_clusters_range, *, repeats: int = 5, measure: str = "ari", seed: int = 0,
                     subset: int = MCLUST_SUBSET):
    """The number of clusters whose clusterings agree most with those at the numbers next to it,
    across repeated runs (the stability of CellCharter's ``ClusterAutoK``).

    Each of ``repeats`` runs draws ``min(N, subset) // 2`` rows (run r from the stream of
    :func:`subset_rows` with ``start=r``), agglomerates them once, cuts the tree at every G from
    one below the range to one above it (G >= 2) and fits the EEE mixture to the drawn rows from
    each cut (as :func:`mclust` does); every row of ``x`` is then labelled by that mixture.  The
    stability of G is the mean ``measure`` ('ari' or 'fmi': Fowlkes-Mallows, ClusterAutoK's
    default) between run r's labels at G and run s's labels at G - 1 and at G + 1, over every
    ordered pair of different runs r != s; the most stable G wins (the smaller on a tie).  Below
    G = 2 the neighbour is the one-cluster labelling, as ClusterAutoK fits it (its agreement with
    any split: 0 under 'ari', the root of the share of pairs the split keeps together under
    'fmi'), so under 'ari' 2 wins only where no larger G agrees half as well with its neighbours
    (docs/compare/auto_k_lower_end.md).  A G whose mixture lost a component in some run
    (mclust's NA) is compared where it has labels.
    Cost: ``repeats`` agglomerations of half the usual subset and EM on the drawn rows only, its
    steps by sufficient statistics (``em_eee``'s ``gram``: no pass over the rows per component).
    Returns (best G, {G: stability} for every G of the range)."""
    from .evaluate import ari, fowlkes_mallows

    score = {"ari": ari, "fmi": fowlkes_mallows}[measure]
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    gs = sorted({int(g) for g in n_clusters_range})
    rows_per_run = min(n, subset) // 2
    if repeats < 2:
        raise ValueError(f"stability needs at least 2 runs, got {repeats}")
    if not gs or gs[0] < 2 or gs[-1] + 1 >= rows_per_run:
        raise ValueError(f"n_clusters range {gs} must lie between 2 and {rows_per_run - 2} (half the rows "
                         "each run draws, less the neighbour above the range)")
    fitted = list(range(max(2, gs[0] - 1), gs[-1] + 2))
    x = x[:, :max(1, min(x.shape[1], rows_per_run - fitted[-1] - 1))]
    centred = x - x.mean(axis=0)                  # the fits take sums of squares; the tree as mclust's
    labels: dict[int, list] = {g: [] for g in fitted}
    for run in range(int(repeats)):
        rows = subset_rows(n, seed, rows_per_run, start=run)
        drawn = centred[rows]
        gram = drawn.T @ drawn
        cuts = hc_vvv_cuts(svd_transform(x[rows]), fitted)
        for g in fitted:
            z0 = np.zeros((rows.size, g))
            z0[np.arange(rows.size), cuts[g]] = 1.0
            try:
                post, _ = estep_eee(drawn, *mstep_eee(drawn, z0, gram), expanded=True)
                post, _, _ = em_eee(drawn, post, gram=gram)
                labels[g].append(estep_eee(centred, *mstep_eee(drawn, post, gram), expanded=True)[0].argmax(axis=1))
            except ValueError as exc:            # a component emptied: no labels at this G in this run
                log.info("stability run %d, G=%d: no EEE fit (%s)", run, g, exc)
                labels[g].append(None)
    if gs[0] == 2:
        labels[1] = [np.zeros(n, dtype=int)] * int(repeats)
    curve = {}
    for g in gs:
        pairs = [score(a, b) for h in (g - 1, g + 1) if h in labels
                 for r, a in enumerate(labels[g]) for s, b in enumerate(labels[h])
                 if r != s and a is not None and b is not None]
        curve[g] = float(np.mean(pairs)) if pairs else float("nan")
    scored = {g: v for g, v in curve.items() if np.isfinite(v)}
    if not scored:
        raise ValueError(f"no EEE mixture could be fitted for any G in {gs}")
    return max(scored, key=lambda g: (scored[g], -g)), curve


def subset_rows(n: int, seed: int, subset: int = MCLUST_SUBSET, start: int = 0) -> np.ndarray:
    """The rows (sorted) that :func:`mclust` agglomerates: all of them up to ``subset``,
    else ``subset`` rows drawn without replacement from ``seed`` (start 0, mclust's draw) or
    from the stream ``[seed, start]`` (the further runs of :func:`mclust_stability`)."""
    if n <= subset:
        return np.arange(n)
    rng = np.random.default_rng(seed if start == 0 else [seed, start])
    return np.sort(rng.choice(n, subset, replace=False))


def fit_from_subset(x: np.ndarray, rows: np.ndarray, n_clusters: int) -> tuple[np.ndarray, float]:
    """The fit of :func:`mclust` from the agglomeration subset ``rows``: agglomerate ``rows`` of
    ``x``, cut at ``n_clusters``, EM on all rows.  Returns (labels, log-likelihood)."""
    hard = hc_vvv(svd_transform(x[rows]), n_clusters)
    z0 = np.zeros((rows.size, n_clusters))
    z0[np.arange(rows.size), hard] = 1.0
    post, _ = estep_eee(x, *mstep_eee(x[rows], z0))
    post, hood, _ = em_eee(x, post)
    return post.argmax(axis=1), hood


def mclust(x: np.ndarray, n_clusters: int, *, seed: int = 0, subset: int = MCLUST_SUBSET) -> np.ndarray:
    """Labels 0..n_clusters-1 as R's ``Mclust(x, G = n_clusters, modelNames = "EEE")``
    computes them with mclust's default initialisation (see the module docstring).
    ``seed`` draws the agglomeration subset when there are more than ``subset`` rows."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if n_clusters == 1:
        return np.zeros(n, dtype=int)
    # A shared covariance of p dimensions needs more than n_clusters + p rows; on tiny slides
    # keep the leading columns (the first principal components) that it can estimate.
    x = x[:, :max(1, min(x.shape[1], n - n_clusters - 1))]
    return fit_from_subset(x, subset_rows(n, seed, subset), n_clusters)[0]

"""Spatial domains from the model's output, with no R.

- ``pca_scores`` gives exact PCA scores of a matrix stored as a product ``left @ right``
  (the reconstruction is ``(Â Z) @ W2``), so the N x G reconstruction is never formed.
- ``mclust``: R mclust's EEE clustering as R computes it (hierarchical VVV agglomeration of
  a subset, then EM; ``stcore.mclust``), the reference method's clustering.
- ``gmm_tied``: scikit-learn's Gaussian mixture with one shared full covariance (the same EEE
  model), started from k-means and kept at the best of ``n_init`` starts by likelihood.
- ``graph_communities``: Leiden or Louvain on a kNN graph of the features, with a
  bisection on the resolution that hits ``n_clusters``.
- ``refine``: majority vote of each spot's nearest spots (sparse, KD-tree); on a group of
  slides, each spot's neighbours come from its own slide.
- ``correct_slides``: Harmony on the PCs of a group's spots, slides as batches (optional).
- ``own``: no clustering here: the method's own labels (``MethodResult.labels``, e.g. SpaGCN's),
  so a method that clusters itself gets a row for its own domains next to the shared clustering
  of its embedding (``methods: {x_own: {train_from: x, cluster: {algorithm: own}}}``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

import numpy as np
import scipy.sparse as sp

from .graph import knn_indices

__all__ = ["ClusterAlgorithm", "ClusterInput", "ClusterParams", "pca_scores", "gmm_tied", "kmeans",
           "graph_communities", "refine", "cluster_features", "features_of", "correct_slides", "own_labels_of",
           "choose_n_clusters", "run_cluster"]

log = logging.getLogger(__name__)


class ClusterAlgorithm(str, Enum):
    MCLUST = "mclust"          # R mclust's algorithm (stcore.mclust)
    GMM_TIED = "gmm_tied"      # scikit-learn tied mixture from k-means starts
    LEIDEN = "leiden"
    LOUVAIN = "louvain"
    KMEANS = "kmeans"
    OWN = "own"                # the method's own labels (MethodResult.labels)


class ClusterInput(str, Enum):
    RECONSTRUCTION = "reconstruction"   # decoder output Â Z W2, as the reference clusters
    EMBEDDING = "embedding"             # latent Z


@dataclass(frozen=True)
class ClusterParams:
    """algorithm: mclust | gmm_tied | leiden | louvain | kmeans | own (mclust).  input: reconstruction |
    embedding.  n_pcs: PCA components clustered (20).  n_init: gmm_tied / k-means starts (10).
    n_neighbors: kNN of the feature graph for leiden/louvain (15).
    subset: rows mclust agglomerates (mclust's default, 2000); a slide with more spots is
    agglomerated on that many drawn from ``seed``, so its labels depend on the seed.
    refine: majority vote over the ``refine_neighbors`` nearest spots (off; 50 when on).
    auto: how n_clusters 'auto' is chosen: 'stability' (the number whose labelings agree most
    with those at the numbers next to it across ``auto_repeats`` runs on drawn spots, measured by
    ``auto_measure``, 'ari' or 'fmi'; :func:`stcore.mclust.mclust_stability`) or 'bic' (mclust's BIC).
    auto_range: the smallest and largest number of domains 'auto' chooses from.
    correct: 'harmony' removes slide effects from the features of a group (Harmony, through
    harmonypy) before clustering; 'none' (default).  seed: random state of every step.
    The defaults are the config schema's (``stcore/schemas/config.schema.yaml``, ``cluster:``; a
    test checks they agree)."""

    algorithm: ClusterAlgorithm = ClusterAlgorithm.MCLUST
    input: ClusterInput = ClusterInput.RECONSTRUCTION
    n_pcs: int = 20
    n_init: int = 10
    n_neighbors: int = 15
    refine: bool = False
    refine_neighbors: int = 50
    subset: int = 2000
    auto: str = "stability"
    auto_range: tuple[int, int] = (2, 15)
    auto_measure: str = "ari"
    auto_repeats: int = 5
    correct: str = "none"
    seed: int = 0


def pca_scores(left: np.ndarray, right: np.ndarray | None = None, n_comps: int = 20) -> np.ndarray:
    """Scores of the first ``n_comps`` principal components of ``left @ right``.

    left: (N, r); right: (r, G) or None (identity).  Exact: the centred product is
    ``(left - mean) @ right``; a thin QR of the left factor reduces the SVD to r x G.
    Signs follow scikit-learn's rule (largest loading of each component positive).
    """
    left = np.asarray(left, dtype=np.float64)
    lc = left - left.mean(axis=0)
    q, r = np.linalg.qr(lc)
    b = r if right is None else r @ np.asarray(right, dtype=np.float64)
    p, s, vt = np.linalg.svd(b, full_matrices=False)
    k = min(n_comps, s.size)
    signs = np.sign(vt[np.arange(k), np.abs(vt[:k]).argmax(axis=1)])
    signs[signs == 0] = 1
    return (q @ p[:, :k]) * (s[:k] * signs)


def gmm_tied(x: np.ndarray, n_clusters: int, *, seed: int = 0, n_init: int = 10) -> np.ndarray:
    from sklearn.mixture import GaussianMixture

    gm = GaussianMixture(n_components=n_clusters, covariance_type="tied", n_init=n_init,
                         init_params="kmeans", random_state=seed, max_iter=500, reg_covar=1e-6)
    return gm.fit_predict(x)


def kmeans(x: np.ndarray, n_clusters: int, *, seed: int = 0, n_init: int = 10) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit_predict(x)


def _feature_graph(x: np.ndarray, n_neighbors: int):
    import igraph as ig

    k = min(n_neighbors, x.shape[0] - 1)
    idx, dist = knn_indices(x, k)
    n = x.shape[0]
    w = sp.csr_matrix((np.ones(idx.size), (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    w = sp.triu(w.maximum(w.T), k=1).tocoo()
    return ig.Graph(n=n, edges=np.column_stack([w.row, w.col]).tolist(), directed=False)


def _partition(graph, resolution: float, seed: int, leiden: bool) -> np.ndarray:
    if leiden:
        import leidenalg as la

        part = la.RBConfigurationVertexPartition(graph, resolution_parameter=resolution)
        opt = la.Optimiser()
        opt.set_rng_seed(seed)
        opt.optimise_partition(part, n_iterations=-1)
        return np.asarray(part.membership)
    import random

    import igraph as ig

    ig.set_random_number_generator(random.Random(seed))   # igraph's Louvain draws from here
    try:
        return np.asarray(graph.community_multilevel(resolution=resolution).membership)
    finally:
        ig.set_random_number_generator(random)


def graph_communities(x: np.ndarray, n_clusters: int, *, algorithm: str = "leiden", seed: int = 0,
                      n_neighbors: int = 15, max_steps: int = 40) -> np.ndarray:
    """Leiden or Louvain communities whose number is ``n_clusters`` when a resolution
    hits it; otherwise the closest found (a warning says so)."""
    graph = _feature_graph(x, n_neighbors)
    leiden = ClusterAlgorithm(algorithm) is ClusterAlgorithm.LEIDEN
    lo, hi = 0.0, 1.0
    best, best_gap = None, None
    labels = _partition(graph, hi, seed, leiden)
    while len(np.unique(labels)) < n_clusters and hi < 1e3:   # grow until enough clusters
        lo, hi = hi, hi * 2
        labels = _partition(graph, hi, seed, leiden)
    for _ in range(max_steps):
        mid = (lo + hi) / 2
        labels = _partition(graph, mid, seed, leiden)
        found = len(np.unique(labels))
        gap = abs(found - n_clusters)
        if best_gap is None or gap < best_gap:
            best, best_gap = labels, gap
        if found == n_clusters:
            break
        lo, hi = (mid, hi) if found < n_clusters else (lo, mid)
    if best_gap:
        log.warning("%s: no resolution gave %d clusters; closest has %d", algorithm, n_clusters,
                    len(np.unique(best)))
    return best


def refine(labels: np.ndarray, coords: np.ndarray, n_neighbors: int = 50,
           slides: np.ndarray | None = None) -> np.ndarray:
    """Each spot takes the most common label among its ``n_neighbors`` nearest spots
    (itself included); its own label wins ties, then the smallest label.  ``slides`` (a slide
    code per spot, for a group): neighbours are taken on the spot's own slide only."""
    labels = np.asarray(labels)
    if slides is not None:
        out = labels.copy()
        for code in np.unique(slides):
            spots = np.flatnonzero(slides == code)
            out[spots] = refine(labels[spots], np.asarray(coords)[spots], n_neighbors)
        return out
    uniq, codes = np.unique(labels, return_inverse=True)
    n, k = len(codes), len(uniq)
    idx, _ = knn_indices(coords, min(n_neighbors, n), include_self=True)
    votes = np.zeros((n, k), dtype=np.int32)
    np.add.at(votes, (np.repeat(np.arange(n), idx.shape[1]), codes[idx].ravel()), 1)
    best = votes.max(axis=1)
    own_ok = votes[np.arange(n), codes] == best
    out = np.where(own_ok, codes, votes.argmax(axis=1))
    return uniq[out]


def cluster_features(embedding: np.ndarray, decoded: np.ndarray | None, decoder_weight: np.ndarray | None,
                     params: ClusterParams) -> np.ndarray:
    """PCA scores of the chosen model output.  Without a decoder (the expression baseline)
    the embedding is used whatever ``input`` says."""
    return pca_scores(*_pca_input(embedding, decoded, decoder_weight, params), params.n_pcs)


def _pca_input(embedding, decoded, decoder_weight, params: ClusterParams):
    """The factors (left, right or None) whose product :func:`cluster_features` takes the PCA of."""
    use_recon = (ClusterInput(params.input) is ClusterInput.RECONSTRUCTION
                 and decoded is not None and decoded.size and decoder_weight is not None)
    return (decoded, decoder_weight) if use_recon else (embedding, None)


def n_pcs_used(result, params: ClusterParams) -> int | None:
    """How many principal components :func:`features_of` clusters for ``result`` (``params.n_pcs``, or
    fewer where the model's output has fewer dimensions or the slide fewer spots or genes:
    :func:`pca_scores` keeps at most as many as the product's rank bound), without computing them;
    None for ``algorithm: own``, which clusters nothing."""
    if ClusterAlgorithm(params.algorithm) is ClusterAlgorithm.OWN:
        return None
    left, right = _pca_input(result.embedding, result.decoded, result.decoder_weight, params)
    n, r = np.shape(left)
    return int(min(params.n_pcs, n, r, np.shape(right)[1] if right is not None else r))


def used_pcs(settings: dict, used) -> dict:
    """A clustering's settings as recorded: ``n_pcs`` the components clustered (:func:`n_pcs_used`; a
    dict by method where the methods of one call used different numbers) and, where that is fewer
    than asked, ``n_pcs_asked`` beside it (as hvg records ``n_top_genes`` and ``n_top_genes_asked``).
    Settings without ``n_pcs`` (``algorithm: own``) or ``used`` None are returned as they are."""
    settings = dict(settings)
    if "n_pcs" not in settings or used is None:
        return settings
    asked = int(settings["n_pcs"])
    values = list(used.values()) if isinstance(used, dict) else [used]
    if all(v is None or v == asked for v in values):
        return settings
    distinct = {v for v in values if v is not None}
    settings["n_pcs"] = (int(distinct.pop()) if len(distinct) == 1
                         else {m: int(v) for m, v in used.items() if v is not None})
    settings["n_pcs_asked"] = asked
    return settings


def features_of(result, params: ClusterParams) -> np.ndarray | None:
    """The features clustered for a :class:`stcore.methods.MethodResult` (:func:`cluster_features`
    of its output); None for ``algorithm: own``, which clusters nothing."""
    if ClusterAlgorithm(params.algorithm) is ClusterAlgorithm.OWN:
        return None
    return cluster_features(result.embedding, result.decoded, result.decoder_weight, params)


def correct_slides(features: np.ndarray, slides: np.ndarray | None, seed: int = 0) -> np.ndarray:
    """Harmony (Korsunsky et al. 2019, Nat Methods) on the features of a group's spots, with
    each spot's slide as the batch; linear in N (soft clusters, at most 100).  A single slide
    has nothing to correct and is returned as is."""
    from .errors import InputError

    if slides is None or len(np.unique(slides)) < 2:
        log.info("cluster.correct harmony: one slide, nothing to correct")
        return features
    try:
        import harmonypy
    except ImportError:
        raise InputError("cluster.correct harmony needs harmonypy, which is not installed",
                         fix="pip install -e '.[integration]'") from None
    x = np.asarray(features, dtype=np.float64)
    out = harmonypy.run_harmony(x, {"slide": np.asarray(slides).astype(str)}, "slide", random_state=seed,
                                verbose=False).Z_corr
    out = np.asarray(out, dtype=np.float64)
    return out if out.shape == x.shape else out.T       # (N, d); older harmonypy gave (d, N)


def choose_n_clusters(features: np.ndarray, params: ClusterParams) -> tuple[int, dict]:
    """The number of domains for n_clusters 'auto', chosen by ``params.auto`` over
    ``params.auto_range`` on these features (mclust only; logged), and its record:
    {'by', 'chosen', 'n_clusters': the numbers scored, 'score': BIC or stability of each,
    and for stability 'measure' and 'repeats'}."""
    from .errors import InputError
    from .mclust import mclust_bic, mclust_stability

    if ClusterAlgorithm(params.algorithm) is not ClusterAlgorithm.MCLUST:
        raise InputError(f"n_clusters 'auto' is chosen with mclust's mixture; cluster.algorithm "
                         f"'{ClusterAlgorithm(params.algorithm).value}' has none",
                         fix="use cluster.algorithm: mclust, or give n_clusters as a number in the sample sheet")
    n = features.shape[0]
    stability = params.auto == "stability"
    lo, hi = (int(v) for v in params.auto_range)
    # stability fits one number above the range on half the drawn spots; BIC fits all spots
    hi = min(hi, min(n, params.subset) // 2 - 3 if stability else n - 2)
    if hi < lo:
        raise InputError(f"n_clusters 'auto': {n} spots are too few for cluster.auto_range "
                         f"{list(params.auto_range)}", fix="give n_clusters as a number in the sample sheet")
    if stability:
        best, score = mclust_stability(features, range(lo, hi + 1), repeats=params.auto_repeats,
                                       measure=params.auto_measure, seed=params.seed, subset=params.subset)
        record = {"by": "stability", "measure": params.auto_measure, "repeats": int(params.auto_repeats)}
        log.info("n_clusters auto: stability (%s, %d runs) by G: %s; chosen G = %d", params.auto_measure,
                 params.auto_repeats, ", ".join(f"{g}: {v:.3f}" for g, v in sorted(score.items())), best)
    else:
        best, score, _ = mclust_bic(features, range(lo, hi + 1), seed=params.seed, subset=params.subset)
        record = {"by": "bic"}
        log.info("n_clusters auto: BIC of the EEE mixture by G: %s; chosen G = %d",
                 ", ".join(f"{g}: {b:.1f}" for g, b in sorted(score.items())), best)
    gs = sorted(score)
    if best == gs[-1] and len(gs) > 1:
        # no peak inside the range: more domains than it reaches, or features whose clusterings no rerun repeats
        top = int(params.auto_range[1])
        tried = (f"the largest number of cluster.auto_range {list(params.auto_range)}" if best == top else
                 f"the largest number that {n} spots allow of cluster.auto_range {list(params.auto_range)}")
        what = f"stability ({params.auto_measure})" if stability else "BIC"
        number = "(the sample sheet's column; tl.domains: n_clusters=)"
        log.warning("n_clusters auto chose %d, %s: its %s is highest there (%.3f; %.3f at %d), so the slide may hold "
                    "more domains than the range reaches, or none that the runs find again. Fix: %s", best, tried,
                    what, score[best], score[gs[-2]], gs[-2],
                    f"widen cluster.auto_range (e.g. [2, {max(30, 2 * top)}]) to see where its score peaks, or give "
                    f"n_clusters as a number {number}" if best == top else f"give n_clusters as a number {number}")
    return best, record | {"chosen": int(best), "n_clusters": gs, "score": [float(score[g]) for g in gs]}


def own_labels_of(own_labels: np.ndarray | None, n_spots: int, owner: str | None = None) -> np.ndarray:
    """The method's own labels for ``cluster.algorithm: own``, or an InputError that says why not."""
    from .errors import InputError

    who = f"method '{owner}'" if owner else "the method"
    if own_labels is None:
        raise InputError(f"cluster.algorithm 'own' reports the method's own domains, and {who} made none "
                         "(only methods that cluster themselves do, e.g. spagcn, graphst_pkg)",
                         fix="use another cluster.algorithm (mclust, gmm_tied, leiden, louvain, kmeans) for it, "
                             "or train_from a method with its own labels")
    labels = np.asarray(own_labels)
    if labels.shape != (n_spots,):
        raise InputError(f"{who}: own labels have shape {labels.shape}, not ({n_spots},)",
                         fix="retrain it (delete its train.npz)")
    return labels


def run_cluster(features: np.ndarray | None, coords: np.ndarray, n_clusters: int | str,
                params: ClusterParams, own_labels: np.ndarray | None = None, owner: str | None = None,
                slides: np.ndarray | None = None, record: dict | None = None) -> np.ndarray:
    """Labels 0..n_clusters-1 (at most) for every spot.  ``slides``: a slide code per spot of a
    group (refinement stays on each spot's slide); the clustering itself is one over all spots.
    ``cluster.algorithm: own`` returns
    ``own_labels`` (the method's own clustering; ``features`` are then not needed and may be
    None; ``owner`` names the method in the error when there are none), refined if asked.
    ``n_clusters='auto'``: the number :func:`choose_n_clusters` chooses (``params.auto``; logged),
    then clustered as if it had been given.  ``record``, when a dict is given, receives how the
    number was set: ``by`` 'given', 'own labels' or the auto choice's record, and ``chosen``."""
    record = {} if record is None else record
    if ClusterAlgorithm(params.algorithm) is ClusterAlgorithm.OWN:
        labels = own_labels_of(own_labels, np.asarray(coords).shape[0], owner)
        if params.refine:
            labels = refine(labels, coords, params.refine_neighbors, slides)
        record.update({"by": "own labels", "chosen": int(len(np.unique(labels)))})
        return np.asarray(labels, dtype=int)
    if params.correct == "harmony":
        features = correct_slides(features, slides, params.seed)
    if n_clusters == "auto":
        n_clusters, choice = choose_n_clusters(features, params)
        record.update(choice)
    else:
        record.update({"by": "given", "chosen": int(n_clusters)})
    n = features.shape[0]
    if n_clusters < 1 or n_clusters > n:
        raise ValueError(f"n_clusters={n_clusters} must be between 1 and the number of spots {n}")
    labels = _labels(features, n_clusters, params)
    _warn_if_collapsed(labels, features, n_clusters, params)
    return _refined(labels, coords, params, slides)


#: A found labelling is said to have collapsed when its largest domain holds more than this share
#: of the spots while the slide has fewer than COLLAPSE_SPOTS_PER_PARAMETER spots per parameter
#: of the EEE mixture (mclust only).
COLLAPSE_SHARE = 0.5
COLLAPSE_SPOTS_PER_PARAMETER = 3.0


def _warn_if_collapsed(labels: np.ndarray, features: np.ndarray, n_clusters: int,
                       params: ClusterParams) -> None:
    """Warns (the labels are kept) where mclust's EEE mixture was fitted on too few spots for
    its parameters and put most spots into one domain: a shared covariance of p dimensions,
    ``G p`` means and ``G - 1`` weights on a small slide (300 cells of STARmap BZ5, 20 PCs, G = 4:
    293 parameters, graphst's largest domain 95% of the cells)."""
    if ClusterAlgorithm(params.algorithm) is not ClusterAlgorithm.MCLUST or n_clusters < 2:
        return
    n = features.shape[0]
    p = max(1, min(features.shape[1], n - n_clusters - 1))     # the columns mclust fits
    n_par = (n_clusters - 1) + n_clusters * p + p * (p + 1) // 2
    largest = int(np.bincount(np.asarray(labels, dtype=int)).max())
    if n >= COLLAPSE_SPOTS_PER_PARAMETER * n_par or largest <= COLLAPSE_SHARE * n:
        return
    log.warning("cluster mclust: %d of the %d spots (%.0f%%) are in one of the %d domains, on a slide of "
                "%d spots for the %d parameters of the EEE mixture (%d PCs, %d domains: %.1f spots per "
                "parameter); on small slides it puts most spots into one domain (300 cells of STARmap BZ5: "
                "graphst ARI 0.02 with 95%% in one domain). Fix: cluster: {n_pcs: 5} (there ARI 0.79) "
                "or cluster: {algorithm: kmeans} (0.55)", largest, n, 100 * largest / n, n_clusters, n,
                n_par, p, n_clusters, n / n_par)


def _labels(features: np.ndarray, n_clusters: int, params: ClusterParams) -> np.ndarray:
    """The clustering of the features by ``params.algorithm`` (one cluster: all spots together)."""
    algorithm = ClusterAlgorithm(params.algorithm)
    if n_clusters == 1:
        return np.zeros(features.shape[0], dtype=int)
    if algorithm is ClusterAlgorithm.MCLUST:
        from .mclust import mclust

        return mclust(features, n_clusters, seed=params.seed, subset=params.subset)
    if algorithm is ClusterAlgorithm.GMM_TIED:
        return gmm_tied(features, n_clusters, seed=params.seed, n_init=params.n_init)
    if algorithm is ClusterAlgorithm.KMEANS:
        return kmeans(features, n_clusters, seed=params.seed, n_init=params.n_init)
    return graph_communities(features, n_clusters, algorithm=algorithm.value, seed=params.seed,
                             n_neighbors=params.n_neighbors)


def _refined(labels, coords, params: ClusterParams, slides) -> np.ndarray:
    if params.refine:
        labels = refine(labels, coords, params.refine_neighbors, slides)
    return np.asarray(labels, dtype=int)

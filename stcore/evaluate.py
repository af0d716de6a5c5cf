"""Agreement of found domains with manual annotations, the spatial coherence of the
domains themselves (no annotation needed), and the spatial map."""
from __future__ import annotations

import contextlib

import logging
import math
import re

import numpy as np
import pandas as pd
import scipy.sparse as sp

log = logging.getLogger(__name__)

__all__ = ["ari", "fowlkes_mallows", "mean_pairwise_ari", "domain_metrics", "matched_f1", "reconstruction_pearson", "expression_reconstruction_r",
           "information_scores", "spatial_metrics", "chaos", "pas", "spatial_asw", "morans_i", "integration_metrics", "label_rows",
           "plot_domains", "MISSING_LABELS", "is_missing_label", "label_text", "PLACEHOLDER_LABELS",
           "annotation_problems", "label_key"]


#: How a missing annotation label is written, compared after stripping surrounding whitespace and
#: upper-casing: an empty cell, R's and spreadsheets' NA, pandas' NaN as text, Python's None, pandas'
#: <NA> as text (astype(str) of a nullable Int64 or string column), and the other spellings pandas'
#: read_csv reads as missing by default: Excel's #N/A (a lookup that found no label), N/A, SQL's NULL,
#: #NA, -NaN and C's 1.#IND / 1.#QNAN (an annotation read as text, by R or with keep_default_na=False,
#: keeps them as labels, and they were scored as a domain of their own).
MISSING_LABELS = ("", "NA", "NAN", "NONE", "<NA>", "#N/A", "#N/A N/A", "N/A", "#NA", "NULL", "-NAN",
                  "1.#IND", "-1.#IND", "1.#QNAN", "-1.#QNAN")


def is_missing_label(values) -> np.ndarray:
    """Which annotation labels are missing: None or NaN, or text that is one of
    :data:`MISSING_LABELS` whatever its case and surrounding whitespace ('nan', ' NA ').  The one
    definition: the qc job refuses a truth column with no other label
    (:func:`stcore.qc.prepare_slide`), and every score leaves these spots out."""
    s = pd.Series(values)
    return (s.isna() | s.astype(str).str.strip().str.upper().isin(MISSING_LABELS)).to_numpy()


#: Labels an annotation tool or a curator writes for a spot left without a domain, compared as
#: MISSING_LABELS.  They are scored as a domain of their own (the label may be meant: a warning,
#: not a change); MERFISH's 'Ambiguous' cells are one.
PLACEHOLDER_LABELS = ("UNKNOWN", "UNASSIGNED", "UNLABELED", "UNLABELLED", "UNANNOTATED", "NOT ANNOTATED",
                      "UNDETERMINED", "UNDEFINED", "UNCLASSIFIED", "EXCLUDED", "AMBIGUOUS", "NOISE", "-1", "-", "?")
#: More distinct labels than this, and more than half the labelled spots: a per-spot value (a number,
#: an id), not an annotation of domains.
PER_SPOT_LABELS = 100


def annotation_problems(values, column: str) -> tuple[list[str], str | None]:
    """What makes the annotation ``values`` (obs[``column``]) score something else than meant:
    warnings (placeholder labels scored as a domain, one label for every spot) and a refusal, or
    None (a per-spot value: more than :data:`PER_SPOT_LABELS` distinct labels, most spots one of
    their own, so every score compares the domains with ids).  Missing labels are left out first,
    as every score does."""
    raw = pd.Series(np.asarray(values, dtype=object))
    raw = raw[~is_missing_label(raw)].reset_index(drop=True)
    s = pd.Series(label_text(raw.to_numpy()))
    # a whole number stored as a float (codes beside NaN) is the number: -1.0 is the placeholder -1
    whole = s.str.fullmatch(r"-?\d+\.0+") & ~raw.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    s[whole] = s[whole].str.split(".").str[0]
    counts = s.value_counts()
    warnings = []
    placeholders = [(label, int(n)) for label, n in counts.items() if label.upper() in PLACEHOLDER_LABELS]
    if placeholders:
        named = ", ".join(f"'{label}' ({n} spots)" for label, n in placeholders)
        first = placeholders[0][0]
        # the label as the column holds it: a number where the column holds numbers (== '-1' selects none of them)
        held = raw[(s == first).to_numpy()]
        if not all(isinstance(v, str) or not isinstance(v, (int, float, np.number)) for v in held):
            select = f"adata.obs['{column}'] == {first}"
        elif all(v == first for v in held):
            select = f"adata.obs['{column}'] == {first!r}"
        else:           # written with surrounding spaces too ('unassigned '): one label, as scored
            select = f"adata.obs['{column}'].str.strip() == {first!r}"
        warnings.append(f"truth column '{column}' holds {named}, a label that often means 'no label'; it is scored "
                        f"as a domain of its own. Fix: if those spots are not annotated, set them to NaN before "
                        f"writing the file (adata.obs.loc[{select}, '{column}'] = np.nan)")
    if len(counts) == 1:
        warnings.append(f"truth column '{column}' gives every annotated spot one label ('{counts.index[0]}'): every "
                        "score compares the domains with one class (ARI 0 whatever they are). Fix: name the column "
                        "of the domain annotation")
    spelt = _spelt_otherwise(label_text(raw.to_numpy()))
    if spelt:
        (one, n_one), (other, n_other) = spelt[0][:2]
        more = f" and {len(spelt) - 1} more" if len(spelt) > 1 else ""
        warnings.append(f"truth column '{column}' writes labels that differ only in case, spaces or '_' ('{one}' "
                        f"({n_one} spots) and '{other}' ({n_other} spots){more}): each spelling is scored as a domain "
                        "of its own, so the spots of one domain count as split (DLPFC 151673 with half of Layer3 "
                        "written 'layer3': ARI 0.862 for a perfect labelling). Fix: if they are one domain, write "
                        f"them alike before writing the file (adata.obs.loc[adata.obs['{column}'] == {other!r}, '{column}'] "
                        f"= {one!r})")
    refusal = None
    if len(counts) > PER_SPOT_LABELS and len(counts) > len(s) / 2:
        refusal = (f"truth column '{column}' has {len(counts)} distinct labels on {len(s)} annotated spots "
                   f"(first: {', '.join(repr(x) for x in counts.index[:3])}): a per-spot value, not an annotation "
                   "of domains")
    return warnings, refusal


def label_key(label: str) -> str:
    """A label as another annotator or export may write it: case, spaces, '_' and a '-' within a
    word aside, and a whole number written with a decimal point ('Layer_1', 'layer 1', 'Layer-1'
    and 'Layer1'; '1.0' and '1'; '-1' stays another label than '1')."""
    key = re.sub(r"(?<=\w)-(?=\w)|[\s_]+", "", label).lower()       # a leading '-' stays: '-1' is not '1'
    return key.split(".")[0] if re.fullmatch(r"-?\d+\.0+", key) else key


def _spelt_otherwise(labels: np.ndarray) -> list[list[tuple[str, int]]]:
    """The labels (as scored: :func:`label_text`) that one domain's name written otherwise gives
    (:func:`label_key`), each group's spellings with their spots, most spots first; the groups by
    their spots, most first."""
    counts = pd.Series(labels).value_counts()
    groups: dict[str, list[tuple[str, int]]] = {}
    for label, n in counts.items():
        groups.setdefault(label_key(str(label)), []).append((str(label), int(n)))
    spelt = [g for g in groups.values() if len(g) > 1]
    return sorted(spelt, key=lambda g: -sum(n for _, n in g))


def label_text(values) -> np.ndarray:
    """Annotation labels as text without surrounding whitespace, as they are scored: 'Layer3 '
    (a spreadsheet's trailing space) and 'Layer3' are one label; case is kept ('layer3' may be
    meant as another)."""
    return pd.Series(np.asarray(values, dtype=object)).astype(str).str.strip().to_numpy(dtype=object)


def _pair_counts(a, b) -> tuple[int, int, int, int]:
    """Ordered pairs of distinct spots (tp: together in both, fp: only in ``b``, fn: only in
    ``a``, tn: in neither), as Python integers, from the contingency cells (never N x N)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"two labelings of the same spots are needed, got shapes {a.shape} and {b.shape}")
    n = np.int64(len(a))
    ca, ua = pd.factorize(a, use_na_sentinel=False)
    cb, ub = pd.factorize(b, use_na_sentinel=False)
    _, cells = np.unique(ca.astype(np.int64) * max(len(ub), 1) + cb, return_counts=True)
    cells = cells.astype(np.int64)
    sum_squares = (cells ** 2).sum()
    rows_sq = (np.bincount(ca, minlength=len(ua)).astype(np.int64) ** 2).sum()
    cols_sq = (np.bincount(cb, minlength=len(ub)).astype(np.int64) ** 2).sum()
    tp, fp, fn = int(sum_squares - n), int(cols_sq - sum_squares), int(rows_sq - sum_squares)
    return tp, fp, fn, int(n ** 2) - fp - fn - int(sum_squares)


def ari(a, b) -> float:
    """Adjusted Rand index of two labelings of the same spots (Hubert and Arabie 1985; 1: the
    same partition, about 0: chance).  Labels of any type; NaN is a label of its own.

    The pair counts are integers, so this is scikit-learn's ``adjusted_rand_score`` bit for bit
    (the same final expression on Python integers; tests/test_evaluate.py) without importing
    scikit-learn, about 1 s of a job that needs nothing else from it."""
    tp, fp, fn, tn = _pair_counts(a, b)
    if fn == 0 and fp == 0:
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


def fowlkes_mallows(a, b) -> float:
    """Fowlkes-Mallows index of two labelings of the same spots: the geometric mean of the
    pair precision and recall, ``tp / sqrt((tp + fp) (tp + fn))`` (scikit-learn's
    ``fowlkes_mallows_score``, the same expression; 0 when either labeling puts every spot apart)."""
    tp, fp, fn, _ = _pair_counts(a, b)
    return float(np.sqrt(tp / (tp + fp)) * np.sqrt(tp / (tp + fn))) if tp else 0.0


def mean_pairwise_ari(labelings: list[np.ndarray]) -> float:
    """Mean ARI over every pair of ``labelings`` (1: all give the same domains; NaN for fewer
    than two): how far a rerun with another seed agrees."""
    pairs = [ari(labelings[i], labelings[j]) for i in range(len(labelings)) for j in range(i + 1, len(labelings))]
    return float(np.mean(pairs)) if pairs else float("nan")


def _contingency(a, b) -> np.ndarray:
    """Spots per (label of ``a``, label of ``b``), int64, both labellings' labels in sorted order."""
    ca, ua = pd.factorize(pd.Series(a), sort=True, use_na_sentinel=False)
    cb, ub = pd.factorize(pd.Series(b), sort=True, use_na_sentinel=False)
    cont = np.zeros((len(ua), len(ub)), dtype=np.int64)
    np.add.at(cont, (ca, cb), 1)
    return cont


def matched_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    """Macro F1 over truth labels after a one-to-one matching of clusters to labels
    (Hungarian, maximising the overlap); unmatched labels score 0."""
    from scipy.optimize import linear_sum_assignment

    cont = _contingency(truth, pred)
    rows, cols = linear_sum_assignment(-cont)
    f1 = np.zeros(cont.shape[0])
    for r, c in zip(rows, cols):
        tp = cont[r, c]
        if tp:
            prec, rec = tp / cont[:, c].sum(), tp / cont[r].sum()
            f1[r] = 2 * prec * rec / (prec + rec)
    return float(f1.mean())


def domain_metrics(truth, pred) -> dict:
    """ARI, NMI, AMI, homogeneity, completeness and matched macro-F1 on spots with a truth
    label; spots without one are left out and counted in ``n_unlabelled``."""
    truth = pd.Series(np.asarray(truth, dtype=object))
    pred = np.asarray(pred)
    keep = ~is_missing_label(truth)
    t, p = label_text(truth[keep]), pred[keep]
    out = {"n_labelled": int(keep.sum()), "n_unlabelled": int((~keep).sum())}
    if keep.sum() == 0:
        return out | {k: float("nan") for k in ("ARI", "NMI", "AMI", "homogeneity", "completeness", "F1")}
    return out | {"ARI": ari(t, p)} | information_scores(t, p) | {"F1": matched_f1(t, p)}


# The information-theoretic scores (Vinh, Epps and Bailey, JMLR 11:2837, 2010; Rosenberg and
# Hirschberg, EMNLP 2007), with scikit-learn's conventions for its scores of the same names (natural
# logarithm, arithmetic mean as the normaliser, the limit cases), computed from the contingency
# table without importing scikit-learn (about 0.7 s of an evaluate job that needs nothing else from it).


def _entropy_of_counts(counts: np.ndarray) -> float:
    """Entropy (nats) of a labelling with these cluster sizes."""
    if counts.size <= 1:
        return 0.0
    pi = counts.astype(np.float64)
    total = pi.sum()
    return float(-np.sum((pi / total) * (np.log(pi) - math.log(total))))


def _mutual_information(cont: np.ndarray) -> float:
    """Mutual information (nats) of a contingency table of integer counts."""
    rows, cols = cont.sum(axis=1), cont.sum(axis=0)
    if rows.size == 1 or cols.size == 1:
        return 0.0
    nzx, nzy = np.nonzero(cont)
    nz = cont[nzx, nzy]
    total = cont.sum()
    p_nz = nz / total
    log_outer = -np.log(rows[nzx] * cols[nzy]) + math.log(rows.sum()) + math.log(cols.sum())
    mi = p_nz * (np.log(nz) - math.log(total)) + p_nz * log_outer
    mi = np.where(np.abs(mi) < np.finfo(mi.dtype).eps, 0.0, mi)
    return float(np.clip(mi.sum(), 0.0, None))


def _expected_mutual_information(cont: np.ndarray) -> float:
    """E[MI] of two labellings with these cluster sizes under the hypergeometric model of
    random labellings (Vinh et al. 2010, eq. 24a), summed over every feasible cell count."""
    from scipy.special import gammaln

    a, b = cont.sum(axis=1).astype(np.int64), cont.sum(axis=0).astype(np.int64)
    n = int(cont.sum())
    if a.size == 1 or b.size == 1:
        return 0.0
    top = int(max(a.max(), b.max()))
    nij = np.arange(top + 1, dtype=np.float64)
    nij[0] = 1.0                                       # never used; keeps log and division finite
    log_nnij = math.log(n) + np.log(nij)
    gln_nij = gammaln(nij + 1) + gammaln(n + 1)
    gln_a, gln_b = gammaln(a + 1), gammaln(b + 1)
    gln_na, gln_nb = gammaln(n - a + 1), gammaln(n - b + 1)
    log_a, log_b = np.log(a), np.log(b)
    emi = 0.0
    for i in range(a.size):
        for j in range(b.size):
            lo, hi = max(1, a[i] - n + b[j]), min(a[i], b[j]) + 1
            if lo >= hi:
                continue
            k = np.arange(lo, hi)
            gln = (gln_a[i] + gln_b[j] + gln_na[i] + gln_nb[j] - gln_nij[k] - gammaln(a[i] - k + 1)
                   - gammaln(b[j] - k + 1) - gammaln(n - a[i] - b[j] + k + 1))
            emi += float(np.sum(nij[k] / n * (log_nnij[k] - log_a[i] - log_b[j]) * np.exp(gln)))
    return emi


def information_scores(truth, pred) -> dict:
    """NMI, AMI, homogeneity and completeness of ``pred`` against ``truth`` (two labellings of
    the same spots).  NMI and AMI normalise by the arithmetic mean of the two entropies; AMI is
    (MI - E[MI]) / (mean entropy - E[MI]).  Both labellings one cluster: every score 1;
    only one of them: NMI and AMI 0.  Equal to scikit-learn's ``normalized_mutual_info_score``,
    ``adjusted_mutual_info_score``, ``homogeneity_score`` and ``completeness_score``
    (tests/test_evaluate.py)."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    if len(truth) == 0:
        return {"NMI": 1.0, "AMI": 1.0, "homogeneity": 1.0, "completeness": 1.0}
    cont = _contingency(truth, pred)
    h_t, h_p = _entropy_of_counts(cont.sum(axis=1)), _entropy_of_counts(cont.sum(axis=0))
    mi = _mutual_information(cont)
    out = {"homogeneity": mi / h_t if h_t else 1.0, "completeness": mi / h_p if h_p else 1.0}
    if cont.shape == (1, 1):
        return out | {"NMI": 1.0, "AMI": 1.0}
    if 1 in cont.shape:
        return out | {"NMI": 0.0, "AMI": 0.0}
    mean_h = float(np.mean([h_t, h_p]))
    emi = _expected_mutual_information(cont)
    eps = np.finfo(np.float64).eps
    num, den = mi - emi, mean_h - emi
    num = min(num, -eps) if num < 0 else max(num, eps)
    den = min(den, -eps) if den < 0 else max(den, eps)
    return out | {"NMI": 0.0 if mi == 0 else mi / mean_h, "AMI": float(num / den)}


def reconstruction_pearson(x, decoded: np.ndarray, decoder_weight: np.ndarray, *,
                           chunk_rows: int = 512) -> float:
    """Pearson r over all entries of ``decoded @ decoder_weight`` against ``x`` (N x G,
    sparse or dense), ``chunk_rows`` rows at a time.  NaN when there is no decoder."""
    if decoded is None or decoder_weight is None or decoded.size == 0 or decoder_weight.size == 0:
        return float("nan")
    n = x.shape[0]
    if decoded.shape[0] != n or decoder_weight.shape[1] != x.shape[1]:
        raise ValueError(f"shapes do not match: x {x.shape}, decoded {decoded.shape}, "
                         f"decoder weight {decoder_weight.shape}")
    w2 = np.asarray(decoder_weight, dtype=np.float64)
    sums = np.zeros(5)   # sum x, sum y, sum x², sum y², sum xy
    for start in range(0, n, chunk_rows):
        rows = slice(start, min(start + chunk_rows, n))
        xb = x[rows].toarray() if sp.issparse(x) else np.asarray(x[rows])
        xb = xb.astype(np.float64, copy=False)
        yb = np.asarray(decoded[rows], dtype=np.float64) @ w2
        sums += [xb.sum(), yb.sum(), (xb * xb).sum(), (yb * yb).sum(), (xb * yb).sum()]
    count = float(n * x.shape[1])
    sx, sy, sxx, syy, sxy = sums / count
    cov, vx, vy = sxy - sx * sy, sxx - sx * sx, syy - sy * sy
    if vx <= 0 or vy <= 0:
        return float("nan")
    return float(cov / np.sqrt(vx * vy))


def expression_reconstruction_r(x, decoded: np.ndarray, decoder_weight: np.ndarray) -> float:
    """:func:`reconstruction_pearson` of a run against the slide's expression; NaN, with a log
    line, when the decoder is as wide as input PCA scores (``train.input_pcs``) instead of the
    genes: that model reconstructs the scores, not the expression."""
    if decoder_weight is not None and decoder_weight.size and decoder_weight.shape[1] != x.shape[1]:
        log.info("the model reconstructs %d input PCA scores, not the %d genes: recon_r is left empty",
                 decoder_weight.shape[1], x.shape[1])
        return float("nan")
    return reconstruction_pearson(x, decoded, decoder_weight)


# ---------------------------------------------------------------------------
# Spatial coherence of a domain labelling (SDMBench's "continuity" metrics).
# Source of the definitions: SDMBench, Yuan et al. 2024, Nature Methods, "Benchmarking
# spatial clustering methods with spatially resolved transcriptomics data".  Everything
# below is computed from k-nearest-neighbour queries on a KD-tree and sparse matrices;
# no N x N matrix is stored.
# ---------------------------------------------------------------------------


def _coords_and_codes(coords, labels) -> tuple[np.ndarray, np.ndarray, int]:
    """Coordinates as float64 (n, d) and labels as integer codes 0..n_domains-1.
    A missing label (None/NaN) counts as a domain of its own."""
    xy = np.asarray(coords, dtype=np.float64)
    if xy.ndim == 1:
        xy = xy[:, None]
    if xy.ndim != 2:
        raise ValueError(f"coords must be (n_spots, n_dims), got shape {xy.shape}")
    codes, uniq = pd.factorize(pd.Series(np.asarray(labels, dtype=object)), use_na_sentinel=False)
    if len(codes) != xy.shape[0]:
        raise ValueError(f"{xy.shape[0]} coordinates but {len(codes)} labels")
    return xy, np.asarray(codes, dtype=np.int64), len(uniq)


def _standardise(xy: np.ndarray) -> np.ndarray:
    """Each coordinate to zero mean and unit variance (population s.d., as scikit-learn's
    StandardScaler); a constant coordinate is only centred."""
    sd = xy.std(axis=0)
    return (xy - xy.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def chaos(coords, labels) -> float:
    """CHAOS: spatial chaos of the domains.  **Lower is better** (0 = perfectly compact).

    Coordinates are first standardised per axis (zero mean, unit population variance).
    Within each domain of at least 3 spots, every spot's distance to its nearest other
    spot of the same domain is taken; CHAOS is the sum of these 1-NN distances over all
    domains divided by the total number of spots.  Domains of 1 or 2 spots are skipped
    (they add nothing to the sum) but their spots stay in the denominator; a slide whose
    domains are all that small scores 0.

    Definition of SDMBench (Yuan et al. 2024, Nat Methods), ``_compute_CHAOS``; computed
    here with one KD-tree per domain.  NaN for an empty slide.
    """
    from scipy.spatial import cKDTree

    xy, codes, n_dom = _coords_and_codes(coords, labels)
    n = xy.shape[0]
    if n == 0:
        return float("nan")
    z = _standardise(xy)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_dom + 1))
    total = 0.0
    for d in range(n_dom):
        members = order[bounds[d]:bounds[d + 1]]
        if len(members) <= 2:
            continue
        pts = z[members]
        dist, _ = cKDTree(pts).query(pts, k=2)
        # Column 1 is the nearest spot other than the spot itself (0 for a duplicate position).
        total += float(dist[:, 1].sum())
    return total / n


def pas(coords, labels, *, k: int = 10) -> float:
    """PAS: proportion of abnormal spots.  **Lower is better** (0 = no isolated spots).

    A spot is abnormal when more than half of its ``k`` nearest spots (itself excluded,
    Euclidean distance on the raw coordinates, no standardisation) carry a different
    label, i.e. when that count is > k/2 (with k = 10: 6 or more of the 10; exactly 5 is
    not abnormal).  PAS is the fraction of abnormal spots.

    Definition of SDMBench (Yuan et al. 2024, Nat Methods), ``_compute_PAS`` with
    ``k=10``.  Ties at the k-th distance are broken by spot index
    (:func:`stcore.graph.knn_indices`).  On a slide of ``k`` spots or fewer every spot uses
    its ``n - 1`` other spots and the threshold becomes (n - 1)/2.  NaN for an empty slide,
    0 for a single spot.
    """
    from .graph import knn_indices

    xy, codes, _ = _coords_and_codes(coords, labels)
    n = xy.shape[0]
    if n == 0:
        return float("nan")
    k_eff = min(int(k), n - 1)
    if k_eff < 1:
        return 0.0
    idx, _ = knn_indices(xy, k_eff)
    differing = (codes[idx] != codes[:, None]).sum(axis=1)
    return float(np.mean(differing > k_eff / 2))


def spatial_asw(coords, labels, *, sample_size: int | None = 5000, random_state: int = 0) -> float:
    """Spatial ASW: mean silhouette width of the domain labels, with Euclidean distance on
    the raw spatial coordinates.  **Higher is better**; range [-1, 1], not rescaled.

    For spot i with mean distance a(i) to the other spots of its domain and smallest mean
    distance b(i) to the spots of another domain, s(i) = (b - a) / max(a, b) (s = 0 for a
    spot alone in its domain); ASW is the mean of s(i).

    Definition of SDMBench (Yuan et al. 2024, Nat Methods), ``compute_ASW``: scikit-learn's
    ``silhouette_score`` on the spot-to-spot distances (SDMBench passes a precomputed dense
    distance matrix; here the distances are computed in blocks of at most 64 MiB, never as
    one stored N x N matrix, without importing scikit-learn; equal to its value,
    tests/test_evaluate.py).  The silhouette is O(N^2) work, so above
    ``sample_size`` spots it is computed on a uniform random subset of ``sample_size``
    spots drawn with ``random_state`` (silhouettes of the subset against the subset);
    ``sample_size=None`` uses every spot.  NaN when there is only one domain, or as many
    domains as spots (the silhouette is undefined), in the slide or the subset.
    """
    xy, codes, _ = _coords_and_codes(coords, labels)
    n = xy.shape[0]
    if sample_size is not None and n > sample_size:
        keep = np.sort(np.random.default_rng(random_state).choice(n, size=int(sample_size), replace=False))
        xy, codes = xy[keep], codes[keep]
        n = xy.shape[0]
    codes = np.unique(codes, return_inverse=True)[1].ravel()
    sizes = np.bincount(codes).astype(np.float64)
    if not 2 <= len(sizes) <= n - 1:
        return float("nan")
    xy = xy.astype(np.float64)
    sq = np.einsum("ij,ij->i", xy, xy)
    member = np.zeros((n, len(sizes)))
    member[np.arange(n), codes] = 1.0
    block = max(1, (64 << 20) // (8 * n))                # rows of at most 64 MiB of distances
    total = 0.0
    for start in range(0, n, block):
        rows = slice(start, min(start + block, n))
        d2 = -2.0 * (xy[rows] @ xy.T)
        d2 += sq[rows, None]
        d2 += sq[None, :]
        np.maximum(d2, 0.0, out=d2)
        d2[np.arange(d2.shape[0]), np.arange(start, rows.stop)] = 0.0      # a spot to itself
        to_domain = np.sqrt(d2) @ member                                   # summed distance to each domain
        own = codes[rows]
        k = np.arange(to_domain.shape[0])
        mine = sizes[own] - 1
        a = to_domain[k, own] / np.where(mine > 0, mine, 1.0)
        to_domain[k, own] = np.inf
        b = (to_domain / sizes).min(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            width = np.nan_to_num((b - a) / np.maximum(a, b))
        total += float(np.where(mine > 0, width, 0.0).sum())
    return total / n


def morans_i(coords, labels, *, k: int = 6) -> float:
    """Moran's I of the domain labels: the mean over domains of Moran's I of the domain's
    0/1 indicator.  **Higher is better** (1 = perfectly clustered; about -1/(N-1) for a
    spatially random labelling; negative = checkerboard-like).

    Weights: each spot's ``k`` nearest other spots (Euclidean, raw coordinates, ties by
    spot index), row-standardised, w_ij = 1/k (a directed kNN graph, as squidpy's generic
    ``spatial_neighbors`` with ``n_neighs=6`` followed by ``spatial_autocorr``'s row
    normalisation).  With z = x - mean(x) for an indicator x,
    I = (N / S0) * (z' W z) / (z' z), and S0 = sum(W) = N for row-standardised weights.
    Computed in closed form from the sparse W: for a domain with n_d spots,
    p = n_d / N, S_dd = sum of w_ij with i and j in the domain and c_d = sum of w_ij with j
    in the domain, z' W z = S_dd - p c_d - p n_d + p^2 N and z' z = n_d (1 - p).

    SDMBench (Yuan et al. 2024, Nat Methods) reports Moran's I as a *marker score*: the
    median Moran's I of the expression of the top differentially expressed genes of the
    domains, on squidpy's 6-neighbour graph.  That needs expression; this label-indicator
    form uses the same weights on the labels themselves and is not SDMBench's number.
    On a slide of ``k`` spots or fewer every spot uses its ``n - 1`` other spots.  NaN with
    fewer than two domains or fewer than two spots.
    """
    import scipy.sparse as sp

    from .graph import knn_indices

    xy, codes, n_dom = _coords_and_codes(coords, labels)
    n = xy.shape[0]
    k_eff = min(int(k), n - 1)
    if n_dom < 2 or k_eff < 1:
        return float("nan")
    idx, _ = knn_indices(xy, k_eff)
    rows = np.repeat(np.arange(n), k_eff)
    W = sp.csr_matrix((np.full(n * k_eff, 1.0 / k_eff), (rows, idx.ravel())), shape=(n, n))
    X = sp.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, n_dom))
    s_dd = np.asarray((X.T @ W @ X).diagonal()).ravel()
    c_d = np.bincount(codes, weights=np.asarray(W.sum(axis=0)).ravel(), minlength=n_dom)
    n_d = np.bincount(codes, minlength=n_dom).astype(np.float64)
    p = n_d / n
    num = s_dd - p * c_d - p * n_d + p * p * n
    den = n_d * (1.0 - p)
    return float(np.mean(num / den))


def spatial_metrics(
    coords,
    labels,
    *,
    pas_k: int = 10,
    moran_k: int = 6,
    asw_sample_size: int | None = 5000,
    random_state: int = 0,
) -> dict:
    """The four spatial-coherence metrics of a domain labelling (SDMBench, Yuan et al.
    2024, Nat Methods), no annotation needed:

    - ``CHAOS`` (:func:`chaos`): lower is better;
    - ``PAS`` (:func:`pas`, k = ``pas_k``): lower is better;
    - ``ASW`` (:func:`spatial_asw`, subsampled above ``asw_sample_size`` spots): higher is better;
    - ``MoranI`` (:func:`morans_i` of the label indicators, k = ``moran_k``): higher is better.

    All sparse: kNN queries on KD-trees and sparse weights; no N x N matrix is stored.
    """
    return {
        "CHAOS": chaos(coords, labels),
        "PAS": pas(coords, labels, k=pas_k),
        "ASW": spatial_asw(coords, labels, sample_size=asw_sample_size, random_state=random_state),
        "MoranI": morans_i(coords, labels, k=moran_k),
    }


# ---------------------------------------------------------------------------
# One labelling over a group of slides (stcore.group): does it hold across them?
# ---------------------------------------------------------------------------


#: The columns of :func:`label_rows` that are each slide's own in a group's run (its rows' other
#: columns are the run's or the group's: provenance, recon_r, iLISI, domains_shared, ...).
SLIDE_COLUMNS = ("sample", "spots", "domains_found", "n_labelled", "n_unlabelled", "ARI", "NMI", "AMI", "homogeneity",
                 "completeness", "F1", "CHAOS", "PAS", "ASW", "MoranI")


def label_rows(obs: pd.DataFrame, coords: np.ndarray, labels: pd.Series, truth: pd.Series | None,
               run: dict) -> list[dict]:
    """The metrics of one labelling that need no model: agreement with ``truth`` and spatial
    coherence at ``coords``, as one row ``run | metrics``.  A group (``obs['slide']``) gets one row
    per slide, with the slide in ``sample`` and the group in ``group``, and the group's
    :func:`integration_metrics` on each (iLISI from ``run['embedding']``, the features clustered, when given)."""
    coords = np.asarray(coords)

    def one(xy, lab, tru) -> dict:
        row = {"spots": len(lab), "domains_found": int(lab.nunique())}
        if tru is not None:
            row |= domain_metrics(tru.to_numpy(), lab.to_numpy())
        return row | spatial_metrics(xy, lab.to_numpy())

    run = dict(run)
    embedding = run.pop("embedding", None)
    if "slide" not in obs:
        return [run | {"group": ""} | one(coords, labels, truth)]
    slides = obs["slide"].astype(str)
    whole = integration_metrics(embedding, labels.to_numpy(), slides.to_numpy(),
                                None if truth is None else truth.to_numpy())
    rows = []
    for name in pd.Categorical(obs["slide"]).categories:
        on = (slides == name).to_numpy()
        rows.append(run | {"sample": name, "group": run["sample"]}
                    | one(coords[on], labels[on], None if truth is None else truth[on]) | whole)
    return rows


#: layers_consistent compares the annotated labels found on every annotated slide of a group; where
#: they are fewer than this share of the labels of the slide with the fewest, the slides name their
#: layers otherwise and it is NaN (stcore.group warns of it).
MIN_SHARED_LABELS_SHARE = 0.5


def integration_metrics(embedding: np.ndarray | None, labels, slides, truth=None, *, k: int = 30,
                        sample_size: int = 5000, min_share: float = 0.01, random_state: int = 0) -> dict:
    """How the joint labelling of a group of slides holds across its slides.

    - ``iLISI``: mixing of the slides in ``embedding`` (in the pipeline: the features the
      clustering used, e.g. PCA 20 of the reconstruction, after Harmony when asked): for each spot, the inverse
      Simpson index of the slides among its ``k`` nearest spots in the embedding, median over
      spots, scaled to [0, 1] (0: neighbours from its own slide only; 1: from every slide
      alike).  scib's iLISI with a plain k-NN neighbourhood instead of a perplexity-weighted
      one; at most ``sample_size`` spots are queried (against all), so it is linear in N.
      NaN without an embedding.
    - ``domains_shared``: share of the found domains that hold at least ``min_share`` of the
      spots of every slide.
    - ``layers_consistent`` (with ``truth``): share of the annotated labels found on every
      annotated slide whose most common found domain is the same on each of them (1: every layer
      maps to the same joint domain on each slide; where domains tie as a slide's most common, any of
      them may be the one shared).  NaN where fewer than two slides hold labels:
      on one slide each label has one most common domain, so any labelling scored 1; NaN too
      where the labels found on every annotated slide are fewer than
      :data:`MIN_SHARED_LABELS_SHARE` of those of the slide with the fewest ('Layer1', ... on
      one slide, 'L1', ... on another: 'WM' alone was compared, and scored 1).
    """
    from sklearn.neighbors import NearestNeighbors

    labels = np.asarray(labels)
    s_codes, s_names = pd.factorize(pd.Series(np.asarray(slides)), sort=False)
    n, n_slides = len(labels), len(s_names)
    out = {"iLISI": float("nan")}
    if embedding is not None and n_slides > 1:
        x = np.asarray(embedding, dtype=np.float64)
        rng = np.random.default_rng(random_state)
        query = np.sort(rng.choice(n, size=min(sample_size, n), replace=False))
        k_eff = min(k, n - 1)
        _, idx = NearestNeighbors(n_neighbors=k_eff + 1).fit(x).kneighbors(x[query])
        neighbours = s_codes[idx[:, 1:]]
        share = np.stack([(neighbours == c).mean(axis=1) for c in range(n_slides)], axis=1)
        lisi = 1.0 / (share ** 2).sum(axis=1)
        out["iLISI"] = float((np.median(lisi) - 1) / (n_slides - 1))
    table = pd.crosstab(labels, s_codes, normalize="columns")
    out["domains_shared"] = float((table >= min_share).all(axis=1).mean())
    out["layers_consistent"] = float("nan")
    if truth is not None:
        t = pd.Series(np.asarray(truth, dtype=object))
        keep = ~is_missing_label(t)
        frame = pd.DataFrame({"truth": label_text(t[keep]), "slide": s_codes[keep], "domain": labels[keep]})
        # Each (label, slide)'s most common domains: all of them where several are as common (a tie), so the
        # score does not hang on the order of the spots.
        majority = frame.groupby(["truth", "slide"])["domain"].agg(
            lambda v: frozenset((c := v.value_counts()).index[c == c.max()])).unstack()
        on_all = majority.dropna()
        fewest = int(majority.notna().sum(axis=0).min()) if majority.shape[1] else 0
        if (len(on_all) and majority.shape[1] >= 2             # one annotated slide compares nothing
                and len(on_all) >= MIN_SHARED_LABELS_SHARE * fewest):  # slides naming their layers otherwise
            same = [bool(frozenset.intersection(*row)) for row in on_all.itertuples(index=False)]
            out["layers_consistent"] = float(np.mean(same))
    return out


def side_by_side(coords: np.ndarray, slides) -> np.ndarray:
    """Coordinates of a group's slides laid out in a row, for one figure (not for analysis)."""
    xy = np.array(coords, dtype=np.float64)
    codes, _ = pd.factorize(pd.Series(np.asarray(slides)), sort=False)
    left = 0.0
    for c in range(codes.max() + 1):
        rows = codes == c
        width = np.ptp(xy[rows, 0]) if rows.sum() > 1 else 1.0
        xy[rows, 0] += left - xy[rows, 0].min()
        left += width * 1.1 + 1e-9
    return xy


def _figure_adata(pred, truth, coords=None):
    """The labels a run's figure draws, as :func:`stcore.pl.domains` reads them: ``obs['found
    domains']`` and ``obs['annotation']`` (as text), the coordinates in ``obsm['spatial']``.  ``truth``
    is the annotation column as it is (``obs[truth]``, read as :func:`stcore.pl.domains` reads a
    column); its ``.to_numpy()`` makes a nullable Int64 column with a missing label 1.0, 2.0, which
    the legends showed."""
    import anndata as ad

    obs = pd.DataFrame({"found domains": np.asarray(pred, dtype=object)})
    if truth is not None:
        obs.insert(0, "annotation", np.asarray(truth, dtype=object))
    obs.index = obs.index.astype(str)
    return ad.AnnData(obs=obs, obsm={} if coords is None else {"spatial": np.asarray(coords, dtype=np.float64)})


def _annotation_palette(truth, truth_colors):
    """The annotation's own colours as a palette of :func:`stcore.pl.domains` ({label: colour}; None
    without them): ``truth_colors`` are those the slide stores for ``truth`` (``uns[<truth>_colors]``,
    as scanpy keeps them), so the run's figure and ``domains.h5ad`` draw the annotation in them and
    match the found domains to them, as :func:`stcore.pl.domains` does on the slide itself."""
    from .pl import stored_colors

    if truth is None or truth_colors is None:
        return None
    return stored_colors(truth, truth_colors) or None


def _found_palette(pred, truth, truth_colors, reference):
    """The palette a run's figure draws with (:func:`stcore.pl.domains`' ``palette``): with ``truth``,
    the annotation's own colours (:func:`_annotation_palette`); without, and with ``reference`` (the
    domains of one run of the same slide, aligned with ``pred``), {domain: colour} of ``pred`` matched
    to the colours the reference's own figure draws it in, as an annotated slide's domains are matched
    to the annotation (:func:`stcore.pl.domain_colors`), so one region has one colour on every map of a
    slide without an annotation.  None without either: the domains' own palette."""
    if truth is not None or reference is None:
        return _annotation_palette(truth, truth_colors)
    from .pl import domain_colors

    return domain_colors(_figure_adata(pred, np.asarray(reference, dtype=object)), "found domains",
                         truth="annotation")["found domains"]


def figure_colors(pred, truth=None, truth_colors=None, reference=None) -> dict[str, dict[str, str]]:
    """The colours of a run's figure (:func:`plot_domains`) by label: {'found domains': ...,
    'annotation': ...} (the latter with ``truth``, in ``truth_colors`` where the slide stores them;
    without, matched to ``reference``'s where given, :func:`_found_palette`), so the run's
    ``domains.h5ad`` can keep them."""
    from .pl import domain_colors

    return domain_colors(_figure_adata(pred, truth), "found domains",
                         truth="annotation" if truth is not None else None,
                         palette=_found_palette(pred, truth, truth_colors, reference))


@contextlib.contextmanager
def figure_annotation_unsaid():
    """Within it, :func:`stcore.pl.domains` does not say what it finds in the workflow's figures'
    own annotation column ('annotation'): its fix would name that column, no slide's (the qc job
    says the same of the sample sheet's column)."""
    import logging

    said = logging.getLogger("stcore.pl")
    drop = lambda record: not record.getMessage().startswith("truth column 'annotation' ")   # noqa: E731
    said.addFilter(drop)
    try:
        yield
    finally:
        said.removeFilter(drop)


def plot_domains(coords: np.ndarray, pred, truth=None, *, title: str = "", path, slides=None,
                 features: np.ndarray | None = None, spatial: dict | None = None, truth_colors=None,
                 reference=None) -> None:
    """The run's figure (``domains.png``): :func:`stcore.pl.domains` of the found domains beside
    the truth when given (matched colours, legends, ARI and NMI), written to ``path`` (PNG).
    ``truth``: the annotation column as it is (``obs[truth]``, not its ``.to_numpy()``).
    ``slides``: a group's slides side by side, in the joint domain colours; with ``features``
    (the joint features clustered), also their first two principal components coloured by slide,
    by domain and, where given, by the annotation.  ``spatial``: the slide's ``uns['spatial']`` (its tissue image).  ``truth_colors``:
    the colours the slide stores for the annotation (``uns[<truth>_colors]``), which it is drawn in.
    ``reference``: without ``truth``, the domains of another run of the slide whose figure's colours
    these domains are matched to (:func:`_found_palette`); left out with ``truth``."""
    from .pl import domains
    from .report import fitted_map, save_figure

    adata = _figure_adata(pred, truth, coords)
    if slides is not None:
        from .tl import labelling

        adata.obs["slide"] = pd.Categorical(np.asarray(slides).astype(str))
        # a group's domains are one labelling of all its spots (one domain means the same on every slide): recorded
        # as stcore's records say so, they are matched to the annotation's colours pooled, not slide by slide
        adata.uns["stcore"] = {"key": "found domains", "labelling": labelling(adata.obs["found domains"])}
    if spatial:
        adata.uns["spatial"] = spatial
    bases = ["spatial"]
    if slides is not None and features is not None:
        x = np.asarray(features, dtype=np.float64)
        x = x - x.mean(axis=0)
        adata.obsm["joint features PC"] = x @ np.linalg.svd(x[:: max(1, len(x) // 20000)],
                                                            full_matrices=False)[2][:2].T
        bases.append("joint features PC")
    def draw(ncols: int):
        with figure_annotation_unsaid():
            return domains(adata, key="found domains", truth="annotation" if truth is not None else None,
                           basis=bases, slide_key="slide" if slides is not None else None, title=title, ncols=ncols,
                           show=False, return_fig=True, palette=palette)

    palette = _found_palette(pred, truth, truth_colors, reference)
    save_figure(fitted_map(draw, 3), path)

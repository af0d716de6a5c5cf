"""Agreement of found domains with manual annotations, and the spatial map."""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["domain_metrics", "matched_f1", "reconstruction_pearson", "plot_domains"]


def _is_missing(values: pd.Series) -> np.ndarray:
    s = pd.Series(values)
    return (s.isna() | s.astype(str).str.strip().str.upper().isin(["", "NA", "NAN", "NONE"])).to_numpy()


def matched_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    """Macro F1 over truth labels after a one-to-one matching of clusters to labels
    (Hungarian, maximising the overlap); unmatched labels score 0."""
    from scipy.optimize import linear_sum_assignment

    t_codes, t_uniq = pd.factorize(pd.Series(truth), sort=True)
    p_codes, p_uniq = pd.factorize(pd.Series(pred), sort=True)
    cont = np.zeros((len(t_uniq), len(p_uniq)))
    np.add.at(cont, (t_codes, p_codes), 1)
    rows, cols = linear_sum_assignment(-cont)
    f1 = np.zeros(len(t_uniq))
    for r, c in zip(rows, cols):
        tp = cont[r, c]
        if tp:
            prec, rec = tp / cont[:, c].sum(), tp / cont[r].sum()
            f1[r] = 2 * prec * rec / (prec + rec)
    return float(f1.mean())


def domain_metrics(truth, pred) -> dict:
    """ARI, NMI, AMI, homogeneity, completeness and matched macro-F1 on spots with a truth
    label; spots without one are left out and counted in ``n_unlabelled``."""
    from sklearn import metrics as m

    truth = pd.Series(np.asarray(truth, dtype=object))
    pred = np.asarray(pred)
    keep = ~_is_missing(truth)
    t, p = truth[keep].astype(str).to_numpy(), pred[keep]
    out = {"n_labelled": int(keep.sum()), "n_unlabelled": int((~keep).sum())}
    if keep.sum() == 0:
        return out | {k: float("nan") for k in ("ARI", "NMI", "AMI", "homogeneity", "completeness", "F1")}
    return out | {
        "ARI": float(m.adjusted_rand_score(t, p)),
        "NMI": float(m.normalized_mutual_info_score(t, p)),
        "AMI": float(m.adjusted_mutual_info_score(t, p)),
        "homogeneity": float(m.homogeneity_score(t, p)),
        "completeness": float(m.completeness_score(t, p)),
        "F1": matched_f1(t, p),
    }


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


def plot_domains(coords: np.ndarray, pred, truth=None, *, title: str = "", path) -> None:
    """Spots coloured by found domain, beside the truth when given; written to ``path`` (PNG)."""
    from .report import plot_slide_domains

    plot_slide_domains(coords, truth, [("found domains", np.asarray(pred))], path, title=title)

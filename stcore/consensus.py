"""One labelling from several seeds' labelings of the same spots.

The medoid labeling (the highest mean ARI to the others) is the reference; where the labelings
have different numbers of domains (``n_clusters: auto``: each run chose its own), the medoid of
those whose number is the median of their numbers (the lower middle one), so that the answer has
the number the runs centre on, not an outlying one that copies of a labeling carry
(docs/compare/DEFAULTS.md, "The vote over labelings of different sizes").  Every other
labeling's domains are matched one-to-one to the reference's (Hungarian, maximising the
overlap); each spot takes the majority of the matched labels (ties: the reference's).  Linear
in the number of spots.  It combines the labelings of several seeds (the DAG's consensus step:
``docs/compare/ensemble_summary.tsv``, measured between disjoint seed sets) and of several
methods at one seed (config ``ensembles``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

from .evaluate import ari

__all__ = ["consensus", "two_labelings"]


def consensus(labelings: list[np.ndarray], adjacency: sp.spmatrix | None = None) -> np.ndarray:
    """Integer labels of the consensus of ``labelings`` (each one label per spot, same order):
    one vote, every labeling matched to the medoid.  With ``adjacency`` (the slide's spatial
    graph, N x N sparse), each spot's votes are counted over the spot and its neighbours."""
    codes = [pd.factorize(np.asarray(lab))[0] for lab in labelings]
    s = len(codes)
    if s == 0:
        raise ValueError("no labelings to combine")
    mean_ari = [np.mean([ari(codes[i], codes[j]) for j in range(s) if j != i] or [1.0])
                for i in range(s)]
    sizes = [int(c.max()) + 1 for c in codes]
    median = sorted(sizes)[(s - 1) // 2]
    reference = max((i for i in range(s) if sizes[i] == median), key=lambda i: (mean_ari[i], -i))
    return _vote(codes, codes[reference], adjacency)


def two_labelings(what: str, first: str, fix: str) -> str:
    """The warning for a vote of exactly two labelings (``what``: the combination, ``first``: the
    labeling it keeps): each disagreement is a tie, which goes to the reference, so the vote gives
    one of the two unchanged and combines nothing."""
    return (f"{what} votes over two labelings: where they differ each spot's vote is a tie, which goes to the "
            f"reference, so it is one of the two unchanged ({first}'s; where their numbers of domains differ, the one with "
            f"fewer) and combines nothing. Fix: {fix}")


def _vote(codes: list[np.ndarray], ref: np.ndarray, adjacency: sp.spmatrix | None = None) -> np.ndarray:
    """Each labeling's domains matched one-to-one to ``ref``'s, then each spot's majority, over
    the spot and its neighbours in ``adjacency`` where given (ties: ``ref``'s label)."""
    k = ref.max() + 1
    votes = np.zeros((len(ref), k), dtype=np.int32)
    for c in codes:
        cont = np.zeros((c.max() + 1, k))
        np.add.at(cont, (c, ref), 1)
        rows, cols = linear_sum_assignment(-cont)
        mapping = np.full(c.max() + 1, -1)
        mapping[rows] = cols
        mapped = mapping[c]
        ok = mapped >= 0
        np.add.at(votes, (np.flatnonzero(ok), mapped[ok]), 1)
    if adjacency is not None:
        neighbours = sp.csr_matrix(adjacency, dtype=np.int32, copy=True)
        neighbours.setdiag(0)
        neighbours.eliminate_zeros()
        neighbours.data[:] = 1
        votes = votes + neighbours @ votes
    best = votes.max(axis=1)
    return np.where(votes[np.arange(len(ref)), ref] == best, ref, votes.argmax(axis=1))

"""The rules of docs/compare/DEFAULTS.md, "The vote across methods" and its second candidate,
measured on a finished run.

For every slide and seed of a run of studies/compare_best.yaml's members, the members' labels are
combined three ways: by the vote the DAG's ``ensemble`` rule casts (each spot alone), by the spatial
vote (each spot with its neighbours in the slide's ``graph.npz``: ``stcore.consensus`` with
``adjacency``) and by meta-clustering (:func:`mcla`).  Each is scored as the DAG scores a run
(``stcore.evaluate.label_rows``); the vote must equal the run's own ``ensemble`` rows, which is
checked.  Writes the run's table with rows added as methods ``ensemble_spatial`` and
``ensemble_mcla`` (CPU seconds: the members' own, as for ``ensemble``), for benchmarks/recommend.py:

    .venv/bin/python benchmarks/ensemble_vote.py --results <run>/results \\
        --samples studies/compare_samples.tsv --ensemble ensemble --out <file>
    .venv/bin/python benchmarks/recommend.py --table <file> --peers docs/compare/peers/table.tsv
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from stcore.consensus import consensus
from stcore.evaluate import label_rows
from stcore.io import read_h5ad_elems, read_tsv


def mcla(labelings: list[np.ndarray], n_clusters: int) -> np.ndarray:
    """Strehl and Ghosh's meta-clustering: every domain of every labelling is a set of spots; the
    sets are grouped into ``n_clusters`` by average linkage on their Jaccard distance; each spot
    joins the group whose sets contain it in the largest share (ties: the lower group).  Linear in
    the spots (the sets' overlaps are one sparse product, sets x sets)."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    codes = [pd.factorize(np.asarray(lab))[0] for lab in labelings]
    n = len(codes[0])
    sets = sp.hstack([sp.csr_matrix((np.ones(n), (np.arange(n), c)), shape=(n, c.max() + 1)) for c in codes]).tocsr()
    inter = (sets.T @ sets).toarray()
    size = np.diag(inter)
    distance = 1.0 - inter / (size[:, None] + size[None, :] - inter)
    np.fill_diagonal(distance, 0.0)
    group = fcluster(linkage(squareform(distance, checks=False), method="average"), t=n_clusters,
                     criterion="maxclust") - 1
    member = sp.csr_matrix((np.ones(group.size), (np.arange(group.size), group)))
    share = (sets @ member).toarray() / np.asarray(member.sum(axis=0)).ravel()
    return pd.factorize(share.argmax(axis=1))[0]


def run_args(doc: str, flat: bool = False) -> argparse.Namespace:
    """The options of a measurement on a finished run's combination of methods (also
    benchmarks/ensemble_seeds.py's): its results, its sheet, the combination's name, the output
    (and ``--flat`` where ``flat``)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True, help="the run's results/ folder")
    ap.add_argument("--samples", type=Path, required=True, help="the run's sample sheet")
    ap.add_argument("--ensemble", default="ensemble", help="the run's ensemble row (its members: trained_by)")
    ap.add_argument("--out", type=Path, required=True)
    if flat:
        ap.add_argument("--flat", action="store_true", help="also one vote over every member's seeds")
    return ap.parse_args()


def main() -> None:
    args = run_args(__doc__)

    table = pd.read_csv(args.results / "table.tsv", sep="\t", dtype={"sample": str, "seed": str})
    sheet = pd.read_csv(args.samples, sep="\t", dtype=str).set_index("sample")
    dag = table[table["method"] == args.ensemble]
    rows = []
    for _, run in dag.iterrows():
        sample, seed, members = run["sample"], run["seed"], run["trained_by"].split("+")
        slide = read_h5ad_elems(args.results / sample / "hvg.h5ad", "obs", "obsm/spatial")
        obs = slide["obs"]
        labelings = [read_tsv(args.results / sample / m / f"seed{seed}" / "labels.tsv", index_col="spot")["domain"]
                     .loc[obs.index].to_numpy() for m in members]
        truth_key = sheet.loc[sample, "truth"]
        truth = obs[truth_key] if isinstance(truth_key, str) and truth_key else None
        adjacency = sp.load_npz(args.results / sample / "graph.npz")
        n_clusters = int(float(sheet.loc[sample, "n_clusters"]))
        combiners = {args.ensemble: lambda: consensus(labelings),
                     f"{args.ensemble}_spatial": lambda: consensus(labelings, adjacency),
                     f"{args.ensemble}_mcla": lambda: mcla(labelings, n_clusters)}
        for method, combine in combiners.items():
            labels = pd.Series(combine(), index=obs.index)
            info = {"sample": sample, "method": method, "seed": seed, "trained_by": run["trained_by"]}
            row = label_rows(obs, slide["obsm/spatial"], labels, truth, info)[0]
            if method == args.ensemble:
                if not np.isclose(row["ARI"], run["ARI"], atol=1e-4):
                    raise SystemExit(f"{sample} seed {seed}: the vote gives ARI {row['ARI']:.4f}, the run's "
                                     f"{args.ensemble} row {run['ARI']:.4f}: not the run's labels")
            else:
                rows.append(run.to_dict() | row)        # the members' CPU seconds, as the run's own row
            print(f"{sample} seed {seed} {method}: ARI {row['ARI']:.4f}", flush=True)
    added = pd.DataFrame(rows)
    out = pd.concat([table, added[table.columns.intersection(added.columns)]])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, sep="\t", index=False)


if __name__ == "__main__":
    main()

"""Labelings of one training's last epochs combined (docs/compare/DEFAULTS.md, "Labelings of the last
epochs combined": the rule was written before this run).

For each slide and seed, graphst is trained as the DAG trains it (the config's ``train:`` settings on
the DAG's own ``results/<slide>/hvg.h5ad`` and ``graph.npz``, 2 threads), keeping the model's output
after epochs 600, 580, ..., 520 (``train.snapshots: 5``: forward passes without gradient, so training
is unchanged).  Each snapshot is clustered as the DAG clusters the final
output (``features_of``: PCA 20 of Â Z W2; mclust EEE, one start):

- ``default``: the last epoch's output on the seed's own draw: the DAG's labels;
- ``one_draw``: every snapshot on the seed's own draw, the labelings combined by
  ``stcore.consensus.consensus``;
- ``five_draws``: the j-th output from the end on mclust's j-th draw (``subset_rows(n, seed,
  start=j)``), combined the same way: ``run_cluster`` given the five outputs' features, as the
  cluster step clusters a training with snapshots.

Rows (``--out``): sample, seed, variant, ARI.  The summary (``<out>_summary.tsv``) gives each slide's
mean and sd of ARI over the seeds per variant, the DAG's consensus of 5 seeds over the disjoint seed
sets {0-4}, {5-9}, ... (mean, replicate sd), and the rule's clauses 1-2; the labels are kept in
``benchmarks/.work/<out>_labels.npz`` so the summary can be redone (``--summary-only``).

    .venv/bin/python benchmarks/snapshots.py --seeds 0 1 ... 19 --out docs/compare/snapshots.tsv
"""
from __future__ import annotations

import argparse
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import yaml

from stcore.cluster import ClusterParams, features_of, run_cluster
from stcore.consensus import consensus
from stcore.evaluate import domain_metrics
from stcore.io import read_h5ad_elems
from stcore.mclust import mclust_starts
from stcore.methods import MethodResult
from stcore.train import TrainParams, fit_graph_model

VARIANTS = ["default", "one_draw", "five_draws"]


def seed_labelings(x, adj, train: dict, seed: int, k: int, snapshots: int, n_pcs: int) -> dict:
    """The three variants' labels of one trained seed."""
    known = {f.name for f in fields(TrainParams)}
    params = TrainParams(**{key: v for key, v in train.items() if key in known}, seed=seed, threads=2, log_every=0,
                         snapshots=snapshots)
    res = fit_graph_model(x, adj, params)
    cp = ClusterParams(n_pcs=n_pcs, seed=seed)
    # The features the cluster step takes: the last epoch's output, then the snapshots (newest first).
    feats = features_of(MethodResult(res.embedding, res.decoded, res.decoder_weight, snapshots=res.snapshots), cp)
    same = [mclust_starts(f, k, seed=seed)[0] for f in feats]
    coords = np.zeros((len(same[0]), 2))
    return {"default": same[0], "one_draw": consensus(same),
            "five_draws": run_cluster(feats, coords, k, cp)}     # as the cluster step combines the outputs


def summarise(rows: pd.DataFrame, labels: dict, truths: dict, seeds: list[int]) -> pd.DataFrame:
    out = []
    for sample, d in rows.groupby("sample", sort=False):
        for v in VARIANTS:
            a = d[d["variant"] == v]["ARI"]
            groups = [seeds[i:i + 5] for i in range(0, len(seeds) - 4, 5)]
            cons = [domain_metrics(truths[sample], consensus([labels[sample, s, v] for s in g]))["ARI"]
                    for g in groups]
            out.append({"sample": sample, "variant": v, "seeds": len(a), "mean": a.mean(), "sd": a.std(ddof=1),
                        "consensus5_mean": np.mean(cons) if cons else np.nan,
                        "consensus5_sd": np.std(cons, ddof=1) if len(cons) > 1 else np.nan})
    s = pd.DataFrame(out)
    med = s.groupby("variant", sort=False)[["mean", "sd", "consensus5_sd"]].median()
    base = s[s["variant"] == "default"].set_index("sample")
    for v in VARIANTS[1:]:
        c = s[s["variant"] == v].set_index("sample")
        c1 = (med.loc[v, "sd"] <= 0.75 * med.loc["default", "sd"]) and ((c["sd"] - base["sd"]).max() <= 0.01)
        c2 = (c["mean"] - base["mean"]).min() >= -0.02
        print(f"{v}: median seed sd {med.loc[v, 'sd']:.4f} vs default {med.loc['default', 'sd']:.4f} "
              f"(0.75x {0.75 * med.loc['default', 'sd']:.4f}), largest sd growth {(c['sd'] - base['sd']).max():+.4f}"
              f" -> clause 1 {'holds' if c1 else 'fails'}; largest mean fall {(c['mean'] - base['mean']).min():+.4f}"
              f" -> clause 2 {'holds' if c2 else 'fails'}")
    return s


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="config/compare_clustering.yaml")
    ap.add_argument("--results", default="results")
    ap.add_argument("--samples", nargs="+", default=["151673", "151674", "151510", "starmap_BZ5", "osmfish"])
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(20)))
    ap.add_argument("--snapshots", type=int, default=5, help="outputs clustered (train.snapshots): 600, 580, ...")
    ap.add_argument("--out", required=True)
    ap.add_argument("--summary-only", action="store_true")
    a = ap.parse_args(argv)
    cfg = yaml.safe_load(Path(a.config).read_text())
    sheet = pd.read_csv(cfg["samples"], sep="\t", dtype=str, keep_default_na=False).set_index("sample")
    n_pcs = int((cfg.get("cluster") or {}).get("n_pcs", 20))
    out = Path(a.out)
    labels_path = Path("benchmarks/.work") / (out.stem + "_labels.npz")      # not committed
    labels_path.parent.mkdir(parents=True, exist_ok=True)
    truths = {}
    for sample in a.samples:
        obs = read_h5ad_elems(Path(a.results) / sample / "hvg.h5ad", "obs")["obs"]
        truths[sample] = obs[sheet.loc[sample, "truth"]].to_numpy()
    if a.summary_only:
        rows = pd.read_csv(out, sep="\t", dtype={"sample": str})
        with np.load(labels_path) as z:
            labels = {tuple(key.split("|")[:1]) + (int(key.split("|")[1]), key.split("|")[2]): z[key] for key in z}
    else:
        rows, labels = [], {}
        for sample in a.samples:
            k = int(sheet.loc[sample, "n_clusters"])
            res_dir = Path(a.results) / sample
            adj = sp.load_npz(res_dir / "graph.npz")
            for seed in a.seeds:
                t0 = time.perf_counter()
                x = read_h5ad_elems(res_dir / "hvg.h5ad", "X")["X"]
                labs = seed_labelings(x, adj, cfg["train"], seed, k, a.snapshots, n_pcs)
                for v, lab in labs.items():
                    labels[sample, seed, v] = lab
                    rows.append({"sample": sample, "seed": seed, "variant": v,
                                 "ARI": round(domain_metrics(truths[sample], lab)["ARI"], 4)})
                print(sample, seed, {r["variant"]: r["ARI"] for r in rows[-3:]},
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
            pd.DataFrame(rows).to_csv(out, sep="\t", index=False)        # after each slide
            np.savez_compressed(labels_path, **{f"{s}|{seed}|{v}": lab for (s, seed, v), lab in labels.items()})
        rows = pd.DataFrame(rows)
    summary = summarise(rows, labels, truths, a.seeds)
    summary.round(4).to_csv(out.with_name(out.stem + "_summary.tsv"), sep="\t", index=False)
    print(summary.round(3).to_string(index=False))


if __name__ == "__main__":
    main()

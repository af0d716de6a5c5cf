"""What n_clusters: auto picks on the labelled slides, next to the annotation's number of domains.

For every (slide, seed) of a finished run of one method: the features the cluster step clusters
(its ``cluster`` settings; 20 PCs of the reconstruction by default), clustered by the cluster step's
own call (``stcore.cluster.run_cluster``) three ways on the same features: at the annotated number,
with ``auto: bic`` and with ``auto: stability`` for each ``--measures``.  Each row: the chosen
number, the ARI of each labelling against the annotation, and the clustering CPU seconds of each
call (BLAS on one thread, as the cluster job runs; ``s_*``; in the summary ``x_*`` is the median
ratio auto / annotated over a slide's seeds).  Slides whose sheet says 'auto' are skipped.

    nice -n 10 .venv/bin/python benchmarks/auto_k.py --config <the run's config> \\
        --results <the run's folder>/results --samples studies/compare_samples.tsv --out docs/compare/auto_k.tsv

(``--resume``: the rows already in ``--out`` are kept and only the other runs are clustered.)  The cost on
one slide, each call made ``--times`` times back to back (medians; the load of the machine drifts less within one call than across the run):

    nice -n 10 .venv/bin/python benchmarks/auto_k.py --config <the run's config> --results <the run's folder>/results \\
        --samples studies/compare_samples.tsv --only 151673 --seeds 0 --measures ari --times 5 --out docs/compare/auto_k_cost.tsv
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import yaml
from threadpoolctl import threadpool_limits

from stcore.cluster import ClusterParams, features_of, run_cluster
from stcore.evaluate import domain_metrics
from stcore.methods import MethodResult


def timed(x, coords, n_clusters, params, record=None, times=1):
    """The labels and the median CPU seconds of ``times`` calls (the same labels each time).  CPU
    time of this process, BLAS on one thread: on a shared machine the wall time of a call depends on
    what else runs, its CPU time far less."""
    seconds = []
    with threadpool_limits(limits=1):
        for _ in range(times):
            t = time.process_time()
            labels = run_cluster(x, coords, n_clusters, params, record=record)
            seconds.append(time.process_time() - t)
    return labels, float(np.median(seconds))


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--samples", help="sample sheet (default: the config's)")
    ap.add_argument("--method", default="graphst")
    ap.add_argument("--range", type=int, nargs=2, default=[2, 15])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--measures", nargs="+", default=["ari", "fmi"])
    ap.add_argument("--seeds", type=int, nargs="+", help="these seeds only (default: the method's seeds)")
    ap.add_argument("--results", default="results")
    ap.add_argument("--out")
    ap.add_argument("--only", nargs="+", help="these samples only")
    ap.add_argument("--times", type=int, default=1, help="calls timed per clustering (the median is reported)")
    ap.add_argument("--resume", action="store_true", help="keep the rows already in --out; run only the others")
    a = ap.parse_args(argv)
    cfg = yaml.safe_load(open(a.config))
    sheet = pd.read_csv(a.samples or cfg["samples"], sep="\t", dtype=str, keep_default_na=False)
    seeds = a.seeds or cfg["methods"][a.method].get("seeds", cfg["seeds"])
    settings = {k: v for k, v in (cfg.get("cluster") or {}).items()} | (cfg["methods"][a.method].get("cluster") or {})
    rows = pd.read_csv(a.out, sep="\t", dtype={"sample": str}).to_dict("records") if a.resume and Path(a.out).is_file() else []
    done = {(r["sample"], int(r["seed"])) for r in rows}
    for _, s in sheet.iterrows():
        if s["n_clusters"] == "auto" or (a.only and s["sample"] not in a.only):
            continue
        annotated = int(float(s["n_clusters"]))
        slide = ad.read_h5ad(Path(a.results) / s["sample"] / "hvg.h5ad", backed="r")
        truth = slide.obs[s["truth"]].to_numpy() if s.get("truth") else None
        coords = np.asarray(slide.obsm["spatial"])
        for seed in seeds:
            npz = Path(a.results) / s["sample"] / a.method / f"seed{seed}" / "train.npz"
            if not npz.is_file() or (s["sample"], int(seed)) in done:
                continue
            params = ClusterParams(**settings | {"auto_range": tuple(a.range), "auto_repeats": a.repeats},
                                   seed=int(seed))
            x = features_of(MethodResult.load(npz), params)
            row = {"sample": s["sample"], "method": a.method, "seed": int(seed), "spots": x.shape[0],
                   "annotated": annotated}
            given, row["s_given"] = timed(x, coords, annotated, params, times=a.times)
            for name, extra in [("bic", {"auto": "bic"})] + [(f"stab_{m}", {"auto": "stability", "auto_measure": m})
                                                             for m in a.measures]:
                record = {}
                labels, row[f"s_{name}"] = timed(x, coords, "auto", ClusterParams(**vars(params) | extra), record,
                                                 times=a.times)
                row[f"K_{name}"] = record["chosen"]
                if truth is not None:
                    row[f"ARI_{name}"] = domain_metrics(truth, labels)["ARI"]
                if name != "bic":
                    row[f"curve_{name}"] = " ".join(f"{g}:{v:.3f}" for g, v in zip(record["n_clusters"], record["score"]))
            if truth is not None:
                row["ARI_given"] = domain_metrics(truth, given)["ARI"]
            rows.append(row)
            if a.out:       # every row as soon as it is measured
                pd.DataFrame(rows).to_csv(a.out, sep="\t", index=False, float_format="%.4f")
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items() if not k.startswith("curve")},
                  flush=True)
    t = pd.DataFrame(rows)
    order = {name: i for i, name in enumerate(sheet["sample"])}
    t = t.sort_values(["sample", "seed"], key=lambda c: c.map(order) if c.name == "sample" else c, ignore_index=True)
    names = ["bic"] + [f"stab_{m}" for m in a.measures]
    agg = {"annotated": ("annotated", "first"), "ARI_given": ("ARI_given", "mean"), "s_given": ("s_given", "median")}
    for name in names:
        agg |= {f"K_{name}": (f"K_{name}", lambda v: " ".join(map(str, v))), f"ARI_{name}": (f"ARI_{name}", "mean"),
                f"x_{name}": (f"s_{name}", "median")}
    t_ratio = t.assign(**{f"s_{n}": t[f"s_{n}"] / t["s_given"] for n in names})
    summary = t_ratio.groupby("sample", sort=False).agg(**agg)
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    if a.out:
        t.to_csv(a.out, sep="\t", index=False, float_format="%.4f")
        summary.to_csv(Path(a.out).with_name(Path(a.out).stem + "_summary.tsv"), sep="\t", float_format="%.3f")
    return t


if __name__ == "__main__":
    main()

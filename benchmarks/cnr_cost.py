"""Cost per epoch of MKL's strict reproducibility mode (MKL_CBWR=AUTO,STRICT, the default that
importing stcore sets) against MKL's non-strict AUTO mode, on real slides.

MKL reads the mode once per process, so every measurement is a fresh process; the two modes
alternate (AUTO, STRICT, AUTO, ...) so that drifts of a shared machine hit both alike.  Each
process preprocesses the slide as the pipeline does, trains ``--epochs`` epochs and reports
the median epoch time after the first.  Also checks that each mode gives the same loss with
1 and 2 threads.

    python benchmarks/cnr_cost.py --slides ../shared/data/DLPFC/151673.h5ad \\
        ../shared/data/STARmap_mPFC/20180417_BZ5_control.h5ad --out benchmarks/results/cnr_cost.tsv
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pandas as pd

_CHILD = r"""
import json, sys
import stcore
import numpy as np, anndata as ad, torch
from stcore.graph import GraphParams, spatial_adjacency
from stcore.hvg import HVGParams, run_hvg
from stcore.provenance import machine
from stcore.qc import QCParams, prepare_slide
from stcore.train import TrainParams, fit_graph_model
slide, epochs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
adata, _ = prepare_slide(slide, "h5ad", QCParams(), truth="", n_clusters=7)
hvg = run_hvg(adata, HVGParams())
adj = spatial_adjacency(np.asarray(hvg.obsm["spatial"]))
res = fit_graph_model(hvg.X, adj, TrainParams(epochs=epochs, seed=0, threads=threads, log_every=0))
print(json.dumps({"epoch_s": float(np.median(res.epoch_seconds[1:])), "last_loss": float(res.losses.total.iloc[-1]),
                  "density": float(hvg.X.nnz / np.prod(hvg.shape)) if hasattr(hvg.X, "nnz") else 1.0,
                  "spots": hvg.n_obs, "genes": hvg.n_vars, **machine()}))
"""


def run_child(slide: str, mode: str, epochs: int, threads: int) -> dict:
    env = dict(os.environ, MKL_CBWR=mode)
    out = subprocess.run([sys.executable, "-c", _CHILD, slide, str(epochs), str(threads)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slides", nargs="+", required=True)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    rows = []
    for slide in a.slides:
        for rep in range(a.repeats):
            for mode in ("AUTO", "AUTO,STRICT"):
                r = run_child(slide, mode, a.epochs, a.threads)
                rows.append({"slide": Path(slide).stem, "mode": mode, "repeat": rep, "threads": a.threads, **r})
                print(rows[-1], flush=True)
        for mode in ("AUTO", "AUTO,STRICT"):   # the loss with one thread, to compare with a.threads
            r = run_child(slide, mode, a.epochs, 1)
            rows.append({"slide": Path(slide).stem, "mode": mode, "repeat": 0, "threads": 1, **r})
    t = pd.DataFrame(rows)
    main_t = t[t.threads == a.threads]
    summary = main_t.groupby(["slide", "mode"])["epoch_s"].median().unstack()
    summary["strict_over_auto"] = summary["AUTO,STRICT"] / summary["AUTO"]
    same = t.groupby(["slide", "mode"])["last_loss"].nunique().unstack() == 1
    print(summary.to_string())
    print("loss identical across thread counts and repeats:\n" + same.to_string())
    print("machine:", platform.node(), t["cpu_model"].iloc[0], t["cpu_kernels"].iloc[0], t["blas"].iloc[0])
    if a.out:
        t.to_csv(a.out, sep="\t", index=False)
        summary.to_csv(Path(a.out).with_suffix(".summary.tsv"), sep="\t")
    return t


if __name__ == "__main__":
    main()

"""Seconds per training epoch of two checkouts of stcore, alternating, on the same synthetic slide: the
A/B for a rewrite of the training loop.

    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 .venv/bin/python benchmarks/epoch_ab.py \\
        --repo . --repo <another checkout> --spots 200000 --epochs 8 --repeats 4 [--cpus 2,3]

The slide: N scattered spots with the pipeline's kNN graph and N x 100 Gaussian features (the shape of
train.input_pcs: 100), as in profile_epoch.py.  Each run is its own process with that checkout's stcore on
PYTHONPATH (pinned to --cpus with taskset when given), 2 threads; prints the median epoch after the first
and the final loss, which must agree where the rewrite is exact.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, sys, numpy as np
import stcore
from stcore.graph import GraphParams, knn_graph
from stcore.train import TrainParams, fit_graph_model
n, epochs = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
adj = knn_graph(rng.uniform(0, np.sqrt(n), (n, 2)), GraphParams())
x = rng.standard_normal((n, 100)).astype(np.float32)
r = fit_graph_model(x, adj, TrainParams(epochs=epochs, threads=2, device="cpu", log_every=0))
print(json.dumps({"stcore": stcore.__file__, "s_per_epoch": float(np.median(r.epoch_seconds[1:])),
                  "final_loss": float(r.losses.total.iloc[-1])}))
"""


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", action="append", required=True, help="a checkout (repeatable)")
    ap.add_argument("--spots", type=int, default=200000)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--cpus", help="pin each run to these CPUs (taskset -c)")
    a = ap.parse_args(argv)
    pin = ["taskset", "-c", a.cpus] if a.cpus and shutil.which("taskset") else []
    for rep in range(a.repeats):
        for repo in a.repo:
            env = dict(os.environ, PYTHONPATH=str(Path(repo).resolve()))
            out = subprocess.run(pin + [sys.executable, "-c", CHILD, str(a.spots), str(a.epochs)], env=env,
                                 cwd="/", capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"{repo}: {out.stderr[-2000:]}")
            row = {"repo": repo, "repeat": rep} | json.loads(out.stdout.strip().splitlines()[-1])
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

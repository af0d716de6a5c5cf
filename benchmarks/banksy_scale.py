"""BANKSY's train job (``stcore.methods.fit('banksy', ...)``, pybanksy 1.3.5) alone, each call in a
fresh interpreter: its CPU seconds and its peak memory (the process's high-water mark), with and
without its own Leiden search for the number of domains (run only when a method of the config
reports BANKSY's own labels), on labelled slides and on simulated slides of growing size:

    .venv/bin/python benchmarks/banksy_scale.py --data ../shared/data --sizes 10000 25000 50000 \\
        --out benchmarks/results/banksy_scale.tsv

pybanksy holds the BANKSY matrix (spots x 3 x genes, float64) dense, with copies: its peak grows
with spots x genes, and ``stcore.plan.resources`` budgets the train job's memory by this table.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

CHILD = r"""
import json, resource, sys, time
import anndata as ad, numpy as np
from stcore.methods import fit
from stcore.hvg import HVGParams, run_hvg
from stcore.io import as_csr
spec = json.loads(sys.argv[1])
if spec["path"]:
    a = ad.read_h5ad(spec["path"])
    a.X = as_csr(a.X)
else:
    from stcore.simulate import SimParams, simulate_slide
    a = simulate_slide(SimParams(n_spots=spec["spots"], layout="scatter", n_layers=5, n_regions=1, seed=spec["spots"]))
prepared = run_hvg(a, HVGParams(n_top_genes=3000, values="counts"))
del a
counts = prepared.layers["counts"]
start = resource.getrusage(resource.RUSAGE_SELF)
before = start.ru_maxrss
t0 = time.perf_counter()
result = fit("banksy", None, None, np.asarray(prepared.obsm["spatial"]), {}, 0, counts=counts,
             n_clusters=spec["n_clusters"])
end = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "cpu_s": end.ru_utime + end.ru_stime - start.ru_utime - start.ru_stime,
                  "peak_mb": end.ru_maxrss / 1024, "peak_before_mb": before / 1024,
                  "spots": int(counts.shape[0]), "genes_given": int(counts.shape[1]),
                  "own_labels": result.labels is not None}))
"""


def run(spec: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="the labelled slides' folder (DLPFC/151673.h5ad, ...)")
    ap.add_argument("--slides", nargs="*", default=["DLPFC/151673.h5ad:7", "MERFISH_hypothalamus/Animal1_Bregma_0.21.h5ad:16"])
    ap.add_argument("--sizes", nargs="*", type=int, default=[10000, 25000, 50000])
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    rows = []
    for item in a.slides if a.data else []:
        name, k = item.rsplit(":", 1)
        for n_clusters in (int(k), None):           # with its search, then without (the recommended answer)
            row = {"slide": name, "search": n_clusters is not None,
                   **run({"path": str(a.data / name), "spots": 0, "n_clusters": n_clusters})}
            print(row, flush=True)
            rows.append(row)
    for spots in a.sizes:
        row = {"slide": f"simulated {spots}", "search": False, **run({"path": "", "spots": spots, "n_clusters": None})}
        print(row, flush=True)
        rows.append(row)
    t = pd.DataFrame(rows)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    t.to_csv(a.out, sep="\t", index=False, float_format="%.2f")
    return t


if __name__ == "__main__":
    main()

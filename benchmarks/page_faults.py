"""Seconds per training epoch under different memory allocators: glibc as it comes, glibc with
huge pages for large allocations, and tcmalloc.

glibc serves each allocation above 32 MB with a fresh mmap and unmaps it when freed, so at
10^5-10^6 spots every large tensor of an epoch is faulted in 4 KB page by 4 KB page.  The
tunable ``glibc.malloc.hugetlb=1`` (glibc >= 2.35; the DAG sets it for every job, see
rules/common.smk) asks for transparent huge pages on those mappings.  Each measurement is a
fresh process (glibc reads its tunables at start), alternating the settings:

    .venv/bin/python benchmarks/page_faults.py --spots 200000 1000000 --epochs 4 --repeats 2

``tcmalloc`` (gperftools' libtcmalloc_minimal, preloaded; Debian ``libtcmalloc-minimal4``) keeps
freed memory in the process and hands it out again instead of unmapping it; the DAG preloads it
with STCORE_MALLOC=tcmalloc (rules/common.smk).  ``--settings`` picks the settings to alternate.

The slide: N scattered spots with the pipeline's kNN graph and N x 100 Gaussian features (the
shape of train.input_pcs: 100); the loss after the epochs must be identical across settings.
"""
from __future__ import annotations

import argparse
import ctypes.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TCMALLOC = ctypes.util.find_library("tcmalloc_minimal")
SETTINGS = {"default": {},
            "hugetlb": {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"},
            "tcmalloc": {"LD_PRELOAD": TCMALLOC or "", "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(1 << 40)}}
SETTINGS["tcmalloc_release10"] = {**SETTINGS["tcmalloc"], "TCMALLOC_RELEASE_RATE": "10"}


def child(n: int, k: int, epochs: int) -> dict:
    import resource

    import numpy as np

    import stcore  # noqa: F401  (MKL settings before torch computes)
    from stcore.graph import GraphParams, spatial_adjacency
    from stcore.provenance import malloc
    from stcore.train import TrainParams, fit_graph_model

    rng = np.random.default_rng(0)
    adj = spatial_adjacency(rng.uniform(0, np.sqrt(n), (n, 2)), GraphParams())
    x = rng.standard_normal((n, k)).astype(np.float32)
    r = fit_graph_model(x, adj, TrainParams(epochs=epochs + 1, threads=2, device="cpu", log_every=0))
    return {"s_per_epoch": float(np.median(r.epoch_seconds[1:])), "loss": float(r.losses.total.iloc[-1]),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "allocator": malloc()}


def main(argv=None) -> list:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spots", type=int, nargs="+", default=[200000])
    ap.add_argument("--features", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=["default", "hugetlb"])
    ap.add_argument("--out", help="write the rows as JSON lines here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.spots[0], a.features, a.epochs)))
        return []
    if any(s.startswith("tcmalloc") for s in a.settings) and not TCMALLOC:
        sys.exit("tcmalloc is not installed. Fix: apt-get install libtcmalloc-minimal4 (Debian/Ubuntu)")
    rows = []
    for n in a.spots:
        for rep in range(a.repeats):
            for name in a.settings:
                env = {k: v for k, v in os.environ.items()
                       if k not in ("GLIBC_TUNABLES", "LD_PRELOAD", "STCORE_MALLOC")}
                env.update(SETTINGS[name], PYTHONPATH=str(ROOT))
                out = subprocess.run([sys.executable, __file__, "--child", "--spots", str(n), "--features",
                                      str(a.features), "--epochs", str(a.epochs)], env=env, capture_output=True,
                                     text=True, check=True).stdout.strip().splitlines()[-1]
                rows.append({"spots": n, "setting": name, "repeat": rep, **json.loads(out)})
                print(json.dumps(rows[-1]), flush=True)
    for n in a.spots:
        losses = {r["loss"] for r in rows if r["spots"] == n}
        print(f"# {n} spots: final loss {'identical' if len(losses) == 1 else 'DIFFERS'} across settings")
    if a.out:
        Path(a.out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


if __name__ == "__main__":
    main()

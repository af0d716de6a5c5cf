"""Seconds per training epoch of two checkouts of stcore, alternating, on the same synthetic slide: the
A/B for a rewrite of the training loop.

    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 .venv/bin/python benchmarks/epoch_ab.py \\
        --repo . --repo <another checkout> --spots 200000 --epochs 7 --repeats 4 [--cpus 2,3]

Each run is page_faults.py's child (N scattered spots with the pipeline's kNN graph, N x 100 Gaussian
features, 2 threads, the glibc tunables of this environment) in its own process with that checkout's
stcore on PYTHONPATH, pinned to --cpus with taskset when given; prints the median epoch after the first,
the final loss (equal where the rewrite is exact) and the peak RSS.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", action="append", required=True, help="a checkout (repeatable)")
    ap.add_argument("--spots", type=int, default=200000)
    ap.add_argument("--epochs", type=int, default=7, help="timed epochs (after one untimed first epoch)")
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--cpus", help="pin each run to these CPUs (taskset -c)")
    a = ap.parse_args(argv)
    pin = ["taskset", "-c", a.cpus] if a.cpus and shutil.which("taskset") else []
    for rep in range(a.repeats):
        for repo in a.repo:
            env = dict(os.environ, PYTHONPATH=str(Path(repo).resolve()))
            # page_faults.py's child: the same slide and run, with this checkout's stcore first on the path
            out = subprocess.run(pin + [sys.executable, str(HERE / "page_faults.py"), "--child", "--spots",
                                        str(a.spots), "--features", "100", "--epochs", str(a.epochs)],
                                 env=env, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"{repo}: {out.stderr[-2000:]}")
            row = {"repo": repo, "repeat": rep} | json.loads(out.stdout.strip().splitlines()[-1])
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

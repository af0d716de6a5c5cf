"""What a whole run costs per method on one slide, measured in alternation on the same machine.

For each method (a registry model, or ``ensemble``: graphst, banksy and cellcharter with their
combination, as config/recommended.yaml runs them) the whole DAG runs from an empty folder on one
slide, one seed (``snakemake --cores 2 all``: qc to domains.h5ad), the methods taking turns in each
repeat so that they see the same load.  Records the process tree's wall and CPU seconds (user +
system of snakemake and every job it started) and the run's ARI:

    .venv/bin/python benchmarks/cost_pair.py --method graphst --method banksy --method cellcharter \\
        --method ensemble --repeats 2 --out benchmarks/results/cost_pair.tsv

``--data`` is the folder holding DLPFC/151673.h5ad (default ../shared/data).
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
ENSEMBLE = ["graphst", "banksy", "cellcharter"]


def config_for(method: str, data: Path) -> dict:
    members = ENSEMBLE if method == "ensemble" else [method]
    config = {"samples": "samples.tsv", "data_dir": str(data), "seeds": [0], "simulate": {},
              "train": {"device": "cpu"}, "methods": {m: {"model": m} for m in members}}
    if method == "ensemble":
        config["ensembles"] = {"ensemble": {"methods": ENSEMBLE}}
    return config


def run_once(method: str, work: Path, data: Path, cores: int) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "config.yaml").write_text(yaml.safe_dump(config_for(method, data)))
    (work / "samples.tsv").write_text("sample\tpath\tformat\tn_clusters\ttruth\n"
                                      "151673\tDLPFC/151673.h5ad\th5ad\t7\tground_truth\n")
    cmd = [str(Path(sys.executable).parent / "snakemake"), "-s", str(REPO / "Snakefile"), "--directory", str(work),
           "--configfile", str(work / "config.yaml"), "--cores", str(cores), "--quiet", "all"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"the DAG failed for {method}:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    metrics = pd.read_csv(work / f"results/151673/{method}/seed0/metrics.tsv", sep="\t")
    return {"wall_s": wall, "cpu_s": cpu, "ARI": float(metrics["ARI"].iloc[0])}


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", action="append", required=True)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    data = Path(a.data).resolve()
    if not (data / "DLPFC/151673.h5ad").exists():
        raise SystemExit(f"{data}/DLPFC/151673.h5ad not found: give --data the folder of the shared slides")
    rows = []
    for rep in range(a.repeats):
        for method in a.method:
            row = run_once(method, REPO / "benchmarks" / ".work" / f"cost_{method}", data, a.cores)
            rows.append({"method": method, "repeat": rep, **row})
            print(rows[-1], flush=True)
    t = pd.DataFrame(rows)
    med = t.drop(columns="repeat").groupby("method", sort=False).median()
    lines = [f"# whole DAG on DLPFC 151673 (one seed, qc to domains.h5ad), snakemake --cores {a.cores} on "
             f"{os.cpu_count()} CPUs, methods in alternation; wall_s and cpu_s of the whole process tree",
             f"# median of {a.repeats}: " + ", ".join(f"{m} {r.wall_s:.1f} s wall / {r.cpu_s:.1f} cpu-s"
                                                      for m, r in med.iterrows())]
    text = "\n".join(lines) + "\n" + t.to_csv(sep="\t", index=False, float_format="%.3f")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text)
    print(text)
    return t


if __name__ == "__main__":
    main()

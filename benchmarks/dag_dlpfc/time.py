"""Wall time of the whole DAG on one DLPFC slide, as a user's process sees it.

Runs ``snakemake --cores 2`` on benchmarks/dag_dlpfc/config.yaml (151673, graphst, one seed,
600 epochs) from an empty folder, once per repeat and per checkout, alternating the
checkouts so that both see the same machine load, and records the process's wall seconds
beside each rule's seconds (Snakemake's records):

    .venv/bin/python benchmarks/dag_dlpfc/time.py --repo . --repo /path/to/other/checkout \\
        --repeats 3 --out benchmarks/results/dag_dlpfc.tsv

``--data`` is the folder holding DLPFC/151673.h5ad (default ../shared/data).
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def run_once(repo: Path, work: Path, data: Path, cores: int, epochs: int = 600) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    snakemake = Path(sys.executable).parent / "snakemake"
    epochs_file = work / "epochs.yaml"       # (Snakemake's --config reads nested values as strings)
    epochs_file.write_text(f"train: {{device: cpu, epochs: {epochs}}}\n")
    cmd = [str(snakemake), "-s", str(repo / "Snakefile"), "--directory", str(work),
           "--configfile", str(HERE / "config.yaml"), str(epochs_file),
           "--config", f"samples={HERE / 'samples.tsv'}", f"data_dir={data}",
           "--cores", str(cores), "--quiet", "all"]
    t0 = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(repo))      # each checkout's own stcore
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"the DAG failed in {repo}:\n{proc.stderr[-3000:]}")
    row = {"wall_s": wall}
    for f in glob.glob(str(work / "results/records/**/*.tsv"), recursive=True):
        rule = Path(f).relative_to(work / "results/records").parts[0].removesuffix(".tsv")
        row[f"{rule}_s"] = float(pd.read_csv(f, sep="\t")["s"].iloc[0])
    metrics = pd.read_csv(work / "results/151673/graphst/seed0/metrics.tsv", sep="\t")
    row["ARI"] = float(metrics["ARI"].iloc[0])
    return row


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", action="append", required=True, help="a checkout to time (repeatable)")
    ap.add_argument("--label", action="append", help="a name for each --repo (default: its git commit)")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=600,
                    help="training epochs (1: the DAG's fixed costs alone, without the training loop)")
    ap.add_argument("--out", help="write the rows as TSV here")
    a = ap.parse_args(argv)
    repos = [Path(r).resolve() for r in a.repo]
    labels = a.label or [subprocess.run(["git", "-C", str(r), "rev-parse", "--short", "HEAD"], capture_output=True,
                                        text=True).stdout.strip() or r.name for r in repos]
    data = Path(a.data).resolve()
    if not (data / "DLPFC/151673.h5ad").exists():
        raise SystemExit(f"{data}/DLPFC/151673.h5ad not found: give --data the folder of the shared slides")
    rows = []
    for rep in range(a.repeats):
        for repo, label in zip(repos, labels):
            row = run_once(repo, HERE.parent / ".work" / f"dag_dlpfc_{label}", data, a.cores, a.epochs)
            rows.append({"checkout": label, "repeat": rep, **row})
            print(rows[-1], flush=True)
    t = pd.DataFrame(rows)
    lines = [f"# whole DAG on DLPFC 151673 (graphst, seed 0, {a.epochs} epochs), snakemake --cores {a.cores} on "
             f"{os.cpu_count()} CPUs; wall_s is the whole snakemake process, <rule>_s Snakemake's record of each job"]
    med = t.drop(columns="repeat").groupby("checkout", sort=False).median()
    lines += [f"# median of {a.repeats}: " + ", ".join(f"{k} {v:.1f} s" for k, v in med["wall_s"].items())]
    text = "\n".join(lines) + "\n" + t.to_csv(sep="\t", index=False, float_format="%.3f")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text)
    print(text)
    return t


if __name__ == "__main__":
    main()

"""Gather the 200,000-spot DAG's per-rule seconds and peak memory into one table.

    .venv/bin/python benchmarks/dag200k/collect.py [--work benchmarks/.work/dag200k]

Reads Snakemake's time and memory records (results/records/<rule>/*.tsv, one per job) and the
evaluate step's metrics; writes benchmarks/results/dag200k.tsv: one row per rule (seconds,
max RSS in MB, the job's mean CPU use in percent of one core: Snakemake's mean_load) and a total row (the sum of seconds, the largest RSS).
When the run holds slides of several sizes (benchmarks/dag_hd), each rule's growth is added as
``#`` lines: the least-squares slope of log seconds and log max RSS against log spots.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
from pathlib import Path

import pandas as pd

ORDER = ["simulate", "qc", "hvg", "graph", "train", "cluster", "evaluate", "export", "table"]


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="benchmarks/.work/dag200k")
    ap.add_argument("--out", default="benchmarks/results/dag200k.tsv")
    a = ap.parse_args(argv)
    work = Path(a.work)
    rows = []
    for f in sorted(glob.glob(str(work / "results/records/**/*.tsv"), recursive=True)):
        rule = Path(f).relative_to(work / "results/records").parts[0].removesuffix(".tsv")
        b = pd.read_csv(f, sep="\t")
        log = work / "logs" / rule / f"{Path(f).stem}.log"
        peak = re.findall(r"peak memory (\d+) MB", log.read_text()) if log.exists() else []
        rows.append({"rule": rule, "job": Path(f).stem, "s": float(b["s"].iloc[0]),
                     "max_rss_mb": float(b["max_rss"].iloc[0]), "cpu_pct": float(b["mean_load"].iloc[0]),
                     "peak_mb": float(peak[-1]) if peak else float("nan")})
    if not rows:
        raise SystemExit(f"no Snakemake benchmark files under {work}/results/records: run the DAG first")
    t = pd.DataFrame(rows)
    t["order"] = t["rule"].map({r: i for i, r in enumerate(ORDER)}).fillna(len(ORDER))
    t = t.sort_values(["order", "job"]).drop(columns="order")
    total = {"rule": "total", "job": "", "s": t["s"].sum(), "max_rss_mb": t["max_rss_mb"].max(),
             "cpu_pct": float("nan"), "peak_mb": t["peak_mb"].max()}
    t = pd.concat([t, pd.DataFrame([total])], ignore_index=True)
    metrics = sorted(glob.glob(str(work / "results/*/*/seed*/metrics.tsv")))
    lines = [f"# whole DAG on {os.cpu_count()} CPUs; s, max_rss and cpu_pct (mean_load) from Snakemake's benchmark "
             "directive; a cpu_pct well under the job's threads x 100 means it shared the cores; peak_mb the job's "
             "own high-water mark from its log (exact; Snakemake samples max_rss every 30 s and can miss a peak)"]
    for m in metrics:
        mt = pd.read_csv(m, sep="\t")
        lines.append("# " + ", ".join(f"{c} {mt[c].iloc[0]}" for c in ("sample", "group", "method", "seed", "ARI", "NMI")
                                      if c in mt))
    spots = {}
    for m in metrics:
        mt = pd.read_csv(m, sep="\t")
        spots[str(mt["sample"].iloc[0])] = float(mt["spots"].iloc[0])
    jobs = (t[t["rule"] != "total"].assign(spots=lambda d: d["job"].str.split(".").str[0].map(spots))
            .dropna(subset=["spots"]))
    if jobs["spots"].nunique() > 1:
        import numpy as np

        memory = "peak_mb" if jobs["peak_mb"].notna().all() else "max_rss_mb"
        lines.append("# growth, log-log slope against spots from "
                     f"{int(jobs['spots'].min()):,} to {int(jobs['spots'].max()):,} (seconds / {memory}):")
        for rule, d in jobs.groupby("rule", sort=False):
            if d["spots"].nunique() > 1:
                x = np.log(d["spots"])
                lines.append(f"#   {rule}: {np.polyfit(x, np.log(d['s']), 1)[0]:.2f} / "
                             f"{np.polyfit(x, np.log(d[memory]), 1)[0]:.2f}")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n" + t.to_csv(sep="\t", index=False, float_format="%.2f"))
    print(out.read_text())
    return t


if __name__ == "__main__":
    main()

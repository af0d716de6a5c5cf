"""Benchmark tables over slides, methods and seeds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["benchmark_table", "summary_markdown"]


def benchmark_table(metric_files: list[str], prep_benchmarks: list[str]) -> pd.DataFrame:
    """One row per (sample, method, seed).  ``seconds`` is the slide's preparation time
    (qc + hvg + graph, from Snakemake's benchmark files named ``<stage>/<sample>.tsv``)
    plus the run's training and clustering time."""
    table = pd.concat([pd.read_csv(f, sep="\t") for f in metric_files], ignore_index=True)
    prep = {}
    for f in prep_benchmarks:
        sample = Path(f).stem
        prep[sample] = prep.get(sample, 0.0) + float(pd.read_csv(f, sep="\t")["s"].iloc[0])
    table["prep_s"] = table["sample"].astype(str).map(prep).fillna(0.0)
    table["seconds"] = table["prep_s"] + table["train_s"] + table["cluster_s"]
    return table.sort_values(["sample", "method", "seed"]).reset_index(drop=True)


def _mean_sd(values: pd.Series) -> str:
    v = values.dropna()
    if v.empty:
        return "n/a"
    if len(v) == 1:
        return f"{v.iloc[0]:.3f}"
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def summary_markdown(table: pd.DataFrame, metric: str = "ARI") -> str:
    """Per slide and method: mean ± sd of ``metric`` over seeds; last row: the median over
    slides of the per-slide means."""
    methods = list(dict.fromkeys(table["method"]))
    lines = [f"# Benchmark: {metric} per slide (mean ± sd over seeds)", "",
             "| slide | spots | genes | " + " | ".join(methods) + " | seconds (" + methods[0] + ") |",
             "|---|---|---|" + "---|" * len(methods) + "---|"]
    for sample, rows in table.groupby("sample", sort=True):
        cells = [_mean_sd(rows.loc[rows["method"] == m, metric]) if metric in rows else "n/a" for m in methods]
        secs = rows.loc[rows["method"] == methods[0], "seconds"].mean()
        lines.append(f"| {sample} | {int(rows['spots'].iloc[0])} | {int(rows['genes'].iloc[0])} | "
                     + " | ".join(cells) + f" | {secs:.1f} |")
    if metric in table:
        means = table.groupby(["method", "sample"])[metric].mean()
        med = [means.loc[m].median() if m in means.index.get_level_values(0) else np.nan for m in methods]
        lines.append("| **median over slides** | | | " + " | ".join(f"{v:.3f}" for v in med) + " | |")
    lines += ["", f"Seeds per run: {table['seed'].nunique()}. Full numbers: benchmark.tsv.", ""]
    return "\n".join(lines)

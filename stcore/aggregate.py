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


def format_mean_sd(mean: float, sd: float = float("nan"), n: int = 1) -> str:
    """'0.512 ± 0.021 (n=5)'; one value: '0.512 (n=1)'; no value: 'n/a'."""
    if not np.isfinite(mean):
        return "n/a"
    if n > 1 and np.isfinite(sd):
        return f"{mean:.3f} ± {sd:.3f} (n={int(n)})"
    return f"{mean:.3f} (n={int(n)})"


def mean_sd(values: pd.Series) -> str:
    """``format_mean_sd`` of the non-missing values."""
    v = values.dropna()
    return format_mean_sd(v.mean(), v.std(ddof=1), len(v)) if len(v) else "n/a"


def summary_markdown(table: pd.DataFrame, methods: list[str] | None = None) -> str:
    """A row per slide: spots, genes, then per method ARI and NMI (mean ± sd over seeds) and
    seconds (mean); last row: the median over slides of the per-slide mean ARI and NMI."""
    methods = methods or list(dict.fromkeys(table["method"]))
    metrics = [m for m in ("ARI", "NMI") if m in table]
    head = ["slide", "spots", "genes"] + [f"{m} {meth}" for m in metrics for meth in methods] + \
        [f"seconds {meth}" for meth in methods]
    lines = ["# Benchmark: domains found vs the annotation (mean ± sd over seeds)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for sample, rows in table.groupby("sample", sort=True):
        by = {meth: rows[rows["method"] == meth] for meth in methods}
        cells = [str(sample), str(int(rows["spots"].iloc[0])), str(int(rows["genes"].iloc[0]))]
        cells += [mean_sd(by[meth][m]) for m in metrics for meth in methods]
        cells += [f"{by[meth]['seconds'].mean():.1f}" for meth in methods]
        lines.append("| " + " | ".join(cells) + " |")
    med = []
    for m in metrics:
        means = table.groupby(["method", "sample"])[m].mean()
        med += [f"{means.loc[meth].median():.3f}" if meth in means.index.get_level_values(0) else "n/a"
                for meth in methods]
    lines.append("| **median over slides** | | | " + " | ".join(med) + " |" + " |" * len(methods))
    lines += ["", f"Seeds per (slide, method): {table.groupby(['sample', 'method'])['seed'].nunique().max()}. "
              "Seconds: qc + hvg + graph + train + cluster. Every number: benchmark.tsv.", ""]
    return "\n".join(lines)

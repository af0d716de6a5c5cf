"""Add the rows of a later run (another working directory) to the committed peers table and
rebuild summary.md with the project's own table code (stcore.table.summary_markdown), without
rerunning the methods already in the table:

    .venv/bin/python docs/compare/peers/add_rows.py <the run's folder>    # '.' for a run from the repository root
    .venv/bin/python docs/compare/peers/add_rows.py --summary-only        # summary.md again from table.tsv

- table.tsv: the committed rows as they are (an empty `cpu_s` cell added), then the run's rows as
  its table.tsv has them, in the committed column order plus `cpu_s`, for methods the table does not
  hold yet: their per-seed rows and their `consensus` rows (a combination's one answer per slide,
  the vote over its members at every seed; a method's seeds combined);
- summary.md is computed from that table, whose numbers have 4 decimals: a few cells of the methods
  already there can differ by 0.001 from a summary computed from the unrounded values;
- the seed stability of the methods already there (their labels are not in this repository) is
  read back from the committed summary.md's table; that of the added methods is computed from the
  run's labels.tsv files (stcore.table.seed_agreement);
- the summary's compare settings are studies/compare_peers.yaml's `compare:` block.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO))

from stcore.table import read_published, read_reference_here, seed_agreement, summary_markdown  # noqa: E402

# Columns of a later run's table that the committed one lacks and that are kept (its CPU seconds).
ADDED_COLUMNS = ["cpu_s"]


def committed_seed_agreement(summary: str) -> pd.DataFrame:
    """The '## Seed stability' table of a summary.md: sample, method, seed_ARI (the part after '/')."""
    block = summary.split("## Seed stability", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in block.splitlines() if line.startswith("| ")]
    methods = [c.strip() for c in rows[0].strip("|").split("|")][1:]
    out = []
    for line in rows[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        for method, cell in zip(methods, cells[1:]):
            found = re.search(r"/ ([0-9.]+)$", cell)
            if found:
                out.append({"sample": cells[0], "method": method, "pairs": 3, "seed_ARI": float(found.group(1))})
    return pd.DataFrame(out, columns=["sample", "method", "pairs", "seed_ARI"])


def write_summary(table: pd.DataFrame, agree: pd.DataFrame) -> None:
    """summary.md from ``table`` (the committed table's rows) and the seed stability ``agree``."""
    compare = yaml.safe_load((REPO / "studies" / "compare_peers.yaml").read_text())["compare"]
    ref = (REPO / compare["reference_dir"]).resolve() if compare.get("reference_dir") else None
    text = summary_markdown(
        table.assign(seed=[int(s) if s.isdigit() else s for s in table["seed"]]), compare=compare,
        seeds_agree=agree,
        published=read_published(ref / "published_dlpfc_ari.tsv") if ref else None,
        reference_here=read_reference_here(ref / "graphst_reference_here.md") if ref else None)
    (HERE / "summary.md").write_text(text)


def summary_only() -> None:
    """summary.md again from the committed table.tsv, with the current stcore.table code; every
    method's seed stability read back from the committed summary.md."""
    table = pd.read_csv(HERE / "table.tsv", sep="\t", dtype={"sample": str, "seed": str})
    write_summary(table, committed_seed_agreement((HERE / "summary.md").read_text()))
    print(f"wrote summary.md from {len(table)} rows of table.tsv")


def main(run_dir: str) -> None:
    run = Path(run_dir)
    old_lines = (HERE / "table.tsv").read_text().splitlines()
    old_cols = old_lines[0].split("\t")
    added_cols = [c for c in ADDED_COLUMNS if c not in old_cols]
    new_lines = (run / "results" / "table.tsv").read_text().splitlines()
    new_cols = new_lines[0].split("\t")
    old_methods = {line.split("\t")[old_cols.index("method")] for line in old_lines[1:]}
    rows = []
    for line in new_lines[1:]:       # the run's text as stcore wrote it, its columns in the committed order
        cells = dict(zip(new_cols, line.split("\t")))
        if cells["method"] not in old_methods:
            rows.append("\t".join(cells.get(c, "") for c in old_cols + added_cols))
    if not rows:
        raise SystemExit(f"{run}/results/table.tsv has no rows of a method the table does not hold")
    text = "\n".join(["\t".join(old_cols + added_cols)] + [line + "\t" * len(added_cols) for line in old_lines[1:]]
                     + rows) + "\n"
    (HERE / "table.tsv").write_text(text)
    table = pd.read_csv(HERE / "table.tsv", sep="\t", dtype={"sample": str, "seed": str})
    new = table[~table["method"].isin(old_methods)]
    runs = [{"sample": p.parts[-4], "method": p.parts[-3], "seed": p.parts[-2].removeprefix("seed"), "labels": str(p)}
            for p in sorted((run / "results").glob("*/*/seed*/labels.tsv")) if p.parts[-3] in set(new["method"])]
    summary_before = (HERE / "summary.md").read_text()
    write_summary(table, pd.concat([committed_seed_agreement(summary_before), seed_agreement(runs)],
                                   ignore_index=True))
    print(f"added {len(new)} rows ({', '.join(dict.fromkeys(new['method']))}); wrote table.tsv and summary.md")


if __name__ == "__main__":
    if sys.argv[1:] == ["--summary-only"]:
        summary_only()
    else:
        main(sys.argv[1])

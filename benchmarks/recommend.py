"""The rule of docs/compare/DEFAULTS.md, "The recommended answer", applied to a finished run.

Reads the run's ``results/table.tsv`` (studies/compare_best.yaml) and the committed peers table
(docs/compare/peers/table.tsv, for the best single method of each slide), and writes, per
candidate: the per-slide mean ± sd of ARI over seeds, the gap to that slide's best single method,
the score (median over the domain slides), the median CPU seconds, and the choice the rule makes.

    .venv/bin/python benchmarks/recommend.py --table <run>/results/table.tsv \\
        --peers docs/compare/peers/table.tsv --out docs/compare/best/recommend.md
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

DOMAIN_SLIDES = ["151673", "151674", "151510", "starmap_BZ5", "osmfish"]   # MERFISH: cell classes, not counted
GAP_LIMIT = -0.05        # rule 5: every slide within 0.05 of its best single method
TIE = 0.01               # rule 5: scores this close are decided by CPU seconds


def per_slide(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd of ARI, mean CPU seconds, seeds: per (method, sample), seed runs only."""
    runs = table[table["seed"].astype(str) != "consensus"]
    grouped = runs.groupby(["method", "sample"])
    return pd.DataFrame({"mean": grouped["ARI"].mean(), "sd": grouped["ARI"].std(ddof=1), "n": grouped["ARI"].size(),
                         "cpu_s": grouped["cpu_s"].mean() if "cpu_s" in runs else float("nan")})


def best_single(stats: list[pd.DataFrame], ensembles: set[str]) -> pd.Series:
    """Per slide, the highest mean ARI of any single-method row (not a combination)."""
    both = pd.concat([s.reset_index() for s in stats])
    both = both[~both["method"].isin(ensembles)]
    return both.groupby("sample")["mean"].max()


def apply_rule(table: pd.DataFrame, peers: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    table = table.astype({"sample": str})
    peers = peers.astype({"sample": str})
    ensembles = set(table.loc[table["trained_by"].astype(str).str.contains(r"\+"), "method"])
    mine = per_slide(table)
    best = best_single([mine, per_slide(peers)], ensembles)
    rows = []
    for method in dict.fromkeys(table["method"]):
        if not all((method, s) in mine.index for s in DOMAIN_SLIDES):
            continue
        part = mine.loc[method]
        gaps = {s: part.loc[s, "mean"] - best[s] for s in DOMAIN_SLIDES}
        rows.append({"method": method, "score": part.loc[DOMAIN_SLIDES, "mean"].median(),
                     "worst_gap": min(gaps.values()), "cpu_s": part.loc[DOMAIN_SLIDES, "cpu_s"].median(),
                     **{f"{s}": f"{part.loc[s, 'mean']:.3f} ± {part.loc[s, 'sd']:.3f} ({gaps[s]:+.3f})"
                        for s in DOMAIN_SLIDES},
                     "merfish": (f"{part.loc['merfish', 'mean']:.3f} ± {part.loc['merfish', 'sd']:.3f}"
                                 if ("merfish" in part.index) else "-")})
    cand = pd.DataFrame(rows).sort_values("score", ascending=False).reset_index(drop=True)
    ok = cand[cand["worst_gap"] >= GAP_LIMIT]
    pool, missed = (ok, False) if len(ok) else (cand, True)
    top = pool["score"].max()
    close = pool[pool["score"] >= top - TIE]
    choice = close.sort_values("cpu_s").iloc[0] if len(close) > 1 else pool.iloc[0]
    single_scores = cand[~cand["method"].isin(ensembles)]
    lines = [f"Best single method per slide (over this run and `peers/table.tsv`): "
             + ", ".join(f"{s} {best[s]:.3f}" for s in DOMAIN_SLIDES) + ".",
             f"Highest median of a single method in this run: {single_scores['score'].max():.3f} "
             f"({single_scores.iloc[0]['method']}).",
             f"**Chosen: {choice['method']}** (median {choice['score']:.3f}, worst gap {choice['worst_gap']:+.3f}, "
             f"median CPU seconds per slide {choice['cpu_s']:.1f})"
             + ("; no candidate keeps every slide within 0.05 of its best single method" if missed else "") + "."]
    return cand, "\n".join(lines)


def _markdown(frame: pd.DataFrame) -> str:
    cell = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)      # noqa: E731
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", required=True)
    ap.add_argument("--peers", default="docs/compare/peers/table.tsv")
    ap.add_argument("--out")
    args = ap.parse_args()
    cand, verdict = apply_rule(pd.read_csv(args.table, sep="\t"), pd.read_csv(args.peers, sep="\t"))
    cols = ["method", "score", "worst_gap", "cpu_s", *DOMAIN_SLIDES, "merfish"]
    text = ("Mean ARI ± seed sd (gap to the slide's best single method); score: median over the five domain "
            "slides; cpu_s: median over them of the mean CPU seconds of a run (train + cluster; a combination: "
            "its members' together).\n\n" + _markdown(cand[cols]) + "\n\n" + verdict + "\n")
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()

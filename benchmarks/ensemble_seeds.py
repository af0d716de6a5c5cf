"""The rule of docs/compare/DEFAULTS.md, "One answer per slide from the recommended answer's seeds",
measured on a finished run: per slide, the consensus step over a combination's per-seed labelings
(``results/<sample>/<ensemble>/seed<s>/labels.tsv``), scored as the DAG scores a run
(``stcore.evaluate.label_rows``), beside the per-seed rows of the run's table (mean, lowest, highest).
With ``--flat`` also the rule of "One vote over every member's seeds": one vote over every member's labeling at
every seed (``flat_ARI``), against the two votes, and each answer's gap to the slide's best single method with
its seeds combined (the members' ``consensus`` rows: ``best_single``), and the rule of "The one answer from the
most continuous member's seeds": the member with the lowest mean ``PAS`` over its seeds (ties to 3 decimals:
the lower mean ``CHAOS``) and its ``consensus`` row's ARI (``continuous``, ``continuous_ARI``):

    .venv/bin/python benchmarks/ensemble_seeds.py --results <run>/results \\
        --samples studies/compare_samples.tsv --ensemble ensemble --out docs/compare/best/ensemble_seeds.tsv [--flat]
"""
from __future__ import annotations

import pandas as pd

from ensemble_vote import run_args
from recommend import DOMAIN_SLIDES
from stcore.consensus import consensus
from stcore.evaluate import label_rows
from stcore.io import read_h5ad_elems, read_tsv


def main() -> None:
    args = run_args(__doc__, flat=True)

    table = pd.read_csv(args.results / "table.tsv", sep="\t", dtype={"sample": str, "seed": str})
    sheet = pd.read_csv(args.samples, sep="\t", dtype=str, keep_default_na=False).set_index("sample")
    rows = []
    per_seed = table[(table["method"] == args.ensemble) & (table["seed"] != "consensus")]   # not the DAG's own
    for sample, runs in per_seed.groupby("sample", sort=False):
        slide = read_h5ad_elems(args.results / sample / "hvg.h5ad", "obs", "obsm/spatial")
        obs = slide["obs"]
        seeds = sorted(runs["seed"], key=int)
        def labels_of(method, seed):
            return read_tsv(args.results / sample / method / f"seed{seed}" / "labels.tsv",
                            index_col="spot")["domain"].loc[obs.index].to_numpy()

        labelings = [labels_of(args.ensemble, s) for s in seeds]
        truth_key = sheet.loc[sample, "truth"]
        truth = obs[truth_key] if truth_key else None
        info = {"sample": sample, "method": args.ensemble, "seed": "consensus", "consensus_of": ",".join(seeds)}
        row = label_rows(obs, slide["obsm/spatial"], pd.Series(consensus(labelings), index=obs.index), truth, info)[0]
        ari = runs["ARI"].astype(float)
        rows.append({"sample": sample, "consensus_ARI": row["ARI"], "seeds_mean": ari.mean(), "seeds_min": ari.min(),
                     "seeds_max": ari.max(), "gap": row["ARI"] - ari.mean(), "domains_found": row["domains_found"]})
        if args.flat:
            members = runs["trained_by"].iloc[0].split("+")
            flat = consensus([labels_of(m, s) for m in members for s in seeds])
            flat_row = label_rows(obs, slide["obsm/spatial"], pd.Series(flat, index=obs.index), truth, info)[0]
            single = table[(table["sample"] == sample) & table["method"].isin(members) & (table["seed"] == "consensus")]
            best = single.loc[single["ARI"].astype(float).idxmax()]
            rows[-1] |= {"flat_ARI": flat_row["ARI"], "flat_gap": flat_row["ARI"] - row["ARI"],
                         "flat_domains_found": flat_row["domains_found"], "best_single": best["method"],
                         "best_single_ARI": float(best["ARI"]), "consensus_to_best": row["ARI"] - float(best["ARI"]),
                         "flat_to_best": flat_row["ARI"] - float(best["ARI"])}
            mine = table[(table["sample"] == sample) & table["method"].isin(members) & (table["seed"] != "consensus")]
            spread = mine.groupby("method")[["PAS", "CHAOS"]].mean()
            pick = min(members, key=lambda m: (round(float(spread.loc[m, "PAS"]), 3), float(spread.loc[m, "CHAOS"])))
            picked = float(single.loc[single["method"] == pick, "ARI"].iloc[0])
            rows[-1] |= {"continuous": pick, "continuous_ARI": picked, "continuous_to_best": picked - float(best["ARI"]),
                         **{f"PAS_{m}": float(spread.loc[m, "PAS"]) for m in members}}
    out = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, sep="\t", index=False, float_format="%.4f")
    print(out.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    five = out[out["sample"].isin(DOMAIN_SLIDES)]
    worst, median_gap = five["gap"].min(), five["consensus_ARI"].median() - five["seeds_mean"].median()
    adopted = len(five) == len(DOMAIN_SLIDES) and worst >= -0.02 and median_gap >= -0.01
    print(f"worst slide gap {worst:+.3f} (rule: >= -0.02); median {five['consensus_ARI'].median():.3f} against "
          f"{five['seeds_mean'].median():.3f} ({median_gap:+.3f}; rule: >= -0.01): "
          f"{'adopted' if adopted else 'not adopted'}")
    if args.flat:
        flat_median, two_median = five["flat_ARI"].median(), five["consensus_ARI"].median()
        adopted = len(five) == len(DOMAIN_SLIDES) and five["flat_gap"].min() >= -0.02 and flat_median > two_median
        print(f"one vote over every member's seeds: worst slide against the two votes {five['flat_gap'].min():+.3f} "
              f"(rule: >= -0.02); median {flat_median:.3f} against {two_median:.3f} (rule: higher): "
              f"{'adopted' if adopted else 'not adopted'}; worst slide against its best single method's seeds "
              f"combined: two votes {five['consensus_to_best'].min():+.3f}, one vote {five['flat_to_best'].min():+.3f}")
        within = {k: int((five[f"{k}_to_best"] >= -0.05).sum()) for k in ("flat", "continuous")}
        medians = {k: five[f"{k}_ARI"].median() for k in ("flat", "continuous")}
        adopted = within["continuous"] > within["flat"] and medians["continuous"] >= medians["flat"] - 0.01
        print(f"the most continuous member's seeds: within 0.05 of the best single method on {within['continuous']} "
              f"of 5 against the one vote's {within['flat']}; median {medians['continuous']:.3f} against "
              f"{medians['flat']:.3f} (rule: at least -0.01): {'adopted' if adopted else 'not adopted'}")


if __name__ == "__main__":
    main()

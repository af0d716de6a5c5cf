"""The rule of docs/compare/DEFAULTS.md, "The vote's matching across methods", measured on a finished members'
run: per slide, the one vote over every member at every seed (``results/<sample>/<member>/seed<s>/labels.tsv``)
with the one-to-one matching and with the many-to-one ``overlap`` matching, at the annotated number, each
one's gap to the slide's best single method with its seeds combined (the members' ``consensus`` rows); and the
one vote with each matching at the slide's number of ``auto_k_slide.tsv`` (every member at every seed
clustered at it, ``auto_k_pooled.combination_ari``), its gap to the same matching at the annotated number:

    cd benchmarks && ../.venv/bin/python vote_matching.py --results <run>/results \\
        --samples ../studies/compare_samples.tsv --numbers ../docs/compare/auto_k_slide.tsv \\
        --out ../docs/compare/best/vote_matching.tsv
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from auto_k_pooled import combination_ari
from recommend import DOMAIN_SLIDES
from stcore.consensus import consensus
from stcore.evaluate import ari, label_rows
from stcore.io import read_h5ad_elems, read_tsv

MEMBERS = ["graphst", "banksy", "cellcharter"]
SEEDS = ["0", "1", "2"]


def overlap_consensus(labelings: list[np.ndarray]) -> np.ndarray:
    """The candidate: ``stcore.consensus.consensus`` (the medoid labeling as reference, one vote per
    labeling, ties to the reference) with each labeling's domain mapped to the reference domain it shares
    the most spots with (many to one) instead of one-to-one."""
    codes = [pd.factorize(np.asarray(lab))[0] for lab in labelings]
    mean_ari = [np.mean([ari(codes[i], codes[j]) for j in range(len(codes)) if j != i]) for i in range(len(codes))]
    ref = codes[int(np.argmax(mean_ari))]
    votes = np.zeros((len(ref), ref.max() + 1), dtype=np.int32)
    for c in codes:
        cont = np.zeros((c.max() + 1, ref.max() + 1))
        np.add.at(cont, (c, ref), 1)
        np.add.at(votes, (np.arange(len(ref)), cont.argmax(axis=1)[c]), 1)
    best = votes.max(axis=1)
    return np.where(votes[np.arange(len(ref)), ref] == best, ref, votes.argmax(axis=1))


COMBINERS = {"one_to_one": consensus, "overlap": overlap_consensus}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--samples", type=Path, required=True)
    ap.add_argument("--numbers", type=Path, required=True, help="auto_k_slide.tsv: the slide's number (K)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    table = pd.read_csv(a.results / "table.tsv", sep="\t", dtype={"sample": str, "seed": str})
    sheet = pd.read_csv(a.samples, sep="\t", dtype=str, keep_default_na=False).set_index("sample")
    numbers = pd.read_csv(a.numbers, sep="\t", dtype={"sample": str}).set_index("sample")
    rows = []
    for sample in sheet.index:
        slide = read_h5ad_elems(a.results / sample / "hvg.h5ad", "obs", "obsm/spatial")
        obs = slide["obs"]
        truth_key = sheet.loc[sample, "truth"]
        labelings = [read_tsv(a.results / sample / m / f"seed{s}" / "labels.tsv", index_col="spot")["domain"]
                     .loc[obs.index].to_numpy() for m in MEMBERS for s in SEEDS]
        single = table[(table["sample"] == sample) & table["method"].isin(MEMBERS) & (table["seed"] == "consensus")]
        best = single.loc[single["ARI"].astype(float).idxmax()]
        row = {"sample": sample, "annotated": int(sheet.loc[sample, "n_clusters"]), "K": int(numbers.loc[sample, "K"]),
               "best_single": best["method"], "best_single_ARI": float(best["ARI"])}
        for matching in ("one_to_one", "overlap"):
            voted = pd.Series(COMBINERS[matching](labelings), index=obs.index)
            info = {"sample": sample, "method": "ensemble", "seed": "consensus"}
            ari = label_rows(obs, slide["obsm/spatial"], voted, obs[truth_key], info)[0]["ARI"]
            at_k = combination_ari(a.results, sample, MEMBERS, [int(s) for s in SEEDS], row["K"], truth_key, {},
                                   combine=COMBINERS[matching])
            at_given = combination_ari(a.results, sample, MEMBERS, [int(s) for s in SEEDS], row["annotated"],
                                       truth_key, {}, combine=COMBINERS[matching])
            row |= {f"{matching}_ARI": ari, f"{matching}_to_best": ari - float(best["ARI"]),
                    f"{matching}_ARI_K": at_k, f"{matching}_ARI_given_reclustered": at_given,
                    f"{matching}_gap_K": at_k - at_given}
        print(row, flush=True)
        rows.append(row)
    out = pd.DataFrame(rows)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(a.out, sep="\t", index=False, float_format="%.4f")
    five = out[out["sample"].isin(DOMAIN_SLIDES)]
    drop = (five["overlap_ARI"] - five["one_to_one_ARI"]).min()
    med_new, med_old = five["overlap_ARI"].median(), five["one_to_one_ARI"].median()
    cond1 = drop >= -0.02 and med_new >= med_old
    within = {m: int((five[f"{m}_to_best"] >= -0.05).sum()) for m in ("one_to_one", "overlap")}
    within_k = {m: int((five[f"{m}_gap_K"] >= -0.05).sum()) for m in ("one_to_one", "overlap")}
    cond2 = within["overlap"] == 5 or within_k["overlap"] >= 4
    print(f"(1) worst slide against one-to-one {drop:+.3f} (rule: >= -0.02); median {med_new:.3f} against "
          f"{med_old:.3f} (rule: at least): {'holds' if cond1 else 'fails'}")
    print(f"(2) within 0.05 of the best single method's seeds combined on {within['overlap']} of 5 (one-to-one "
          f"{within['one_to_one']}); the slide's number within 0.05 of the annotated on {within_k['overlap']} of 5 "
          f"(one-to-one {within_k['one_to_one']}): {'holds' if cond2 else 'fails'}")
    print("adopted" if cond1 and cond2 else "not adopted")


if __name__ == "__main__":
    main()

"""ARI of graphst's domains against each slide's annotation at several training lengths: what a
notebook user's ``train={'epochs': ...}`` below the default (600) does to the answer.

    .venv/bin/python benchmarks/epochs.py --samples studies/compare_samples.tsv --data ../shared/data \
        --epochs 100 300 600 --seeds 0 1 2 \
        --only 151673 151674 151510 starmap_BZ5 osmfish --out benchmarks/results/epochs.tsv

One ``stcore.tl.domains`` call per slide, training length and seed, with every other setting at its
default (the workflow's); the sheet's ``n_clusters``, ``truth`` and ``values`` columns.
"""
import argparse
from pathlib import Path

import anndata as ad
import pandas as pd

import stcore
from stcore.evaluate import ari


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", required=True, help="a sample sheet (sample, path, n_clusters, truth, values)")
    ap.add_argument("--data", required=True, help="the folder the sheet's paths are relative to")
    ap.add_argument("--epochs", type=int, nargs="+", default=[100, 300, 600])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--only", nargs="*", help="these samples only")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    sheet = pd.read_csv(args.samples, sep="\t", dtype=str)
    rows = []
    for _, s in sheet.iterrows():
        if args.only and s["sample"] not in args.only:
            continue
        for epochs in args.epochs:
            for seed in args.seeds:
                adata = ad.read_h5ad(Path(args.data) / s["path"])
                stcore.tl.domains(adata, n_clusters=int(s["n_clusters"]), seed=seed, values=s.get("values", "counts"),
                                  train={"epochs": epochs}, progress=False)
                known = adata.obs[s["truth"]].notna()
                score = ari(adata.obs.loc[known, s["truth"]].astype(str), adata.obs.loc[known, "domain"].astype(str))
                rows.append({"sample": s["sample"], "epochs": epochs, "seed": seed, "ARI": round(float(score), 3)})
                print("\t".join(str(v) for v in rows[-1].values()), flush=True)
    pd.DataFrame(rows).to_csv(args.out, sep="\t", index=False)


if __name__ == "__main__":
    main()

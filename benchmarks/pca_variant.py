"""ARI cost of the PCA-input variant (train.input_pcs) on one slide, against training on the genes.

    nice -n 10 .venv/bin/python benchmarks/pca_variant.py --work benchmarks/.work/151673 \
        --pcs 0 100 --seeds 41 1 2

Uses the preprocessed slide and graph that benchmarks/run.py left in --work (hvg.h5ad,
graph.npz); for each (input_pcs, seed) runs the train and cluster steps of
benchmarks/steps.py in their own processes (0 = train on the genes) and writes
benchmarks/results/pca_input_ari.tsv: ARI, seconds per epoch, train peak RSS.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import run_json  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--pcs", type=int, nargs="+", default=[0, 100])
    ap.add_argument("--seeds", type=int, nargs="+", default=[41])
    ap.add_argument("--epochs", type=int, default=600)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--truth", default="ground_truth")
    ap.add_argument("--n-clusters", type=int, default=7)
    ap.add_argument("--out", default=str(HERE / "results" / "pca_input_ari.tsv"))
    a = ap.parse_args(argv)
    src = Path(a.work)
    rows = []
    for pcs in a.pcs:
        for seed in a.seeds:
            work = src.parent / f"{src.name}_pcs{pcs}_seed{seed}"
            work.mkdir(parents=True, exist_ok=True)
            for f in ("hvg.h5ad", "graph.npz"):
                shutil.copy(src / f, work / f)
            common = ["--work", str(work), "--epochs", str(a.epochs), "--threads", str(a.threads), "--seed",
                      str(seed), "--truth", a.truth, "--n-clusters", str(a.n_clusters)]
            extra = ["--input-pcs", str(pcs)] if pcs else []
            tr, tr_wall = run_json([sys.executable, str(HERE / "steps.py"), "train", *common, *extra], work / "train.log")
            cl, _ = run_json([sys.executable, str(HERE / "steps.py"), "cluster", *common], work / "cluster.log")
            rows.append({"input": f"{pcs} PCs" if pcs else "genes", "seed": seed, "ARI": cl["ARI"],
                         "ARI_refined": cl["ARI_refined"], "s_per_epoch": tr["s_per_epoch"], "train_wall_s": tr_wall,
                         "train_peak_rss_mb": tr["peak_rss_mb"]})
            print(rows[-1], flush=True)
    import pandas as pd
    df = pd.DataFrame(rows)
    with open(a.out, "w") as fh:
        df.to_csv(fh, sep="\t", index=False, float_format="%.4f")
        means = df.groupby("input")[["ARI", "ARI_refined", "s_per_epoch", "train_peak_rss_mb"]].mean()
        for name, r in means.iterrows():
            fh.write(f"# mean over seeds, {name}: ARI {r.ARI:.4f}, refined {r.ARI_refined:.4f}, "
                     f"s/epoch {r.s_per_epoch:.4f}, train peak RSS {r.train_peak_rss_mb:.0f} MB\n")
    print(means)


if __name__ == "__main__":
    main()

"""Clustering starts: how much of the seed spread is mclust's start, and what S starts do about
it (docs/compare/DEFAULTS.md, "Clustering starts": the rule was written before the main run).

From the comparison's trained runs (results/<slide>/<method>/seed<s>/train.npz), each seed's
features taken as the DAG takes them (``stcore.cluster.cluster_features``: PCA 20 of Â Z W2):

- default run: ``stcore.mclust.mclust_starts`` with the largest S of ``--starts`` at each seed's
  own draws; ``starts: S`` is the consensus of the first S of them (what ``mclust(..., starts=S)``
  returns; S = 1 is the DAG's default labeling).  Rows: sample, seed, starts, ARI.  The summary
  gives each slide's mean and sd of ARI over seeds, the rule's clauses 1-2, and the consensus of
  5 seeds (the DAG's consensus step) between the disjoint seed sets {0-4}, {5-9}, ...; with
  ``--rounds 1 R`` also the consensus voted up to R rounds (``consensus(..., rounds=R)``) on the same
  labels, and the clauses of "Consensus voted to a fixed point" for it.
- ``--diagnose``: every seed clustered from the same ``--draws`` subsets (``subset_rows(n, d)``),
  one start each; per slide, the sd of ARI over the draws of one seed (median over seeds), the sd
  over seeds of the draw-averaged ARI, and the start of highest log-likelihood.
- ``--perturb EPS``: every seed clustered as the DAG does (its own draw, one start), then again
  ``--draws`` times with Gaussian noise of EPS x the features' sd added to its features (the same
  rows agglomerated): per slide, the sd of ARI over the perturbations of one seed (median over
  seeds) against the sd over seeds, and the ARI between perturbed and unperturbed labels.  How
  much of the seed spread a change far below any model difference makes.

    .venv/bin/python benchmarks/cluster_starts.py --config config/compare_clustering.yaml \\
        --seeds 0 1 2 3 4 5 6 7 8 9 --starts 1 5 10 --out docs/compare/cluster_starts.tsv
    .venv/bin/python benchmarks/cluster_starts.py --diagnose --samples 151673 151674 151510 \\
        --out docs/compare/cluster_starts_diagnosis.tsv
    .venv/bin/python benchmarks/cluster_starts.py --perturb 0.001 --draws 5 \\
        --out docs/compare/cluster_perturb.tsv
    .venv/bin/python benchmarks/cluster_starts.py --seeds 0 1 ... 19 --starts 1 --rounds 1 10 \\
        --out docs/compare/consensus_rounds.tsv
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import adjusted_rand_score

from stcore.cluster import ClusterParams, cluster_features
from stcore.consensus import consensus
from stcore.evaluate import domain_metrics
from stcore.mclust import fit_from_subset, mclust_starts, subset_rows
from stcore.methods import MethodResult

from ensemble import replicates, seed_runs_parser   # benchmarks/ensemble.py


def _features(run: Path, n_pcs: int) -> np.ndarray:
    tr = MethodResult.load(run / "train.npz")
    return cluster_features(tr.embedding, tr.decoded, tr.decoder_weight, ClusterParams(n_pcs=n_pcs))


def _starts_job(args):
    run, n_pcs, k, seed, starts = args
    return mclust_starts(_features(run, n_pcs), k, seed=seed, starts=starts)


def _diagnose_job(args):
    run, n_pcs, k, draws = args
    x = _features(run, n_pcs)
    return [(d, fit_from_subset(x, subset_rows(x.shape[0], d), k)) for d in range(draws)]


def _perturb_job(args):
    run, n_pcs, k, seed, eps, draws = args
    x = _features(run, n_pcs)
    rows = subset_rows(x.shape[0], seed)
    scale = eps * x.std()
    out = [fit_from_subset(x, rows, k)[0]]
    for d in range(draws):
        noise = np.random.default_rng([seed, 1000 + d]).standard_normal(x.shape)
        out.append(fit_from_subset(x + scale * noise, rows, k)[0])
    return out


def _sd(v) -> float:
    return float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")


def main(argv=None):
    ap = seed_runs_parser(__doc__)
    ap.add_argument("--starts", nargs="+", type=int, default=[1, 5, 10])
    ap.add_argument("--diagnose", action="store_true")
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--perturb", type=float, metavar="EPS")
    ap.add_argument("--rounds", nargs="+", type=int, default=[1],
                    help="votes of the consensus of 5 seeds (stcore.consensus rounds); the first is the baseline")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    cfg = yaml.safe_load(Path(a.config).read_text())
    sheet = pd.read_csv(cfg["samples"], sep="\t", dtype=str, keep_default_na=False).set_index("sample")
    n_pcs = int((cfg.get("cluster") or {}).get("n_pcs", 20))
    samples = a.samples or [s for s in sheet.index
                            if all((Path(a.results) / s / a.method / f"seed{x}" / "train.npz").exists() for x in a.seeds)]
    rows = []
    with ProcessPoolExecutor(a.jobs) as pool:
        for sample in samples:
            k = int(sheet.loc[sample, "n_clusters"])
            truth = ad.read_h5ad(Path(a.results) / sample / "hvg.h5ad", backed="r").obs[sheet.loc[sample, "truth"]]
            truth = truth.to_numpy()
            run = {s: Path(a.results) / sample / a.method / f"seed{s}" for s in a.seeds}

            def ari(lab):
                return domain_metrics(truth, lab)["ARI"]

            if a.diagnose:
                done = pool.map(_diagnose_job, [(run[s], n_pcs, k, a.draws) for s in a.seeds])
                for s, out in zip(a.seeds, done):
                    rows += [{"sample": sample, "seed": s, "draw": d, "loglik": hood, "ARI": ari(lab)}
                             for d, (lab, hood) in out]
                continue
            if a.perturb:
                done = pool.map(_perturb_job, [(run[s], n_pcs, k, s, a.perturb, a.draws) for s in a.seeds])
                for s, labs in zip(a.seeds, done):
                    rows += [{"sample": sample, "seed": s, "perturbation": d, "ARI": ari(lab),
                              "ARI_to_unperturbed": adjusted_rand_score(labs[0], lab)} for d, lab in enumerate(labs)]
                print(sample, "done", flush=True)
                continue
            done = dict(zip(a.seeds, pool.map(_starts_job, [(run[s], n_pcs, k, s, max(a.starts)) for s in a.seeds])))
            labels = {}
            for s, labs in done.items():
                for n_starts in a.starts:
                    lab = labs[0] if n_starts == 1 or len(labs) == 1 else consensus(labs[:n_starts])
                    labels[s, n_starts] = lab
                    rows.append({"sample": sample, "seed": s, "starts": n_starts, "seeds": str(s), "ARI": ari(lab)})
            for n_starts in a.starts:
                for group in replicates(a.seeds, 5):
                    for rounds in a.rounds:
                        rows.append({"sample": sample, "seed": -1, "starts": n_starts, "rounds": rounds,
                                     "seeds": "-".join(map(str, group)),
                                     "ARI": ari(consensus([labels[s, n_starts] for s in group], rounds=rounds))})
            print(sample, "done", flush=True)
    table = pd.DataFrame(rows)
    if a.perturb:
        for sample, d in table.groupby("sample", sort=False):
            pert = d[d["perturbation"] > 0]
            print(f"{sample}: sd over seeds (unperturbed) {_sd(d[d['perturbation'] == 0]['ARI']):.3f}; sd over "
                  f"perturbations of one seed (median) {pert.groupby('seed')['ARI'].std().median():.3f}; "
                  f"ARI perturbed vs unperturbed labels: mean {pert['ARI_to_unperturbed'].mean():.3f}, "
                  f"min {pert['ARI_to_unperturbed'].min():.3f}")
    elif a.diagnose:
        for sample, d in table.groupby("sample", sort=False):
            per_seed = d.groupby("seed")["ARI"]
            best = d.loc[d.groupby("seed")["loglik"].idxmax()]
            print(f"{sample}: sd over draws of one seed (median) {per_seed.std().median():.3f}; sd over seeds of "
                  f"the draw mean {_sd(per_seed.mean()):.3f}; highest log-likelihood of {a.draws}: mean "
                  f"{best['ARI'].mean():.3f}, sd {_sd(best['ARI']):.3f}")
    else:
        single = table[table["seed"] >= 0]
        summ = (single.groupby(["sample", "starts"], sort=False)["ARI"].agg(mean="mean", sd=_sd).reset_index())
        cons = (table[table["seed"] < 0].groupby(["sample", "starts", "rounds"], sort=False)["ARI"]
                .agg(consensus5_mean="mean", consensus5_sd=_sd).reset_index())
        summ = summ.merge(cons, on=["sample", "starts"], how="left")
        print(summ.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        base = summ[summ["starts"] == 1].set_index("sample")
        for n_starts in a.starts[1:] if a.starts[0] == 1 else []:
            s = summ[summ["starts"] == n_starts].set_index("sample")
            c1 = (s["sd"].median() <= 0.75 * base["sd"].median()) and bool(((s["sd"] - base["sd"]) <= 0.01).all())
            c2 = bool(((s["mean"] - base["mean"]) >= -0.02).all())
            print(f"starts {n_starts}: median sd {s['sd'].median():.4f} vs {base['sd'].median():.4f} (x0.75 = "
                  f"{0.75 * base['sd'].median():.4f}); largest sd rise {(s['sd'] - base['sd']).max():+.4f}; "
                  f"largest mean fall {(s['mean'] - base['mean']).min():+.4f}; clause 1 {'pass' if c1 else 'FAIL'}, "
                  f"clause 2 {'pass' if c2 else 'FAIL'}")
        for rounds in a.rounds[1:]:
            c = summ[(summ["starts"] == a.starts[0]) & (summ["rounds"] == rounds)].set_index("sample")
            b = summ[(summ["starts"] == a.starts[0]) & (summ["rounds"] == a.rounds[0])].set_index("sample")
            sd_c, sd_b = c["consensus5_sd"], b["consensus5_sd"]
            c1 = (sd_c.median() <= 0.75 * sd_b.median()) and bool(((sd_c - sd_b) <= 0.01).all())
            c2 = bool(((c["consensus5_mean"] - b["consensus5_mean"]) >= -0.02).all())
            print(f"consensus rounds {rounds}: median replicate sd {sd_c.median():.4f} vs {sd_b.median():.4f} "
                  f"(x0.75 = {0.75 * sd_b.median():.4f}); largest sd rise {(sd_c - sd_b).max():+.4f}; largest "
                  f"mean fall {(c['consensus5_mean'] - b['consensus5_mean']).min():+.4f}; clause 1 "
                  f"{'pass' if c1 else 'FAIL'}, clause 2 {'pass' if c2 else 'FAIL'}")
        if a.out:
            summ.to_csv(Path(a.out).with_name(Path(a.out).stem + "_summary.tsv"), sep="\t", index=False,
                        float_format="%.4f")
    if a.out:
        table.to_csv(a.out, sep="\t", index=False, float_format="%.4f")


if __name__ == "__main__":
    main()

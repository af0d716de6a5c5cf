"""Scale series: per-epoch seconds and peak RSS of training on simulated slides of growing size.

    nice -n 10 .venv/bin/python benchmarks/scale.py --sizes 5000 20000 50000 100000 200000

For each size: a scatter-layout slide of 3,000 genes (stcore.simulate, drawn in blocks of spots), the
pipeline's HVG transform (all 3,000 genes kept) and spatial graph, written under
benchmarks/.work/scale/<N>/; then, each in its own process, a few epochs of training on
the genes (and, with --input-pcs, on PCA scores) reporting seconds per epoch and peak RSS,
and the floor (benchmarks/floor.py: one X W1 product plus its weight gradient).  Writes
benchmarks/results/scale.tsv, scale.json and scale.png, with the fitted growth exponents
(log-log least squares of seconds and RSS against N).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))


def _simulate(args: tuple) -> "ad.AnnData":
    from stcore.simulate import SimParams, simulate_slide
    n, depth, seed, tissue_seed = args
    extra = {} if depth is None else {"depth": depth}
    return simulate_slide(SimParams(n_spots=n, layout="scatter", n_layers=5, n_regions=1, n_genes=3000, seed=seed,
                                    tissue_seed=tissue_seed, **extra))


def simulate_tiled(n: int, seed: int, depth: float | None, tiles: int) -> "ad.AnnData":
    """The slide of ``n`` spots; with ``tiles`` > 1, ``tiles`` slides of n / tiles spots drawn in parallel
    processes (seeds ``seed * 1000 + i + 1``, one tissue: the same marker and field genes) and laid side by
    side along x.  Each tile has its own bands; the spots' density and depth are those of one slide."""
    import anndata as ad
    import numpy as np
    if tiles <= 1:
        return _simulate((n, depth, seed, None))
    from concurrent.futures import ProcessPoolExecutor
    jobs = [(n // tiles + (i < n % tiles), depth, seed * 1000 + i + 1, seed) for i in range(tiles)]
    with ProcessPoolExecutor(max_workers=min(tiles, os.cpu_count() or 1)) as pool:
        parts = list(pool.map(_simulate, jobs))
    shift = 0.0
    for i, part in enumerate(parts):
        xy = np.asarray(part.obsm["spatial"], dtype=float)
        xy[:, 0] += shift
        shift += 100.0 * np.sqrt(part.n_obs)      # the width of a scattered slide of that many spots
        part.obsm["spatial"] = xy
        part.obs_names = [f"t{i}_{name}" for name in part.obs_names]
    return ad.concat(parts, merge="same")


def prepare(n: int, folder: Path, seed: int, depth: float | None = None, tiles: int = 1) -> dict:
    """Simulate, transform and build the graph for one size (run in a child process)."""
    import numpy as np
    import scipy.sparse as sp

    from stcore.graph import GraphParams, spatial_adjacency
    from stcore.hvg import HVGParams, transform

    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    slide = simulate_tiled(n, seed, depth, tiles)
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    slide.X = transform(slide.X, HVGParams())   # all 3,000 genes are kept: the HVG selection is a no-op
    t_hvg = time.perf_counter() - t0
    slide.write_h5ad(folder / "hvg.h5ad")
    t0 = time.perf_counter()
    adj = spatial_adjacency(np.asarray(slide.obsm["spatial"]), GraphParams())
    t_graph = time.perf_counter() - t0
    sp.save_npz(folder / "graph.npz", adj)
    return {"spots": int(slide.n_obs), "genes": int(slide.n_vars), "nnz": int(slide.X.nnz),
            "simulate_s": t_sim, "transform_s": t_hvg, "graph_s": t_graph, "depth": depth, "tiles": tiles}


def child(cmd: list[str], timeout: float) -> dict:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                          timeout=timeout, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''}"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ") or ln.startswith("{")]
    line = lines[-1]
    return json.loads(line[len("RESULT "):] if line.startswith("RESULT ") else line)


def fit_exponent(ns, ys) -> float:
    import numpy as np
    ns, ys = np.asarray(ns, float), np.asarray(ys, float)
    ok = np.isfinite(ys) & (ys > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(ns[ok]), np.log(ys[ok]), 1)[0])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 50000, 100000, 200000])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--input-pcs", type=int, default=100, help="also time the PCA-input variant (0: skip)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--depth", type=float, default=None,
                    help="mean counts per spot (default: stcore.simulate's, 1,000; 200 is Visium HD-like)")
    ap.add_argument("--tiles", type=int, default=1,
                    help="draw each slide as this many side-by-side tiles in parallel processes (a faster start "
                         "on a many-core machine; 1: one slide, as the committed CPU series)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="train on this device (cuda: the floor, a CPU measure, is skipped)")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--_prepare", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._prepare:
        n, folder = int(a._prepare[0]), Path(a._prepare[1])
        import resource
        info = prepare(n, folder, a.seed, a.depth, a.tiles)
        info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("RESULT " + json.dumps(info), flush=True)
        return
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in a.sizes:
        tag = (f"_depth{a.depth:g}" if a.depth else "") + (f"_tiles{a.tiles}" if a.tiles > 1 else "")
        folder = HERE / ".work" / "scale" / f"{n}{tag}"
        row = {"n_target": n}
        done = folder / "prepare.json"
        if done.is_file():
            prep = json.loads(done.read_text())         # the slide of this size is already written
        else:
            prep = child([sys.executable, __file__, "--_prepare", str(n), str(folder), "--seed", str(a.seed),
                          "--tiles", str(a.tiles)] + ([] if a.depth is None else ["--depth", str(a.depth)]), a.timeout)
            if "error" not in prep:
                done.write_text(json.dumps(prep))
        row |= {"spots": prep.get("spots"), "nnz": prep.get("nnz"), "prepare_peak_rss_mb": prep.get("peak_rss_mb"),
                "simulate_s": prep.get("simulate_s"), "transform_s": prep.get("transform_s"),
                "graph_s": prep.get("graph_s")}
        print(f"{n}: prepared {prep}", flush=True)
        train_cmd = [sys.executable, str(HERE / "steps.py"), "train", "--work", str(folder), "--epochs",
                     str(a.epochs), "--threads", str(a.threads), "--device", a.device]
        tr = child(train_cmd, a.timeout)
        row |= {"s_per_epoch": tr.get("s_per_epoch_steady", tr.get("s_per_epoch")),
                "s_first_epoch": tr.get("s_first_epoch"), "train_peak_rss_mb": tr.get("peak_rss_mb"),
                "train_error": tr.get("error", ""), "device": tr.get("device"), "gpu": tr.get("gpu"),
                "gpu_peak_mb": tr.get("gpu_peak_mb")}
        print(f"{n}: train {tr}", flush=True)
        if a.input_pcs:
            tp = child(train_cmd + ["--input-pcs", str(a.input_pcs)], a.timeout)
            row |= {f"pcs{a.input_pcs}_s_per_epoch": tp.get("s_per_epoch_steady", tp.get("s_per_epoch")),
                    f"pcs{a.input_pcs}_train_step_s": tp.get("step_s"),
                    f"pcs{a.input_pcs}_peak_rss_mb": tp.get("peak_rss_mb")}
            print(f"{n}: train input_pcs={a.input_pcs} {tp}", flush=True)
        if a.device == "cuda":
            rows.append(row)
            write(rows, out, a)
            continue
        fl = child([sys.executable, str(HERE / "floor.py"), "--hvg", str(folder / "hvg.h5ad"), "--epochs",
                    "1", "--threads", str(a.threads)], a.timeout)
        row |= {"floor_s": fl.get("floor_s"), "floor_2d_s": fl.get("floor_2d_s"), "floor_run_epoch_s": fl.get("epoch_s"),
                "epoch_over_floor": fl.get("epoch_over_floor"), "epoch_over_floor_2d": fl.get("epoch_over_floor_2d")}
        print(f"{n}: floor {fl}", flush=True)
        rows.append(row)
        write(rows, out, a)


def write(rows, out: Path, a) -> None:
    import pandas as pd
    df = pd.DataFrame(rows)
    ns = df["spots"].astype(float)
    fits = {}
    for col in [c for c in df.columns if c.endswith("s_per_epoch") or c.endswith("peak_rss_mb") or c == "floor_s"]:
        fits[col] = fit_exponent(ns, pd.to_numeric(df[col], errors="coerce"))
    with open(out / "scale.tsv", "w") as fh:
        df.to_csv(fh, sep="\t", index=False, float_format="%.4f")
        for k, v in fits.items():
            fh.write(f"# growth exponent (log-log slope vs N) of {k}\t{v:.3f}\n")
    (out / "scale.json").write_text(json.dumps({"rows": rows, "growth_exponents": fits, "epochs": a.epochs,
                                                "threads": a.threads, "loadavg": os.getloadavg()}, indent=2))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for col, lab in [("s_per_epoch", "train on 3,000 genes"), (f"pcs{a.input_pcs}_s_per_epoch", f"train on {a.input_pcs} PCs"),
                     ("floor_s", "floor: X W1 + its gradient")]:
        if col in df:
            axes[0].loglog(ns, pd.to_numeric(df[col], errors="coerce"), "o-",
                           label=f"{lab} (slope {fits.get(col, float('nan')):.2f})")
    axes[0].set_xlabel("spots")
    axes[0].set_ylabel("seconds per epoch")
    axes[0].legend(fontsize=8)
    for col, lab in [("train_peak_rss_mb", "train on 3,000 genes"), (f"pcs{a.input_pcs}_peak_rss_mb", f"train on {a.input_pcs} PCs"),
                     ("prepare_peak_rss_mb", "simulate + transform + graph")]:
        if col in df:
            axes[1].loglog(ns, pd.to_numeric(df[col], errors="coerce"), "o-",
                           label=f"{lab} (slope {fits.get(col, float('nan')):.2f})")
    axes[1].axhline(8192, color="grey", ls="--", lw=1, label="8 GB")
    axes[1].set_xlabel("spots")
    axes[1].set_ylabel("peak RSS (MB)")
    axes[1].legend(fontsize=8)
    where = df["gpu"].dropna().iloc[0] if a.device == "cuda" and df["gpu"].notna().any() else f"{a.threads} CPU threads"
    fig.suptitle(f"stcore training, {where}")
    fig.tight_layout()
    fig.savefig(out / "scale.png", dpi=100)


if __name__ == "__main__":
    main()

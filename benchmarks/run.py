"""Our pipeline against the reference GraphST package on one slide, one after the other.

    nice -n 10 .venv/bin/python benchmarks/run.py --slide ../shared/data/DLPFC/151673.h5ad

Our steps (preprocess, graph, train, cluster) each run in their own process
(benchmarks/steps.py) so that each has its own peak RSS; then the reference package runs in
its own environment (benchmarks/reference_graphst.py under benchmarks/.venv-ref).  Same slide,
same epochs, same torch threads, same seed.  Writes benchmarks/results/speed_vs_reference.tsv (one row
per step and tool: wall seconds, the step's own seconds, peak RSS, ARI) and speed_vs_reference.json
(everything measured, with the ratios).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from slide_args import add_slide_args

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent


def run_json(cmd: list[str], log_path: Path, timeout: float | None = None) -> tuple[dict, float]:
    """Run ``cmd``; return the JSON of its 'RESULT ' line and its wall seconds."""
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT, timeout=timeout,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
        log.write(proc.stdout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}); see {log_path}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):]), wall


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_slide_args(ap)
    ap.add_argument("--ref-python", default=str(HERE / ".venv-ref" / "bin" / "python"))
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--name", default="compare")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = HERE / ".work" / (Path(a.slide).stem + ("" if a.name == "compare" else f"-{a.name}"))
    work.mkdir(parents=True, exist_ok=True)
    common = ["--work", str(work), "--truth", a.truth, "--n-clusters", str(a.n_clusters), "--epochs",
              str(a.epochs), "--threads", str(a.threads), "--seed", str(a.seed)]
    ours = {}
    for step in ["preprocess", "graph", "train", "cluster"]:
        extra = ["--slide", a.slide] if step == "preprocess" else []
        res, wall = run_json([sys.executable, str(HERE / "steps.py"), step, *common, *extra],
                             work / f"{step}.log")
        res["wall_s"] = wall
        ours[step] = res
        print(f"ours {step}: {wall:.1f} s wall, {res['peak_rss_mb']:.0f} MB", flush=True)
    rows = []
    for step, r in ours.items():
        rows.append({"tool": "stcore", "step": step, "wall_s": r["wall_s"], "step_s": r["step_s"],
                     "peak_rss_mb": r["peak_rss_mb"], "ARI": r.get("ARI", ""), "ARI_refined": r.get("ARI_refined", "")})
    ours_total = sum(r["wall_s"] for r in ours.values())
    ours_peak = max(r["peak_rss_mb"] for r in ours.values())
    rows.append({"tool": "stcore", "step": "total", "wall_s": ours_total,
                 "step_s": sum(r["step_s"] for r in ours.values()), "peak_rss_mb": ours_peak,
                 "ARI": ours["cluster"].get("ARI", ""), "ARI_refined": ours["cluster"].get("ARI_refined", "")})
    summary = {"slide": a.slide, "epochs": a.epochs, "threads": a.threads, "seed": a.seed,
               "ours": ours, "ours_total_wall_s": ours_total, "ours_peak_rss_mb": ours_peak,
               "ours_s_per_epoch": ours["train"]["s_per_epoch"],
               "machine": {"platform": platform.platform(), "python": platform.python_version(),
                           "cpus": os.cpu_count(), "loadavg_at_start": os.getloadavg()}}
    if not a.skip_reference:
        print("reference GraphST ...", flush=True)
        ref, wall = run_json([a.ref_python, str(HERE / "reference_graphst.py"), "--slide", a.slide, "--truth",
                              a.truth, "--n-clusters", str(a.n_clusters), "--epochs", str(a.epochs),
                              "--threads", str(a.threads), "--seed", str(a.seed)], work / "reference.log")
        ref["wall_s"] = wall
        for step in ["startup", "preprocess", "graph", "train", "cluster"]:
            p = ref["phases"][step]
            rows.append({"tool": "GraphST-1.1.1", "step": step, "wall_s": p["s"], "step_s": p["s"],
                         "peak_rss_mb": p["peak_rss_mb"], "ARI": ref["ARI"] if step == "cluster" else "",
                         "ARI_refined": ref["ARI_refined"] if step == "cluster" else ""})
        rows.append({"tool": "GraphST-1.1.1", "step": "total", "wall_s": wall, "step_s": ref["total_s"],
                     "peak_rss_mb": ref["peak_rss_mb"], "ARI": ref["ARI"], "ARI_refined": ref["ARI_refined"]})
        summary |= {"reference": ref,
                    "ratio_total_wall": wall / ours_total,
                    "ratio_train": ref["phases"]["train"]["s"] / ours["train"]["wall_s"],
                    "ratio_s_per_epoch": ref["s_per_epoch"] / ours["train"]["s_per_epoch"],
                    "ratio_peak_rss": ref["peak_rss_mb"] / ours_peak,
                    "ARI_difference": ours["cluster"].get("ARI", float("nan")) - ref["ARI"]}
    summary["loadavg_at_end"] = os.getloadavg()
    import csv
    with open(out / f"{a.name}.tsv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
        for k in ["ratio_total_wall", "ratio_train", "ratio_s_per_epoch", "ratio_peak_rss", "ARI_difference"]:
            if k in summary:
                fh.write(f"# {k}\t{summary[k]:.4f}\n")
    (out / f"{a.name}.json").write_text(json.dumps(summary, indent=2))
    for k in ["ours_total_wall_s", "ours_peak_rss_mb", "ours_s_per_epoch", "ratio_total_wall", "ratio_train",
              "ratio_s_per_epoch", "ratio_peak_rss", "ARI_difference"]:
        if k in summary:
            print(f"{k}: {summary[k]:.4f}")


if __name__ == "__main__":
    main()

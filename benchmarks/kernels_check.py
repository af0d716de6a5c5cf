"""Do torch's CPU kernel sets give the same training?  The same DAG under each ``ATEN_CPU_CAPABILITY``.

torch picks its own kernels by the CPU (``cpu_kernels`` in the results table: AVX2 or AVX512); they
may add in different orders.  ``ATEN_CPU_CAPABILITY`` (``avx2``, ``avx512``, ``default``) makes torch
use a lower set than the CPU has.  For each value (``auto``: unset) the graphst run of every slide
of the demo and of the labelled slides' sheet is made from an empty folder (``snakemake --cores 2``,
seed 0, the defaults), the values taking turns so that they see the same load.  Written per slide and
kernel set: the recorded kernels, whether every array of ``train.npz`` (embedding, reconstruction,
losses; not its timing and machine fields) has the same bits as under the first value, the ARI
and the training's seconds (``train.npz``'s own):

    .venv/bin/python benchmarks/kernels_check.py --kernels auto avx2 --out benchmarks/results/kernels_check.tsv

``--data`` is the folder holding the labelled slides (default ../shared/data); without it, the demo alone.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
NOT_COMPARED = {"seconds", "machine"}          # train.npz fields that differ run to run by design


def run(folder: Path, kernels: str, config: dict, targets: list[str]) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    env = dict(os.environ)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if kernels != "auto":
        env["ATEN_CPU_CAPABILITY"] = kernels
    with open(folder / "snakemake.log", "w") as log:
        subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(folder),
                        "--configfile", str(folder / "config.yaml"), "--cores", "2", *targets],
                       check=True, env=env, stdout=log, stderr=subprocess.STDOUT)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernels", nargs="+", default=["auto", "avx2"])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=REPO / "benchmarks" / ".work" / "kernels_check")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    demo = yaml.safe_load((REPO / "config.yaml").read_text())
    base = {"seeds": [0], "train": {"device": "cpu"}, "methods": {"graphst": {"model": "graphst"}}}
    runs = {"demo": (dict(base, samples=str(REPO / "samples.tsv"), simulate=demo["simulate"]),
                     [f"results/{s}/graphst/seed0/metrics.tsv" for s in demo["simulate"]])}
    sheet = REPO / "studies" / "compare_samples.tsv"
    if a.data.is_dir():
        slides = pd.read_csv(sheet, sep="\t", dtype=str)["sample"].tolist()
        runs["labelled"] = (dict(base, samples=str(sheet), data_dir=str(a.data.resolve()), simulate={}),
                            [f"results/{s}/graphst/seed0/metrics.tsv" for s in slides])
    rows = []
    for name, (config, targets) in runs.items():
        for kernels in a.kernels:
            run(a.work / name / kernels, kernels, config, targets)
        for target in targets:
            sample = target.split("/")[1]
            first = np.load(a.work / name / a.kernels[0] / Path(target).with_name("train.npz"))
            for kernels in a.kernels:
                folder = a.work / name / kernels / Path(target).parent
                npz = np.load(folder / "train.npz")
                metrics = pd.read_csv(folder / "metrics.tsv", sep="\t").iloc[0]
                same = all(npz[k].tobytes() == first[k].tobytes() and npz[k].shape == first[k].shape
                           for k in first.files if k not in NOT_COMPARED)
                rows.append({"sample": sample, "ATEN_CPU_CAPABILITY": kernels, "cpu_kernels": metrics["cpu_kernels"],
                             f"same_bits_as_{a.kernels[0]}": same, "ARI": round(float(metrics["ARI"]), 4),
                             "train_s": round(float(npz["seconds"]), 2), "cpu_model": metrics["cpu_model"]})
                print(rows[-1], flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(a.out, sep="\t", index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

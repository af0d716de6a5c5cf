"""Each step's peak memory beside the size of the file its job is sized from, for docs/cluster.md's "Peaks and asks".

    .venv/bin/python benchmarks/sizing/collect.py --work benchmarks/.work/sizing --work benchmarks/.work/dag_dlpfc \
        --out benchmarks/results/sizing_peaks.tsv

Reads each job's log (logs/<rule>/<job>.log, which ends on the step's own high-water mark, ``peak memory N MB``) and
the header of the file stcore.plan.resources sizes that job from: qc its slide's file (the sample sheet's path, or
results/simulated/<name>.h5ad), hvg and export the slide's qc.h5ad, graph, train, cluster and evaluate its hvg.h5ad
(train also its graph.npz), simulate the slide it wrote.  One row a job: the run (the work directory's name, which is
its config's under benchmarks/), the step, the sample, the file's spots, genes, stored entries and MiB on disk, the
graph's MiB (train) and the peak in MB.  tests/test_plan.py holds the rules' asks against these peaks.
"""
from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pandas as pd

from stcore.plan.resources import file_mb, slide_nnz, slide_shape

ORDER = ["simulate", "qc", "hvg", "graph", "train", "cluster", "evaluate", "export"]
SIZED_FROM = {"qc": None, "hvg": "qc.h5ad", "export": "qc.h5ad", "graph": "hvg.h5ad", "train": "hvg.h5ad",
              "cluster": "hvg.h5ad", "evaluate": "hvg.h5ad"}


def raw_file(work: Path, sample: str) -> Path:
    """The slide's file as qc reads it: the simulate rule's, else the sample sheet's path under the config's data_dir."""
    simulated = work / "results/simulated" / f"{sample}.h5ad"
    if simulated.exists():
        return simulated
    import yaml

    config = yaml.safe_load((Path("benchmarks") / work.name / "config.yaml").read_text())
    sheet = pd.read_csv(Path("benchmarks") / work.name / "samples.tsv", sep="\t", dtype=str).set_index("sample")
    return work / config.get("data_dir", ".") / sheet.loc[sample, "path"]


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", action="append", required=True, help="a run's --directory (repeat for several)")
    ap.add_argument("--out", default="benchmarks/results/sizing_peaks.tsv")
    ap.add_argument("--note", action="append", default=[], help="a line on how the runs were made (repeat)")
    a = ap.parse_args(argv)
    rows = []
    for work in map(Path, a.work):
        for log in sorted(work.glob("logs/*/*.log")):
            step = log.parent.name
            if step not in ORDER:
                continue
            peak = re.findall(r"peak memory (\d+) MB", log.read_text())
            if not peak:
                continue
            sample = log.stem.split(".")[0]
            if step == "simulate":
                path = work / "results/simulated" / f"{sample}.h5ad"
            elif SIZED_FROM[step] is None:
                path = raw_file(work, sample)
            else:
                path = work / "results" / sample / SIZED_FROM[step]
            spots, genes = slide_shape(str(path))
            graph = work / "results" / sample / "graph.npz"
            rows.append({"run": work.name, "step": step, "sample": sample, "spots": spots, "genes": genes,
                         "entries": slide_nnz(str(path)), "file_mb": round(file_mb(str(path)), 2),
                         "graph_mb": round(file_mb(str(graph)), 2) if step == "train" else "",
                         "peak_mb": int(peak[-1])})
    if not rows:
        raise SystemExit(f"no step log with a peak under {', '.join(a.work)}/logs: run the DAGs first")
    t = pd.DataFrame(rows)
    t["order"] = t["step"].map({r: i for i, r in enumerate(ORDER)})
    t = t.sort_values(["run", "sample", "order"]).drop(columns="order")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    notes = "".join(f" --note {shlex.quote(n)}" for n in a.note)
    head = ("# made by: .venv/bin/python benchmarks/sizing/collect.py " + " ".join(f"--work {w}" for w in a.work)
            + f" --out {a.out}{notes}\n# after each run (2-vCPU AMD EPYC, one at a time): .venv/bin/snakemake -s "
            "Snakefile --directory benchmarks/.work/<run> --configfile benchmarks/<run>/config.yaml --cores 2\n"
            + "".join(f"# {n}\n" for n in a.note))
    out.write_text(head + t.to_csv(sep="\t", index=False))
    print(out.read_text())
    return t


if __name__ == "__main__":
    main()

"""Time and peak memory of reading a Stereo-seq GEM (format stereo, ``stcore.io.read_slide``) made from a real
slide: DLPFC 151673's counts, each at a random DNB of its spot's 50 x 50 bin (x bin: array_col, y bin:
array_row), one line per gene and DNB, as SAW's GEM holds them.  ``--times`` more: the same lines that many
times over (a deeper chip of the same bins, the matrix the same size).  Each read runs in a process of its
own (its peak RSS, ``ru_maxrss``, taken when the read returns: the interpreter and its imports included); at
bin 50 the matrix read is checked against 151673's (times ``--times``).

    python benchmarks/stereo_gem.py --slide ../shared/data/DLPFC/151673.h5ad --work /tmp/gem_bench \\
        --out benchmarks/results/stereo_gem.tsv

The GEMs are written under ``--work`` (not committed; 53 MB and 606 MB gzipped at the defaults).
"""
from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
from pathlib import Path

HEADER = "#FileFormat=GEMv0.1\n#SortedBy=None\n#BinSize=1\n#Omics=Transcriptomics\n#OffsetX=0\n#OffsetY=0\n"


def make_gem(slide: Path, out: Path, times: int, seed: int = 0) -> int:
    """Write the GEM of ``slide`` (its lines ``times`` over) to ``out``; the number of lines."""
    import anndata as ad
    import numpy as np
    import pandas as pd

    a = ad.read_h5ad(slide)
    x = a.X.tocoo()
    rng = np.random.default_rng(seed)
    spot, gene = np.repeat(x.row, x.data.astype(np.int64)), np.repeat(x.col, x.data.astype(np.int64))
    lines = pd.DataFrame({"geneID": a.var["gene_ids"].to_numpy()[gene], "geneName": a.var_names.to_numpy()[gene],
                          "x": a.obs["array_col"].to_numpy()[spot] * 50 + rng.integers(0, 50, len(spot)),
                          "y": a.obs["array_row"].to_numpy()[spot] * 50 + rng.integers(0, 50, len(spot)),
                          "MIDCount": 1, "ExonCount": 1})
    lines = lines.groupby(["geneID", "geneName", "x", "y"], sort=False, as_index=False).sum().sample(frac=1,
                                                                                                     random_state=seed)
    with gzip.open(out, "wt", compresslevel=4) as fh:
        fh.write(HEADER)
        lines.to_csv(fh, sep="\t", index=False)
        for _ in range(times - 1):
            lines.to_csv(fh, sep="\t", index=False, header=False)
    return len(lines) * times


READ = """
import json, resource, sys, time
t = time.perf_counter()
from stcore.io import read_slide
b = read_slide(sys.argv[1], "stereo", bin_size=int(sys.argv[2]))
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024      # the read's, before the check below
same = None
if sys.argv[3]:
    import anndata as ad
    a = ad.read_h5ad(sys.argv[3])
    names = [f"{c}_{r}" for c, r in zip(a.obs["array_col"], a.obs["array_row"])]
    same = bool(b.n_obs == a.n_obs and (b[names, a.var_names].X != a.X * int(sys.argv[4])).nnz == 0)
print(json.dumps({"spots": b.n_obs, "genes": b.n_vars, "nnz": int(b.X.nnz), "seconds": round(seconds, 1),
                  "peak_rss_mb": round(peak),
                  "matrix_equals_slide_x_times": same}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--slide", required=True, type=Path)
    p.add_argument("--work", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--times", type=int, default=10)
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for times, bins in ((1, (50, 1)), (args.times, (50,))):
        gem = args.work / f"{args.slide.stem}x{times}.gem.gz"
        # written by a process of its own: a child's ru_maxrss counts its parent's memory at the fork (Linux keeps
        # it across exec), so this one stays small
        make = (f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); from stereo_gem import "
                f"make_gem; from pathlib import Path; print(make_gem(Path({str(args.slide)!r}), Path({str(gem)!r}), "
                f"{times}))")
        n = int(subprocess.run([sys.executable, "-c", make], capture_output=True, text=True, check=True).stdout)
        for size in bins:
            run = subprocess.run([sys.executable, "-c", READ, str(gem), str(size), str(args.slide) if size == 50 else "",
                                  str(times)], capture_output=True, text=True, check=True)
            row = {"lines": n, "gzip_mb": round(gem.stat().st_size / 2**20), "bin_size": size,
                   **json.loads(run.stdout.strip().splitlines()[-1])}
            print(row, flush=True)
            rows.append(row)
    with open(args.out, "w") as fh:
        fh.write("\t".join(rows[0]) + "\n" + "".join("\t".join(str(v) for v in row.values()) + "\n" for row in rows))


if __name__ == "__main__":
    main()

"""Cost of the check that makes results follow the content of a slide's files
(``stcore.formats.digest_stamp``, run for every slide each time the DAG is built): on a
1,000,000-spot .h5ad, the first check (the file is hashed: sha256 over every byte) and the
checks after it (the file's size, mtime, inode and ctime unchanged: one ``stat`` and the
stamp's JSON read, the file not opened).

The slide is written to a scratch folder (not committed): ``--spots`` spots x ``--genes`` genes
with ``--per-spot`` stored counts each (the default 187 is the stored entries per spot of the
1,000,000-spot Visium HD-like slide of "The whole DAG at 20,000, 200,000 and 1,000,000 spots"),
uncompressed, as the largest file such a slide gives.  The hashing reads the file from the page
cache when it was just written; ``--cold`` times a first read as well, after asking the kernel to
drop the file's pages (posix_fadvise), as after a copy from elsewhere.

    python benchmarks/input_digest.py --work /tmp/digest_bench --out benchmarks/results/input_digest.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path


def make_slide(path: Path, spots: int, genes: int, per_spot: int, seed: int = 0) -> None:
    import anndata as ad
    import numpy as np
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    indptr = np.arange(0, spots * per_spot + 1, per_spot, dtype=np.int64)
    indices = np.sort(rng.integers(0, genes, size=(spots, per_spot), dtype=np.int32), axis=1).ravel()
    data = rng.integers(1, 5, size=spots * per_spot, dtype=np.int16).astype(np.float32)
    x = sp.csr_matrix((data, indices, indptr), shape=(spots, genes))
    adata = ad.AnnData(x)
    adata.obsm["spatial"] = rng.uniform(0, 10_000, size=(spots, 2))
    adata.write_h5ad(path)


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/digest_bench"))
    parser.add_argument("--spots", type=int, default=1_000_000)
    parser.add_argument("--genes", type=int, default=3000)
    parser.add_argument("--per-spot", type=int, default=187)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="also time a hash after dropping the file's cached pages")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from stcore.formats import digest_stamp, input_digest

    args.work.mkdir(parents=True, exist_ok=True)
    slide = args.work / f"slide_{args.spots}.h5ad"
    if not slide.is_file():
        start = time.perf_counter()
        make_slide(slide, args.spots, args.genes, args.per_spot)
        print(f"wrote {slide} in {time.perf_counter() - start:.1f} s")
    size = slide.stat().st_size
    stamp = args.work / "records" / "input.json"

    uncached = []
    for _ in range(args.repeats):
        stamp.unlink(missing_ok=True)
        start = time.perf_counter()
        digest_stamp(str(slide), "h5ad", str(stamp))
        uncached.append(time.perf_counter() - start)
    cached = []
    for _ in range(max(100, args.repeats)):
        start = time.perf_counter()
        digest_stamp(str(slide), "h5ad", str(stamp))
        cached.append(time.perf_counter() - start)
    assert json.loads(stamp.read_text())["input_sha256"] == input_digest(slide)
    result = {
        "spots": args.spots, "genes": args.genes, "stored_per_spot": args.per_spot, "file_bytes": size,
        "uncached_s_median": statistics.median(uncached), "uncached_s_all": uncached,
        "hash_MB_per_s": size / 2**20 / statistics.median(uncached),
        "cached_s_median": statistics.median(cached), "cached_s_max": max(cached),
        "cpu": platform.processor() or platform.machine(),
    }
    if args.cold:
        drop_cache(slide)
        stamp.unlink(missing_ok=True)
        start = time.perf_counter()
        digest_stamp(str(slide), "h5ad", str(stamp))
        result["uncached_cold_s"] = time.perf_counter() - start
    try:
        with open("/proc/cpuinfo") as fh:
            result["cpu"] = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

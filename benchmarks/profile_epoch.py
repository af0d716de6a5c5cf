"""torch.profiler table of a few training epochs on a synthetic slide: which operators, at which
shapes, take an epoch's time.

    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 .venv/bin/python benchmarks/profile_epoch.py --spots 200000

The slide: N scattered spots with the pipeline's kNN graph and N x 100 Gaussian features (the
shape of train.input_pcs: 100), as in page_faults.py.  Prints the median epoch of a short run,
then the profiler's operators sorted by their own CPU time, grouped by input shape.
"""
from __future__ import annotations

import argparse


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spots", type=int, default=200000)
    ap.add_argument("--features", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rows", type=int, default=30, help="operators to list")
    a = ap.parse_args(argv)
    import numpy as np
    from torch.profiler import ProfilerActivity, profile

    import stcore  # noqa: F401  (MKL settings before torch computes)
    from stcore.graph import GraphParams, spatial_adjacency
    from stcore.train import TrainParams, fit_graph_model

    rng = np.random.default_rng(0)
    adj = spatial_adjacency(rng.uniform(0, np.sqrt(a.spots), (a.spots, 2)), GraphParams())
    x = rng.standard_normal((a.spots, a.features)).astype(np.float32)
    params = TrainParams(epochs=a.epochs + 1, threads=2, device="cpu", log_every=0)
    print("median epoch (s):", float(np.median(fit_graph_model(x, adj, params).epoch_seconds[1:])))
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        fit_graph_model(x, adj, TrainParams(epochs=a.epochs, threads=2, device="cpu", log_every=0))
    print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=a.rows,
                                                             max_name_column_width=30, max_shapes_column_width=60))


if __name__ == "__main__":
    main()

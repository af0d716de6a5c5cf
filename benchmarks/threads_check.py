"""Does the loss depend on the number of CPU threads on this machine?  With and without oneMKL's
strict reproducibility mode.

Each mode runs in a fresh process (MKL reads MKL_CBWR once): the forward pass and loss of
tests/test_reproducible.py::test_loss_value_does_not_depend_on_threads on 4,000 spots, with each
thread count in turn.  MKL_CBWR=AUTO is MKL's own default (no strict mode); AUTO,STRICT is what
importing stcore sets.  Prints one JSON line per mode: the loss bits per thread count and whether
they all agree.

    python benchmarks/threads_check.py --threads 1 2 3 4 8
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

_CHILD = r"""
import json, sys
import stcore
import numpy as np, torch
from stcore.graph import gcn_norm, spatial_adjacency, mean_operator
from stcore.model import GraphContrastiveAE, fixed_order_sum, row_permutation, to_sparse_operator
from stcore.provenance import machine, mkl_cnr_mode
rng = np.random.default_rng(0)
n, g = 4000, 100
x = torch.from_numpy(rng.random((n, g), dtype=np.float32))
adj = spatial_adjacency(rng.uniform(0, 100, (n, 2)))
a_hat, r_op = to_sparse_operator(gcn_norm(adj)), to_sparse_operator(mean_operator(adj))
values = {}
for threads in map(int, sys.argv[1:]):
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    model = GraphContrastiveAE(g, 64, generator=gen)
    out = model(x, a_hat, r_op, row_permutation(n, gen))
    parts = model.loss(out, 1.0, g)
    values[threads] = [parts.total.item(), parts.reconstruction.item(), parts.contrastive.item(),
                       fixed_order_sum(out.latent).item()]
print(json.dumps({"mkl_cnr_mode": mkl_cnr_mode(), "values": values,
                  "identical": len({tuple(v) for v in values.values()}) == 1, **machine()}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2, 3])
    a = ap.parse_args(argv)
    for mode in ("AUTO", "AUTO,STRICT"):
        out = subprocess.run([sys.executable, "-c", _CHILD, *map(str, a.threads)], capture_output=True, text=True,
                             env=dict(os.environ, MKL_CBWR=mode), check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps({"MKL_CBWR": mode, **row}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

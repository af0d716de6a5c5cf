"""Same config and seed, same bits: labels, metrics, embeddings and logged losses, run to run
and with 1, 2 or 3 CPU threads; every metrics row records what made it and on which machine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import scipy.sparse as sp
import pytest
import torch

import stcore
from conftest import need_tcmalloc
from slides import REPO, evaluate_inputs, run_library, script, tiny_slide, write, write_visium
from stcore.graph import gcn_norm, spatial_adjacency, mean_operator
from stcore.hvg import HVGParams, run_hvg
from stcore.model import GraphContrastiveAE, fixed_order_sum, row_permutation
from stcore.provenance import PACKAGES, config_digest, input_digest, machine, mkl_cnr_mode, record
from stcore.qc import QCParams, prepare_slide
from stcore.simulate import SimParams, simulate_slide


@pytest.fixture(scope="module")
def slide_path(tmp_path_factory):
    adata = simulate_slide(SimParams(n_spots=300, n_genes=150, markers_per_domain=20, n_layers=3, n_regions=0,
                                     field_genes=20, seed=7))
    return write(adata, tmp_path_factory.mktemp("repro") / "slide.h5ad")


def _same(a, b):
    (ra, la, ma), (rb, lb, mb) = a, b
    assert ra.embedding.tobytes() == rb.embedding.tobytes()
    assert ra.decoded.tobytes() == rb.decoded.tobytes()
    assert ra.decoder_weight.tobytes() == rb.decoder_weight.tobytes()
    pd.testing.assert_frame_equal(ra.losses, rb.losses, check_exact=True)
    assert np.array_equal(la, lb)
    assert ma == mb


def test_same_seed_same_bits_run_to_run(slide_path):
    first = run_library(slide_path, n_clusters=3, epochs=15, seed=3, n_top_genes=100)
    second = run_library(slide_path, n_clusters=3, epochs=15, seed=3, n_top_genes=100)
    _same(first, second)
    other = run_library(slide_path, n_clusters=3, epochs=15, seed=4, n_top_genes=100)
    assert other[0].embedding.tobytes() != first[0].embedding.tobytes()   # the seed matters


def test_one_or_two_threads_same_bits(slide_path):
    try:
        one = run_library(slide_path, n_clusters=3, epochs=15, seed=3, threads=1, n_top_genes=100)
        two = run_library(slide_path, n_clusters=3, epochs=15, seed=3, threads=2, n_top_genes=100)
    finally:
        torch.set_num_threads(2)
    _same(one, two)


_DIGEST = """
import hashlib, sys
sys.path.insert(0, {tests!r})
from slides import run_library
from stcore.provenance import malloc
r, labels, metrics = run_library({path!r}, n_clusters=3, epochs=15, seed=3, n_top_genes=100)
h = hashlib.sha256()
for a in (r.embedding, r.decoded, r.decoder_weight, r.losses.to_numpy(), labels):
    h.update(a.tobytes())
h.update(repr(sorted(metrics.items())).encode())
print(malloc(), h.hexdigest())
"""


def test_the_allocator_changes_no_number(slide_path):
    """The DAG preloads tcmalloc with STCORE_MALLOC=tcmalloc (rules/common.smk): the same run
    under glibc's malloc and under tcmalloc gives the same bits."""
    lib = need_tcmalloc()

    def run(preload):
        env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "STCORE_MALLOC")}
        if preload:
            env["LD_PRELOAD"] = preload
        code = _DIGEST.format(tests=str(REPO / "tests"), path=str(slide_path))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout.split()[-2:]

    glibc, tcmalloc = run(None), run(lib)
    assert (glibc[0], tcmalloc[0]) == ("glibc", "tcmalloc")
    assert tcmalloc[1] == glibc[1]


def test_importing_stcore_turns_on_mkl_strict_reproducibility():
    """The thread-count guarantee rests on oneMKL's strict CNR mode for sgemm (see
    stcore/__init__.py); torch builds on another BLAS are outside the guarantee."""
    if not torch.backends.mkl.is_available():
        pytest.skip("torch here is not built on MKL: the thread-count guarantee covers MKL builds (x86-64 wheels)")
    assert mkl_cnr_mode() == "AUTO,STRICT"


def test_importing_stcore_asks_torch_for_the_kernels_every_x86_cpu_has():
    """torch's AVX2 and AVX-512 kernels add in different orders (benchmarks/kernels_check.py: other
    bits on 6 of 9 slides); importing stcore asks for AVX2 on every x86-64 CPU that has it, so CPUs
    with and without AVX-512 give the same bits, and a value the user set is kept."""
    import platform

    from stcore import _common_x86_kernels

    if _common_x86_kernels() is None:
        pytest.skip(f"no AVX2 and FMA on this CPU ({platform.machine()}): torch keeps its own choice")
    probe = "import stcore, torch; print(torch.backends.cpu.get_cpu_capability())"
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    chosen = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert chosen.stdout.split()[-1] == "AVX2"
    kept = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                          env=dict(env, ATEN_CPU_CAPABILITY="default"))
    assert kept.stdout.split()[-1] == "DEFAULT"

def test_loss_value_does_not_depend_on_threads():
    """Forward pass and loss on 4000 spots with 1, 2 and 3 threads: the same bits.  A plain
    tensor.sum() differs in its last bits between thread counts, so the loss uses
    fixed_order_sum; MKL's sgemm may split the N-long reduction of UᵀU across threads on
    AVX-512 CPUs, which its strict CNR mode (set on importing stcore) rules out."""
    if "STRICT" not in mkl_cnr_mode() and torch.backends.mkl.is_available():
        pytest.fail(f"MKL's CNR mode is {mkl_cnr_mode()}, not strict: MKL was called before stcore was imported")
    rng = np.random.default_rng(0)
    n, g = 4000, 100
    x = torch.from_numpy(rng.random((n, g), dtype=np.float32))
    adj = spatial_adjacency(rng.uniform(0, 100, (n, 2)))
    from stcore.model import to_sparse_operator
    a_hat, r_op = to_sparse_operator(gcn_norm(adj)), to_sparse_operator(mean_operator(adj))
    values = {}
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            gen = torch.Generator().manual_seed(0)
            model = GraphContrastiveAE(g, 64, generator=gen)
            out = model(x, a_hat, r_op, row_permutation(n, gen))
            parts = model.loss(out, 1.0, g)
            values[threads] = (parts.total.item(), parts.reconstruction.item(), parts.contrastive.item(),
                               fixed_order_sum(out.latent).item())
    finally:
        torch.set_num_threads(2)
    assert values[1] == values[2] == values[3]


def test_hvg_and_qc_are_deterministic(slide_path):
    a, ra = prepare_slide(str(slide_path), "h5ad", QCParams(), truth="domain", n_clusters=3)
    b, rb = prepare_slide(str(slide_path), "h5ad", QCParams(), truth="domain", n_clusters=3)
    assert ra == rb
    ha, hb = run_hvg(a, HVGParams(n_top_genes=100)), run_hvg(b, HVGParams(n_top_genes=100))
    assert list(ha.var_names) == list(hb.var_names)
    assert (ha.X != hb.X).nnz == 0
    # The counts layer is the selected genes' raw counts, and the transform left it unchanged.
    raw = a[:, ha.var_names].X
    assert (ha.layers["counts"] != raw).nnz == 0 and (ha.X != raw).nnz > 0


@pytest.mark.parametrize("values", ["counts", "normalized", "log_normalized"])
def test_the_transform_never_writes_into_its_input(values):
    """run_hvg keeps the matrix it hands to transform() as the counts layer, uncopied."""
    from stcore.hvg import transform

    x = sp.random(50, 20, density=0.3, format="csr", dtype=np.float64, random_state=0)
    x.data = np.round(x.data * 20) + 1
    before = (x.data.copy(), x.indices.copy(), x.indptr.copy())
    transform(x, HVGParams(values=values))
    assert all(np.array_equal(u, v) for u, v in zip(before, (x.data, x.indices, x.indptr)))


# --- provenance -----------------------------------------------------------------------------------

def test_config_digest_ignores_key_order_and_sees_values():
    a = {"train": {"epochs": 600, "lr": 0.001}, "seeds": [0]}
    b = {"seeds": [0], "train": {"lr": 0.001, "epochs": 600}}
    assert config_digest(a) == config_digest(b)
    assert config_digest(a) != config_digest({"train": {"epochs": 601, "lr": 0.001}, "seeds": [0]})


def test_input_digest_follows_content(tmp_path):
    p = write(tiny_slide(seed=1), tmp_path / "a.h5ad")
    d1 = input_digest(p)
    assert d1 == input_digest(p) and len(d1) == 64
    write(tiny_slide(seed=2), p)
    assert input_digest(p) != d1
    folder = write_visium(tmp_path / "outs", tiny_slide())
    v1 = input_digest(folder)
    (folder / "spatial" / "tissue_positions.csv").write_text(
        (folder / "spatial" / "tissue_positions.csv").read_text().replace(",1,", ",0,", 1))
    assert input_digest(folder) != v1


def test_record_has_seed_versions_and_hashes():
    row = record(seed=5, config={"a": 1}, input_sha256="ab" * 32)
    assert row["seed"] == 5 and row["input_sha256"] == "ab" * 32
    assert row["stcore_version"] == stcore.__version__ and row["torch_version"] == torch.__version__
    assert {f"{p}_version" for p in PACKAGES} <= set(row)
    assert all(row[f"{p}_version"] not in ("", None) for p in PACKAGES)
    here = machine()
    assert {k: row[k] for k in here} == here and here["cpu_model"] and here["cpu_kernels"]


def test_torch_version_is_read_without_importing_torch():
    """A step that does not train (evaluate) records torch's version string, build label included,
    without paying for torch's import."""
    code = ("import sys; from stcore.provenance import versions; v = versions()['torch']; "
            "assert 'torch' not in sys.modules, 'torch was imported'; import torch; "
            "assert v == torch.__version__, (v, torch.__version__); print(v)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == torch.__version__


def test_evaluate_step_writes_provenance_columns(tmp_path):
    """scripts/evaluate.py puts seed, versions, the training machine, config hash and the
    input's sha256 (carried from qc through hvg.h5ad) into metrics.tsv."""
    trained_on = {"cpu_model": "Some CPU", "cpu_kernels": "AVX512", "blas": "MKL 2024.2", "mkl_cnr": "AUTO,STRICT"}
    _, hvg, labels, npz = evaluate_inputs(tiny_slide(), tmp_path, "domain", machine=trained_on)
    src = tmp_path / "slide.h5ad"
    config = {"seeds": [2], "train": {"epochs": 5}}
    sm = SimpleNamespace(
        input=SimpleNamespace(labels=str(labels), h5ad=str(hvg), npz=str(npz)),
        output=SimpleNamespace(metrics=str(tmp_path / "metrics.tsv"), png=str(tmp_path / "domains.png")),
        params=SimpleNamespace(truth="domain", settings=config,
                               run={"sample": "s1", "method": "graphst", "seed": 2, "trained_by": "graphst"}))
    script("evaluate").main(sm)
    row = pd.read_csv(tmp_path / "metrics.tsv", sep="\t").iloc[0]
    assert row["seed"] == 2 and row["sample"] == "s1" and row["trained_by"] == "graphst"
    assert row["input_sha256"] == input_digest(src)
    assert row["config_sha256"] == config_digest(json.loads(json.dumps(config)))
    assert str(row["stcore_version"]) == stcore.__version__ and row["torch_version"] == torch.__version__
    assert {"scanpy_version", "snakemake_version", "ARI"} <= set(row.index)
    assert np.isnan(row["recon_r"])                                      # no decoder
    assert {k: row[k] for k in trained_on} == trained_on        # the training machine, not this one

"""Small slides, malformed slides and a scratch Snakemake workdir for the fault tests."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def tiny_slide(n_side: int = 8, n_genes: int = 40, *, seed: int = 0, domains: int = 2) -> ad.AnnData:
    """A valid hex-grid slide: integer counts, coordinates, a 'domain' truth column."""
    rng = np.random.default_rng(seed)
    ii, jj = np.meshgrid(np.arange(n_side), np.arange(n_side))
    xy = np.column_stack([(ii + 0.5 * (jj % 2)).ravel(), (jj * np.sqrt(3) / 2).ravel()]) * 100
    n = xy.shape[0]
    dom = np.minimum((xy[:, 1] / (np.ptp(xy[:, 1]) + 1e-9) * domains).astype(int), domains - 1)
    mu = rng.gamma(2.0, 3.0, size=(1, n_genes)) * (1 + 2.0 * (dom[:, None] == (np.arange(n_genes) % domains)))
    counts = rng.poisson(mu).astype(np.float32)
    obs = pd.DataFrame({"domain": pd.Categorical([f"D{d}" for d in dom])},
                       index=[f"spot{i:04d}" for i in range(n)])
    var = pd.DataFrame(index=[f"gene{g:03d}" for g in range(n_genes)])
    adata = ad.AnnData(sp.csr_matrix(counts), obs=obs, var=var)
    adata.obsm["spatial"] = xy
    return adata


# --- changes of a valid slide (each edits the AnnData in place), for the bad-input tests of the
# workflow's checks (test_bad_input.py) and of the notebook API's (test_guards_api.py) ------------

def set_x(fn):
    """``fn`` edits a dense copy of X in place; X is stored sparse again."""
    def change(a):
        x = a.X.toarray()
        fn(x)
        a.X = sp.csr_matrix(x)
    return change


def with_pseudocount(x: np.ndarray) -> None:
    """Counts with 1 added to every value (in place, for :func:`set_x`), after half the tiny slide's
    values are set to 0 (it has 3% zeros; the real slides 31-87%, their most common value)."""
    x[np.random.default_rng(0).random(x.shape) < 0.5] = 0
    x += 1


def by_size_factors(log: str | None = None):
    """A change for :func:`set_x`: each spot's counts divided by a size factor of mean 1 that is not its
    total (scran's deconvolution factors, or the totals of all genes where X holds some), so the spots
    sum to no one total; then log1p (``log`` 'e'), log2(1 + x) ('2': scater's logNormCounts), or none."""
    def change(x: np.ndarray) -> None:
        factors = np.random.default_rng(1).lognormal(0, 0.4, x.shape[0])
        y = x / (factors / factors.mean())[:, None]
        x[:] = {None: y, "e": np.log1p(y), "2": np.log2(1 + y)}[log]
    return change


def set_coordinates(fn):
    """``obsm['spatial']`` becomes ``fn`` of the coordinates (as floats)."""
    def change(a):
        a.obsm["spatial"] = fn(np.asarray(a.obsm["spatial"], dtype=float))
    return change


def no_coordinates(a):
    del a.obsm["spatial"]


def duplicate_spot(a):
    """Spot 5 gets spot 4's id."""
    names = list(a.obs_names)
    names[5] = names[4]
    a.obs_names = names


def write(adata: ad.AnnData, path: Path) -> Path:
    adata.write_h5ad(path)
    return path


def script(name: str):
    """``scripts/<name>.py`` as a module, to call its ``main`` with a stand-in for Snakemake's object."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def evaluate_inputs(slide: ad.AnnData, tmp: Path, truth: str, machine: dict | None = None):
    """The inputs of the evaluate step for ``slide``, made by the workflow's own steps: its qc'd slide
    (returned), ``hvg.h5ad``, ``labels.tsv`` (two domains) and a ``train.npz`` of a zero embedding
    (trained on ``machine``).  Returns (the qc'd slide, hvg path, labels path, npz path)."""
    from stcore.hvg import HVGParams, run_hvg
    from stcore.methods import MethodResult
    from stcore.qc import QCParams, prepare_slide

    adata, _ = prepare_slide(str(write(slide, tmp / "slide.h5ad")), "h5ad", QCParams(), truth=truth, n_clusters=2)
    hvg = tmp / "hvg.h5ad"
    run_hvg(adata, HVGParams(n_top_genes=30)).write_h5ad(hvg)
    labels = tmp / "labels.tsv"
    pd.DataFrame({"spot": adata.obs_names, "domain": np.arange(adata.n_obs) % 2}).to_csv(labels, sep="\t",
                                                                                        index=False)
    npz = tmp / "train.npz"
    MethodResult(embedding=np.zeros((adata.n_obs, 2), np.float32), machine=machine or {}).save(npz)
    return adata, hvg, labels, npz


def write_visium(folder: Path, adata: ad.AnnData, *, positions: str = "tissue_positions.csv",
                 barcodes: list[str] | None = None, header: list[str] | None = None,
                 in_tissue: np.ndarray | None = None) -> Path:
    """A Space Ranger 'outs' folder (stcore.simulate.write_visium), its positions file changed:
    other ``barcodes``, another ``header``, other ``in_tissue`` flags."""
    from stcore.simulate import write_visium as write_outs

    write_outs(adata, folder, positions=positions)
    if barcodes is not None or header is not None or in_tissue is not None:
        path = folder / "spatial" / positions
        has_header = positions == "tissue_positions.csv"
        pos = pd.read_csv(path, header=0 if has_header else None)
        if barcodes is not None:
            pos.iloc[:, 0] = barcodes
        if in_tissue is not None:
            pos.iloc[:, 1] = in_tissue
        if header is not None:
            pos.columns = header
        pos.to_csv(path, index=False, header=has_header)
    return folder


# --- a scratch workdir that runs the repository's Snakefile -----------------------------------

TINY_CONFIG = """\
samples: samples.tsv
seeds: [0]
simulate: {{}}
hvg: {{n_top_genes: 30}}
train: {{epochs: {epochs}, device: cpu, log_every: 1}}
cluster: {{n_init: 1}}
methods:
  graphst: {{model: graphst}}
"""


def workdir(tmp: Path, samples: dict[str, tuple[str, int, str]], *, epochs: int = 3,
            extra_config: str = "") -> Path:
    """``samples``: id -> (path, n_clusters, truth); all h5ad.  ``extra_config``'s top-level keys
    replace TINY_CONFIG's (a key given twice in a config file is refused)."""
    given = set(re.findall(r"^([A-Za-z_]\w*):", extra_config, re.M))
    kept, keep = [], True
    for line in TINY_CONFIG.format(epochs=epochs).splitlines(keepends=True):
        if not line[:1].isspace():
            keep = line.split(":", 1)[0] not in given
        if keep:
            kept.append(line)
    (tmp / "config.yaml").write_text("".join(kept) + extra_config)
    rows = ["sample\tpath\tformat\tn_clusters\ttruth"]
    rows += [f"{s}\t{p}\th5ad\t{k}\t{t}" for s, (p, k, t) in samples.items()]
    (tmp / "samples.tsv").write_text("\n".join(rows) + "\n")
    return tmp


def snakemake(tmp: Path, *args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp), *args]
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, **kw)


def outputs(tmp: Path) -> list[Path]:
    return sorted(p for p in (tmp / "results").rglob("*") if p.is_file())


def leftovers(tmp: Path) -> list[Path]:
    """Temporary files of interrupted atomic writes."""
    return [p for p in (tmp / "results").rglob("*") if ".part" in p.name]


def run_library(path, fmt: str = "h5ad", *, n_clusters: int = 2, truth: str = "domain", epochs: int = 5,
                seed: int = 0, threads: int | None = None, n_top_genes: int = 30, flavor: str = "seurat_v3",
                lr: float = 1e-3, cluster: bool = True):
    """qc -> hvg -> graph -> train -> cluster -> metrics in-process, as the rules run them."""
    from stcore.cluster import ClusterParams, cluster_features, run_cluster
    from stcore.evaluate import domain_metrics
    from stcore.graph import spatial_adjacency
    from stcore.hvg import HVGParams, run_hvg
    from stcore.qc import QCParams, prepare_slide
    from stcore.train import TrainParams, fit_graph_model

    adata, _ = prepare_slide(str(path), fmt, QCParams(), truth=truth, n_clusters=n_clusters,
                             integer_counts=flavor == "seurat_v3")
    slide = run_hvg(adata, HVGParams(n_top_genes=n_top_genes, flavor=flavor))
    adj = spatial_adjacency(slide.obsm["spatial"])
    result = fit_graph_model(slide.X, adj, TrainParams(epochs=epochs, seed=seed, threads=threads, lr=lr,
                                                       device="cpu", log_every=0))
    if not cluster:
        return result, None, None
    params = ClusterParams(seed=seed, n_init=2)
    features = cluster_features(result.embedding, result.decoded, result.decoder_weight, params)
    labels = run_cluster(features, slide.obsm["spatial"], n_clusters, params)
    metrics = domain_metrics(slide.obs[truth].to_numpy(), labels) if truth else {}
    return result, labels, metrics

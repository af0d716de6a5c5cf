import numpy as np
import pytest

from stcore.cluster import ClusterParams, cluster_features, run_cluster
from stcore.evaluate import domain_metrics
from stcore.graph import spatial_adjacency
from stcore.hvg import HVGParams, run_hvg
from stcore.simulate import SimParams, simulate_slide
from stcore.train import TrainParams, fit_expression, fit_graph_model, resolve_device


@pytest.fixture(scope="module")
def slide():
    a = simulate_slide(SimParams(n_spots=400, n_genes=300, markers_per_domain=40, n_layers=3,
                                 n_regions=0, seed=3))
    return run_hvg(a, HVGParams(n_top_genes=200))


def _labels(slide, seed, epochs=40):
    adj = spatial_adjacency(slide.obsm["spatial"])
    res = fit_graph_model(slide.X, adj, TrainParams(epochs=epochs, seed=seed, device="cpu", log_every=0))
    params = ClusterParams(seed=seed, n_init=2)
    feats = cluster_features(res.embedding, res.decoded, res.decoder_weight, params)
    return res, run_cluster(feats, slide.obsm["spatial"], 3, params)


def test_loss_goes_down(slide):
    res, _ = _labels(slide, 0, epochs=60)
    losses = res.losses
    assert len(losses) == 60 and np.isfinite(losses[["total", "reconstruction", "contrastive"]]).all().all()
    assert losses["total"].iloc[-5:].mean() < 0.8 * losses["total"].iloc[:5].mean()
    assert losses["reconstruction"].iloc[-1] < losses["reconstruction"].iloc[0]


def test_same_seed_same_embedding_and_labels(slide):
    a, la = _labels(slide, 7)
    b, lb = _labels(slide, 7)
    c, _ = _labels(slide, 8)
    assert np.array_equal(a.embedding, b.embedding)
    assert np.array_equal(la, lb)
    assert not np.array_equal(a.embedding, c.embedding)


def test_outputs_have_documented_shapes(slide):
    res, labels = _labels(slide, 0, epochs=5)
    n, g = slide.shape
    assert res.embedding.shape == (n, 64) and res.decoded.shape == (n, 64)
    assert res.decoder_weight.shape == (64, g)
    assert labels.shape == (n,) and set(np.unique(labels)) <= {0, 1, 2}


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError):
        resolve_device("tpu")


@pytest.mark.slow
def test_graph_model_beats_expression_baseline_on_a_simulated_slide():
    """The point of the model: on noisy counts with smooth domains, the graph model (600
    epochs, the defaults) finds the domains better than the same clustering of the expression
    alone.  The slide is the demo's sim_layers (config.yaml)."""
    a = simulate_slide(SimParams(n_spots=2000, layout="hex", n_layers=5, n_regions=0, seed=1))
    h = run_hvg(a, HVGParams())
    adj = spatial_adjacency(h.obsm["spatial"])
    res = fit_graph_model(h.X, adj, TrainParams(epochs=600, seed=0, device="cpu", log_every=0))
    params = ClusterParams(seed=0)
    truth = h.obs["domain"].to_numpy()
    graph_ari = domain_metrics(truth, run_cluster(
        cluster_features(res.embedding, res.decoded, res.decoder_weight, params), h.obsm["spatial"], 5,
        params))["ARI"]
    base = fit_expression(h.X, 50, seed=0)
    expr_ari = domain_metrics(truth, run_cluster(cluster_features(base.embedding, None, None, params),
                                                 h.obsm["spatial"], 5, params))["ARI"]
    assert graph_ari > 0.5 and graph_ari > expr_ari + 0.3, (graph_ari, expr_ari)


def test_method_result_round_trip_and_version(tmp_path):
    import json

    import pandas as pd

    from stcore.errors import InputError
    from stcore.methods import RESULT_VERSION, MethodResult

    res = MethodResult(embedding=np.arange(6, dtype=np.float32).reshape(3, 2),
                       decoded=np.ones((3, 2), np.float32), decoder_weight=np.ones((2, 4), np.float32),
                       labels=np.array([0, 1, 1]), seconds=1.5, device="cpu", machine={"cpu_model": "x"})
    path = tmp_path / "train.npz"
    res.save(path)
    back = MethodResult.load(path)
    assert np.array_equal(back.embedding, res.embedding) and np.array_equal(back.labels, res.labels)
    assert back.has_decoder and back.seconds == 1.5 and back.machine == {"cpu_model": "x"}
    with np.load(path) as npz:
        assert int(npz["version"]) == RESULT_VERSION
        arrays = dict(npz)
    arrays["version"] = np.int64(RESULT_VERSION + 1)
    np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(InputError, match="layout version"):
        MethodResult.load(tmp_path / "future.npz")
    assert isinstance(pd.DataFrame(res.losses), pd.DataFrame) and json.dumps(back.machine)
    # The cluster step's features: the output's; none for cluster.algorithm own.
    from stcore.cluster import features_of

    feats = features_of(back, ClusterParams(n_pcs=2))
    assert np.array_equal(feats, cluster_features(back.embedding, back.decoded, back.decoder_weight,
                                                  ClusterParams(n_pcs=2)))
    assert features_of(back, ClusterParams(algorithm="own")) is None


def test_the_trainings_return_the_one_result_type(slide):
    """fit_graph_model and fit_expression return MethodResult, as every method of the registry
    does; stcore.methods.fit gives the same arrays with the machine that fit added."""
    from stcore.methods import MethodResult, fit

    adj = spatial_adjacency(slide.obsm["spatial"])
    trained = fit_graph_model(slide.X, adj, TrainParams(epochs=3, seed=2, device="cpu", log_every=0))
    base = fit_expression(slide.X, 5, seed=2)
    assert type(trained) is MethodResult and type(base) is MethodResult
    assert trained.has_decoder and not base.has_decoder and trained.labels is None
    assert len(trained.losses) == 3 and len(trained.epoch_seconds) == 3 and base.losses.empty
    via = fit("graphst", slide.X, adj, slide.obsm["spatial"], {"epochs": 3, "device": "cpu", "log_every": 0}, 2)
    assert via.machine and not trained.machine
    for name in ("embedding", "decoded", "decoder_weight"):
        assert np.array_equal(getattr(via, name), getattr(trained, name)), name
    assert via.losses.equals(trained.losses)


def test_train_step_reads_only_the_elements_its_method_uses(slide, tmp_path):
    """The train step reads X, the coordinates and (for methods that take them) the counts
    from hvg.h5ad, each equal to what the whole AnnData holds; graphst takes no counts."""
    import scipy.sparse as sp

    from stcore.io import read_h5ad_elems, write_h5ad
    from stcore.methods import reads_counts

    path = tmp_path / "hvg.h5ad"
    write_h5ad(slide, path)
    parts = read_h5ad_elems(path, "X", "obsm/spatial", "layers/counts", "layers/absent")
    assert sorted(parts) == ["X", "layers/counts", "obsm/spatial"]
    assert sp.issparse(parts["X"]) and (parts["X"] != slide.X).nnz == 0
    assert (parts["layers/counts"] != slide.layers["counts"]).nnz == 0
    assert np.array_equal(parts["obsm/spatial"], slide.obsm["spatial"])
    assert not reads_counts("graphst") and not reads_counts("expression")
    assert reads_counts("spagcn")          # the peers preprocess the counts themselves


def test_h5ad_elements_read_with_h5py_equal_anndatas(tmp_path):
    """read_h5ad_elems reads arrays, CSR/CSC matrices, string arrays, categoricals and data
    frames of them with h5py alone: each the same value, type and dtype as anndata's
    read_elem (a named index, an ordered categorical, booleans, NaN, strings, int32 and int64
    sparse indices); another encoding (a nullable integer column) goes through anndata."""
    import anndata as ad
    import h5py
    import pandas as pd
    import scipy.sparse as sp
    from anndata.io import read_elem

    from stcore.io import read_h5ad_elems

    obs = pd.DataFrame({"slide": pd.Categorical(["a", "b", "a"]), "f": [1.5, 2.0, np.nan], "s": ["x", "y", "z"],
                        "b": [True, False, True],
                        "o": pd.Categorical(["lo", "hi", "lo"], categories=["lo", "hi"], ordered=True)},
                       index=pd.Index(["s1", "s2", "s3"], name="spot"))
    x = sp.csr_matrix(np.array([[0, 2, 0], [1, 0, 3], [0, 0, 0]], dtype=np.int32))
    a = ad.AnnData(x, obs=obs, obsm={"spatial": np.arange(6.0).reshape(3, 2)},
                   layers={"csc": sp.csc_matrix(x, dtype=np.float32)})
    a.var["n"] = pd.array([1, None, 3], dtype="Int64")           # not read by h5py alone
    path = tmp_path / "s.h5ad"
    a.write_h5ad(path)
    keys = ["X", "obs", "var", "obsm/spatial", "layers/csc"]
    got = read_h5ad_elems(path, *keys)
    with h5py.File(path) as f:
        want = {k: read_elem(f[k]) for k in keys}
    for k in ("obs", "var"):
        pd.testing.assert_frame_equal(got[k], want[k], check_exact=True)
    assert got["obs"].index.name == "spot" and got["obs"]["o"].cat.ordered
    for k in ("X", "layers/csc"):
        g, w = got[k], want[k]
        assert type(g) is type(w) and g.dtype == w.dtype and g.indices.dtype == w.indices.dtype
        assert (g != w).nnz == 0
    assert got["obsm/spatial"].dtype == want["obsm/spatial"].dtype
    assert np.array_equal(got["obsm/spatial"], want["obsm/spatial"])



def test_graph_cluster_train_evaluate_and_consensus_steps_do_not_import_anndata(slide, tmp_path):
    """The fixed cost of five steps: their scripts import no anndata (about 1 s), and reading
    what they read from a pipeline-written .h5ad (X, obs, coordinates, counts, provenance) needs none."""
    from conftest import run_in_fresh_python

    from stcore.io import write_h5ad

    path = tmp_path / "hvg.h5ad"
    slide = slide.copy()
    slide.uns["provenance"] = {"input_sha256": "0" * 64, "format": "h5ad"}       # as qc records it
    write_h5ad(slide, path)
    run_in_fresh_python(
        "import runpy, sys; from stcore.io import read_h5ad_elems; "
        "[runpy.run_path(f'scripts/{s}.py') for s in ('graph', 'cluster', 'train', 'evaluate', 'consensus')]; "
        f"parts = read_h5ad_elems({str(path)!r}, 'X', 'obs', 'obsm/spatial', 'layers/counts', 'uns/provenance'); "
        "assert len(parts) == 5 and len(parts['obs']) == parts['X'].shape[0]; "
        "assert isinstance(parts['uns/provenance']['input_sha256'], str); "
        "assert 'anndata' not in sys.modules, 'anndata was imported'")


def test_the_expression_is_freed_once_training_holds_its_pca_scores(slide, monkeypatch):
    """A caller that hands its last reference to methods.fit (as the train step does) leaves
    training the only owner, so the sparse expression is freed after the input PCA."""
    import weakref

    import stcore.train as train
    from stcore.methods import fit

    x = slide.X.copy()
    ref = weakref.ref(x)
    alive = []
    real = train._features

    def features(*args, **kwargs):
        alive.append(ref() is not None)
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "_features", features)
    box = [x]
    del x
    res = fit("graphst", box.pop(), spatial_adjacency(slide.obsm["spatial"]), slide.obsm["spatial"],
              {"epochs": 2, "input_pcs": 10, "device": "cpu", "log_every": 0}, 0, counts=None, n_clusters=None)
    assert alive == [False] and res.embedding.shape == (slide.n_obs, 64)


def test_defaults_are_the_schemas():
    """The config schema is where a default is written: the stages' parameter classes
    (TrainParams, ClusterParams, HVGParams, QCParams, GraphParams), the plan's fallback for the
    epochs and every value the demo's config.yaml spells out repeat the schema's default."""
    import dataclasses
    from enum import Enum
    from pathlib import Path

    import yaml

    from stcore.cluster import ClusterParams
    from stcore.graph import GraphParams
    from stcore.plan.resources import train_epochs
    from stcore.qc import QCParams
    from stcore.validate import config_schema

    schema = config_schema()
    specs = schema["$defs"] | {name: schema["properties"][name] for name in ("hvg", "qc", "graph")}
    sections = {name: (cls, specs[name]) for name, cls in (("train", TrainParams), ("cluster", ClusterParams),
                                                          ("hvg", HVGParams), ("qc", QCParams), ("graph", GraphParams))}

    def plain(value):
        value = value.value if isinstance(value, Enum) else value
        return list(value) if isinstance(value, tuple) else value

    compared = 0
    for name, (cls, spec) in sections.items():
        code = {f.name: plain(f.default) for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
        for key, prop in spec["properties"].items():
            if "default" in prop and key in code:
                assert code[key] == prop["default"] and type(code[key]) in (type(prop["default"]), float), \
                    (name, key, code[key], prop["default"])
                compared += 1
    assert compared >= 25
    assert train_epochs({}, False) == schema["$defs"]["train"]["properties"]["epochs"]["default"]
    demo = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    for name in sections:
        for key, value in (demo.get(name) or {}).items():
            assert value == sections[name][1]["properties"][key]["default"], (name, key, value)


def test_features_are_sparse_on_the_cpu_and_dense_on_a_gpu_where_they_fit(monkeypatch, caplog):
    """The CPU keeps few-non-zero features sparse (faster); a GPU holds them dense, so that a rerun
    repeats to the bit (cuSPARSE's product of the sparse features does not), unless the dense
    matrix would take more than a quarter of the GPU's free memory: then sparse, with a warning."""
    import logging

    import scipy.sparse as sp
    import torch

    from stcore.train import GPU_DENSE_FEATURES_MAX_SHARE, features_layout

    x = sp.random(1000, 300, density=0.05, format="csr", random_state=0, dtype=np.float32)
    dense_bytes = 4 * 1000 * 300
    assert features_layout(x, torch.device("cpu")) == "sparse"
    assert features_layout(sp.random(100, 30, density=0.5, format="csr", random_state=0), torch.device("cpu")) == "dense"
    assert features_layout(x.toarray(), torch.device("cpu")) == "dense"
    free = {"bytes": dense_bytes / GPU_DENSE_FEATURES_MAX_SHARE}
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free["bytes"], 10 * free["bytes"]))
    assert features_layout(x, torch.device("cuda:0")) == "dense"           # exactly a quarter: dense
    free["bytes"] = dense_bytes / GPU_DENSE_FEATURES_MAX_SHARE - 4
    with caplog.at_level(logging.WARNING, logger="stcore.train"):
        assert features_layout(x, torch.device("cuda:0")) == "sparse"
    assert "will not give the same bits" in caplog.text and "train.input_pcs" in caplog.text


def test_the_features_made_dense_on_a_gpu_are_the_matrix_itself():
    """On a GPU the sparse features are made dense there (to_torch_csr(...).to(device).to_dense(),
    so the host never holds a dense copy): the same float32 values as scipy's toarray."""
    import scipy.sparse as sp
    import torch

    from stcore.model import to_torch_csr

    x = sp.random(300, 120, density=0.08, format="csr", random_state=1, dtype=np.float64)
    x.data = np.round(x.data * 100) / 7                  # values that float32 rounds
    assert torch.equal(to_torch_csr(x).to_dense(), torch.from_numpy(x.toarray().astype(np.float32)))

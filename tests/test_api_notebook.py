"""The notebook API as a scanpy user meets it: a progress bar over the epochs, the graph that
tl.domains used stored under squidpy's keys and recorded, any torch device string, numpydoc
docstrings whose defaults are the code's and the schema's."""
from __future__ import annotations

import dataclasses
import inspect
import re

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import stcore
from slides import tiny_slide
from stcore.errors import InputError
from stcore.graph import spatial_adjacency
from stcore.registry import METHODS
from stcore.validate import config_schema

FAST = {"train": {"epochs": 2}, "cluster": {"n_init": 1}, "n_top_genes": 30}


def _slide():
    adata = tiny_slide()
    adata.obs["truth"] = adata.obs.pop("domain")
    return adata


# --- progress ------------------------------------------------------------------------------------

def test_progress_bar_over_the_epochs_when_asked(capsys):
    stcore.tl.domains(_slide(), n_clusters=2, train={"epochs": 3}, cluster={"n_init": 1}, n_top_genes=30,
                      progress=True)
    err = capsys.readouterr().err
    assert "graphst seed 0" in err and "3/3" in err and "epoch" in err and "loss=" in err


def test_no_progress_bar_when_off_or_not_interactive(capsys, monkeypatch):
    stcore.tl.domains(_slide(), n_clusters=2, **FAST, progress=False)
    assert "graphst seed 0" not in capsys.readouterr().err
    stcore.tl.domains(_slide(), n_clusters=2, **FAST)          # pytest's stderr is not a terminal
    assert "graphst seed 0" not in capsys.readouterr().err


def test_progress_follows_the_terminal_and_scanpys_verbosity(monkeypatch):
    import sys

    import scanpy as sc

    from stcore.tl import _show_progress

    before = sc.settings.verbosity
    try:
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
        assert _show_progress(None) is True
        sc.settings.verbosity = 0
        assert _show_progress(None) is False
        assert _show_progress(True) is True
        monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
        sc.settings.verbosity = 2
        assert _show_progress(None) is False
    finally:
        sc.settings.verbosity = before


def test_a_bar_per_seed_and_log_lines_kept(caplog, capsys):
    import logging

    with caplog.at_level(logging.INFO, logger="stcore.train"):
        stcore.tl.domains(_slide(), n_clusters=2, seed=[0, 1], train={"epochs": 2, "log_every": 1},
                          cluster={"n_init": 1}, n_top_genes=30, progress=True)
    err = capsys.readouterr().err
    assert "graphst seed 0" in err and "graphst seed 1" in err
    assert sum("epoch 2/2" in r.getMessage() for r in caplog.records) == 2     # the jobs' log lines


# --- the graph ------------------------------------------------------------------------------------

def test_the_graph_it_builds_is_stored_under_squidpys_keys_and_recorded():
    adata = _slide()
    stcore.tl.domains(adata, n_clusters=2, **FAST)
    conn, dist = adata.obsp["spatial_connectivities"], adata.obsp["spatial_distances"]
    want = spatial_adjacency(adata.obsm["spatial"])
    assert sp.issparse(conn) and sp.issparse(dist) and (conn != want).nnz == 0
    xy = adata.obsm["spatial"]
    i, j = conn.nonzero()
    np.testing.assert_allclose(np.asarray(dist[i, j]).ravel(), np.linalg.norm(xy[i] - xy[j], axis=1))
    neigh = adata.uns["spatial_neighbors"]
    assert neigh["connectivities_key"] == "spatial_connectivities"
    assert neigh["distances_key"] == "spatial_distances"
    assert neigh["params"] | {} == {"mode": "knn", "n_neighbors": 3, "radius": -1.0, "coord_type": "generic",
                                    "spatial_key": "spatial"}
    graph = adata.uns["stcore"]["graph"]
    assert graph["built"] is True and graph["connectivities_key"] == "spatial_connectivities"
    assert graph["n_edges"] == conn.nnz and graph["params"]["n_neighbors"] == 3


def test_a_stored_graph_is_used_and_recorded_and_kept():
    adata = _slide()
    stcore.gr.spatial_graph(adata, n_neighbors=6, key_added="six")
    before = adata.obsp["six_connectivities"].copy()
    out = stcore.tl.domains(adata, n_clusters=2, graph_key="six", copy=True, **FAST)
    graph = out.uns["stcore"]["graph"]
    assert graph["built"] is False and graph["connectivities_key"] == "six_connectivities"
    assert graph["params"]["n_neighbors"] == 6 and graph["n_edges"] == before.nnz
    assert (out.obsp["six_connectivities"] != before).nnz == 0
    assert "spatial_connectivities" not in out.obsp and "stcore" not in adata.uns     # copy=True: adata untouched


def _graph_given_to_the_model(adata, caplog):
    """tl.domains(adata) with the warnings in ``caplog``: the graph the model was given."""
    import stcore.methods

    seen = {}
    real = stcore.methods.fit

    def spy(name, x, adj, *args, **kwargs):
        seen["adj"] = adj.copy()
        return real(name, x, adj, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stcore.methods, "fit", spy)
        with caplog.at_level("WARNING"):
            stcore.tl.domains(adata, n_clusters=2, **FAST)
    return seen["adj"]


def test_a_one_way_stored_graph_is_used_both_ways(caplog):
    """squidpy's knn graph (coord_type='generic', n_neighs=3) joins each spot to its 3 nearest one way; the
    model was given it as it was (each spot aggregating only over the spots it chose), not the graph of
    gr.spatial_graph (either among the other's nearest).  It is used both ways, with a warning; obsp is kept."""
    from stcore.graph import GraphParams, knn_indices

    adata = _slide()
    want = spatial_adjacency(adata.obsm["spatial"], GraphParams(n_neighbors=3))
    idx, _ = knn_indices(adata.obsm["spatial"], 3)
    one_way = sp.csr_matrix((np.ones(idx.size, np.float32), (np.repeat(np.arange(adata.n_obs), 3), idx.ravel())),
                            shape=(adata.n_obs, adata.n_obs))
    assert (one_way != one_way.T).nnz
    adata.obsp["spatial_connectivities"] = one_way
    adata.uns["spatial_neighbors"] = {"params": {"coord_type": "generic", "n_neighbors": 3, "transform": None}}
    seen = _graph_given_to_the_model(adata, caplog)
    assert (seen != seen.T).nnz == 0 and (seen != one_way.maximum(one_way.T)).nnz == 0
    assert adata.uns["stcore"]["graph"]["symmetrized"] is True
    assert "is not symmetric" in caplog.text
    assert (adata.obsp["spatial_connectivities"] != one_way).nnz == 0             # the stored graph is kept
    adata2 = _slide()
    stcore.tl.domains(adata2, n_clusters=2, **FAST)                             # the built graph: no such record
    assert "symmetrized" not in adata2.uns["stcore"]["graph"]
    assert (adata2.obsp["spatial_connectivities"] != want).nnz == 0


def test_a_stored_graph_with_weights_and_self_loops_is_used_as_its_edges(caplog):
    """squidpy's spatial_neighbors(transform='spectral', set_diag=True) stores weighted edges and each spot
    joined to itself; the model normalised them again and counted each spot twice.  The edges are used,
    each of weight 1, with a warning; obsp is kept as it was."""
    from stcore.graph import GraphParams

    adata = _slide()
    want = spatial_adjacency(adata.obsm["spatial"], GraphParams(n_neighbors=3))
    weighted = sp.csr_matrix(want * 0.25 + sp.eye(adata.n_obs, dtype=np.float32))
    adata.obsp["spatial_connectivities"] = weighted
    stored = weighted.copy()
    seen = _graph_given_to_the_model(adata, caplog)
    assert (seen != want).nnz == 0
    assert adata.uns["stcore"]["graph"]["unweighted"] is True
    assert f"{want.nnz} edge weights other than 1 and {adata.n_obs} spots joined to themselves" in caplog.text
    assert (adata.obsp["spatial_connectivities"] != stored).nnz == 0             # the stored graph is kept


def test_squidpy_runs_on_the_stored_graph():
    sq = pytest.importorskip("squidpy", reason="squidpy comes with the cellcharter extra")
    adata = _slide()
    stcore.tl.domains(adata, n_clusters=2, **FAST)
    sq.gr.nhood_enrichment(adata, cluster_key="domain", n_perms=10, seed=0, show_progress_bar=False)
    assert adata.uns["domain_nhood_enrichment"]["zscore"].shape == (2, 2)


# --- the record -----------------------------------------------------------------------------------

def test_the_record_is_laid_out_as_the_workflows(tmp_path):
    """uns['stcore'] (the one key, as in the workflow's domains.h5ad): method, seed, every train
    setting the model reads and every cluster setting its algorithm reads (the schema's defaults filled in), how the number of domains was set, the
    column; several seeds as the workflow's consensus records them; it survives a round trip
    through h5ad, and the column it names is replaced by a later call."""
    import anndata as ad

    from stcore.evaluate import mean_pairwise_ari
    from stcore.plan.runs import cluster_settings_read

    adata = _slide()
    stcore.tl.domains(adata, n_clusters=2, **FAST)
    record = adata.uns["stcore"]
    assert "domain" not in adata.uns
    assert record["method"] == "graphst" and record["seed"] == 0 and record["key"] == "domain"
    assert record["n_clusters"] == {"by": "given", "chosen": 2}
    for section, given in (("train", FAST["train"]), ("cluster", FAST["cluster"])):
        props = config_schema()["$defs"][section]["properties"]
        read = (METHODS["graphst"].train_keys if section == "train"      # train: the keys the model reads
                else cluster_settings_read({k: spec.get("default") for k, spec in props.items()} | given, 2))  # cluster: its algorithm's
        shown = {k: v for k, v in record[section].items() if k != "model"}    # train: with the model that read it
        assert set(shown) == {k for k, spec in props.items() if "default" in spec and k in read}, section
        assert shown == {k: spec["default"] for k, spec in props.items() if "default" in spec and k in read} | {
            k: v for k, v in given.items() if k in read}
    assert "n_init" not in record["cluster"]         # given, but mclust reads no n_init: not shown as its setting
    assert record["train"]["model"] == "graphst" and "model" not in record["cluster"]
    assert record["hvg"] == {"n_top_genes": 30, "flavor": "seurat_v3"} and record["values"] == "counts"
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    assert back.uns["stcore"]["key"] == "domain" and int(back.uns["stcore"]["n_clusters"]["chosen"]) == 2
    stcore.tl.domains(back, n_clusters=2, seed=[0, 1], **FAST)      # its own column: replaced
    record = back.uns["stcore"]
    assert record["seed"] == "consensus" and record["consensus_of"] == "0,1" and record["embedding_of_seed"] == 0
    seeds = back.obsm["domain_seeds"]
    assert list(seeds.columns) == ["seed0", "seed1"]
    assert record["seed_ARI"] == mean_pairwise_ari([seeds[c].to_numpy() for c in seeds.columns])


def test_several_methods_are_combined_at_each_seed_as_the_workflows_ensembles():
    """method=[...]: each method trained and clustered as it is alone; at each seed their labelings
    combined by the consensus step (the workflow's ensemble rule), and at several seeds every method
    at every seed in one vote (the slide's one answer); each method's labels and embedding kept,
    their agreement recorded; a later call
    with one method drops them; a repeated or unknown method is refused before any work."""
    from stcore.consensus import consensus
    from stcore.evaluate import mean_pairwise_ari

    both = ("graphst", "expression")
    alone = {}
    for m in both:
        for seed in (0, 1):
            adata = _slide()
            stcore.tl.domains(adata, n_clusters=2, method=m, seed=seed, **FAST)
            alone[m, seed] = adata.obs["domain"].to_numpy()
    adata = _slide()
    stcore.tl.domains(adata, n_clusters=2, method=list(both), **FAST)
    record = adata.uns["stcore"]
    assert record["method"] == record["trained_by"] == "graphst+expression"
    members = adata.obsm["domain_methods"]
    assert list(members.columns) == list(both)
    for m in both:
        assert (members[m].to_numpy() == alone[m, 0]).all() and f"X_{m}" in adata.obsm
    combined = consensus([alone[m, 0] for m in both])
    assert (adata.obs["domain"].to_numpy() == combined.astype(str)).all()
    assert record["methods_ARI"] == mean_pairwise_ari([alone[m, 0] for m in both])

    stcore.tl.domains(adata, n_clusters=2, method=list(both), seed=[0, 1], **FAST)
    per_seed = [consensus([alone[m, seed] for m in both]) for seed in (0, 1)]
    assert (adata.obsm["domain_seeds"]["seed1"].to_numpy() == per_seed[1].astype(str)).all()
    every = [alone[m, seed] for m in both for seed in (0, 1)]
    assert (adata.obs["domain"].to_numpy() == consensus(every).astype(str)).all()
    assert adata.uns["stcore"]["seed"] == "consensus" and adata.uns["stcore"]["domains_found"] == 2
    assert "chosen_by_run" not in adata.uns["stcore"]["n_clusters"]

    # auto: each method at each seed chooses its own number; every choice and the number found are recorded
    stcore.tl.domains(adata, n_clusters="auto", method=list(both), seed=[0, 1], overwrite=True,
                      **(FAST | {"cluster": FAST["cluster"] | {"auto_range": [2, 4]}}))
    record = adata.uns["stcore"]
    assert list(record["n_clusters"]["chosen_by_run"]) == ["graphst seed 0", "expression seed 0",
                                                           "graphst seed 1", "expression seed 1"]
    assert all(2 <= k <= 4 for k in record["n_clusters"]["chosen_by_run"].values())
    assert record["domains_found"] == adata.obs["domain"].nunique()

    stcore.tl.domains(adata, n_clusters=2, **FAST)
    assert "domain_methods" not in adata.obsm and "domain_seeds" not in adata.obsm
    before = adata.obs["domain"].copy()
    with pytest.raises(InputError, match=r"several different methods, got \['graphst', 'graphst'\]\. Fix: name each "):
        stcore.tl.domains(adata, n_clusters=2, method=["graphst", "graphst"], **FAST)
    with pytest.raises(InputError, match=r"several different seeds, got \[0, 0\] .*Fix: give different seeds"):
        stcore.tl.domains(adata, n_clusters=2, seed=[0, 0], **FAST)
    with pytest.raises(InputError, match="no_such_method"):
        stcore.tl.domains(adata, n_clusters=2, method=["graphst", "no_such_method"], **FAST)
    assert (adata.obs["domain"] == before).all()


def test_three_methods_are_voted_spot_by_spot():
    """With three methods the combined domains are the vote of the three labelings, none of them
    alone (two methods tie everywhere, and ties go to the reference labelling)."""
    import importlib.util

    from stcore.consensus import consensus

    if importlib.util.find_spec("banksy") is None:
        pytest.skip("the third method, banksy, needs its extra: pip install -e '.[banksy]'")
    three = ("graphst", "expression", "banksy")
    alone = {}
    for m in three:
        adata = _slide()
        stcore.tl.domains(adata, n_clusters=2, method=m, **FAST)
        alone[m] = adata.obs["domain"].to_numpy()
    adata = _slide()
    stcore.tl.domains(adata, n_clusters=2, method=list(three), **FAST)
    combined = adata.obs["domain"].to_numpy()
    assert (combined == consensus([alone[m] for m in three]).astype(str)).all()
    assert not any((combined == alone[m]).all() for m in three)


def test_every_column_a_call_wrote_is_its_own():
    """Columns written under other keys stay the API's own: each may be written again without
    overwrite; an annotation (a column no call wrote) is still refused."""
    adata = tiny_slide()                                           # obs['domain']: the annotation
    for key in ("first", "second", "first"):
        stcore.tl.domains(adata, n_clusters=2, key_added=key, **FAST)
    assert adata.uns["stcore"]["key"] == "first" and list(adata.uns["stcore"]["columns"]) == ["first", "second"]
    with pytest.raises(InputError, match=r"obs\['domain'\] already holds a column that stcore did not write"):
        stcore.tl.domains(adata, n_clusters=2, **FAST)
    del adata.obs["second"]
    stcore.tl.domains(adata, n_clusters=2, key_added="third", **FAST)
    assert list(adata.uns["stcore"]["columns"]) == ["first", "third"]      # a deleted column is forgotten


def test_a_new_labelling_drops_the_colours_matched_to_the_last():
    """pl.domains keeps each domain's colour matched to the annotation in uns['domain_colors']; a second
    call's domains are other labels: those colours would draw them in the colours of labels they do not
    match (sc.pl.spatial used them)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    adata = _slide()
    stcore.tl.domains(adata, n_clusters=2, **FAST)
    stcore.pl.domains(adata, truth="truth", show=False)
    assert "domain_colors" in adata.uns
    kept = {k: list(v) for k, v in adata.uns.items() if k.endswith("_colors") and k != "domain_colors"}
    stcore.tl.domains(adata, n_clusters=3, seed=1, **FAST)
    assert "domain_colors" not in adata.uns
    assert {k: list(v) for k, v in adata.uns.items() if k.endswith("_colors")} == kept    # others untouched
    stcore.pl.domains(adata, truth="truth", show=False)
    assert len(adata.uns["domain_colors"]) == len(adata.obs["domain"].cat.categories)
    plt.close("all")


# --- device ---------------------------------------------------------------------------------------

def test_any_torch_device_string_is_checked():
    from stcore.train import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(InputError, match=r"cuda:7|no GPU"):
        resolve_device("cuda:7") if n_gpus < 8 else pytest.skip("eight GPUs here")
    with pytest.raises(InputError, match="not a torch device"):
        resolve_device("gpu1")
    if n_gpus:
        assert resolve_device(f"cuda:{n_gpus - 1}") == torch.device(f"cuda:{n_gpus - 1}")


def test_a_missing_device_is_refused_before_any_work(monkeypatch):
    def reached(*args, **kwargs):
        raise AssertionError("the check came after the work had started")

    monkeypatch.setattr("stcore.hvg.run_hvg", reached)
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(InputError, match=f"cuda:{n_gpus}"):
        stcore.tl.domains(_slide(), n_clusters=2, train={"epochs": 2, "device": f"cuda:{n_gpus}"})
    with pytest.raises(InputError, match="device"):
        stcore.tl.domains(_slide(), n_clusters=2, train={"epochs": 2, "device": "CUDA one"})


def test_the_schema_accepts_an_indexed_gpu():
    from stcore.validate import check_settings

    train, _, _ = check_settings(train={"device": "cuda:1"})
    assert train["device"] == "cuda:1"


# --- docstrings -----------------------------------------------------------------------------------

def _documented(fn) -> dict[str, str]:
    """numpydoc's Parameters section: {name: 'type, default X'}."""
    doc = inspect.getdoc(fn)
    section = doc.split("Parameters\n----------\n", 1)[1].split("\nReturns\n-------\n", 1)[0]
    assert "\nReturns\n" in doc.replace("\n-------", "\nReturns\n-------") or "Returns" in doc
    return {m.group(1): m.group(2) for m in re.finditer(r"^(\w+) : (.+)$", section, re.M)}


@pytest.mark.parametrize("fn", [stcore.tl.domains, stcore.gr.spatial_graph, stcore.pl.domains],
                         ids=["tl.domains", "gr.spatial_graph", "pl.domains"])
def test_every_parameter_documented_with_its_default(fn):
    documented = _documented(fn)
    params = inspect.signature(fn).parameters
    assert list(documented) == list(params), "documented in the signature's order, every one"
    assert "\nReturns\n-------\n" in inspect.getdoc(fn)
    for name, p in params.items():
        if p.default is inspect.Parameter.empty:
            assert "default" not in documented[name], name
        else:
            assert documented[name].endswith(f"default {p.default!r}"), (name, documented[name], p.default)


@pytest.mark.parametrize("schema", ["stcore/schemas/config.schema.yaml", "schemas/samples.schema.yaml"])
def test_every_schema_description_is_read_whole(schema):
    """A description with a comma in an unquoted flow mapping ({..., description: a, b}) would be
    read as a key 'b' and a cut description, and help(stcore.tl.domains) would show the cut one:
    every description is read as written, and no key but a default is empty."""
    from pathlib import Path

    import yaml

    def specs(node):
        if isinstance(node, dict):
            if "description" in node:
                yield node
            for value in node.values():
                yield from specs(value)
        elif isinstance(node, list):
            for value in node:
                yield from specs(value)

    root = Path(__file__).resolve().parents[1]
    for spec in specs(yaml.safe_load((root / schema).read_text())):
        assert isinstance(spec["description"], str), spec
        assert [k for k, v in spec.items() if v is None and k != "default"] == [], spec
    doc = inspect.getdoc(stcore.tl.domains)
    assert "kNN of the feature graph (leiden, louvain)" in doc


@pytest.mark.parametrize("section", ["train", "cluster"])
def test_train_and_cluster_keys_documented_with_the_schemas_defaults(section):
    """Every key of the shipped schema's section is in tl.domains's docstring with the schema's
    default, and the code's own default (TrainParams / ClusterParams) is the same."""
    from stcore.cluster import ClusterParams
    from stcore.train import TrainParams

    doc = inspect.getdoc(stcore.tl.domains)
    block = doc.split(f"\n{section} : dict, default None\n", 1)[1].split("\n\n", 2)[1]
    listed = dict(re.findall(r"^\s*- ``(\w+)`` \((?:default ``(.*?)``|no default)\)", block, re.M))
    schema = config_schema()["$defs"][section]["properties"]
    assert list(listed) == list(schema)
    code = {f.name: f.default for f in dataclasses.fields(TrainParams if section == "train" else ClusterParams)
            if f.default is not dataclasses.MISSING}
    for key, spec in schema.items():
        if "default" not in spec:
            continue
        assert listed[key] == repr(spec["default"]), key
        if key in code:
            default = code[key]
            default = list(default) if isinstance(default, tuple) else getattr(default, "value", default)
            assert default == spec["default"], (key, default, spec["default"])


def test_the_notebook_apis_own_arguments_default_to_the_schemas_settings():
    """tl.domains' n_top_genes / hvg_flavor and gr.spatial_graph's mode / n_neighbors / radius are the
    config's hvg and graph settings, written again as Python defaults; the notebook API promises the
    workflow's labels on the same settings, so each default must be the schema's (a changed schema
    default would otherwise leave the notebook on the old one)."""
    schema = config_schema()["properties"]
    pairs = {(stcore.tl.domains, "n_top_genes"): ("hvg", "n_top_genes"),
             (stcore.tl.domains, "hvg_flavor"): ("hvg", "flavor"),
             (stcore.gr.spatial_graph, "mode"): ("graph", "mode"),
             (stcore.gr.spatial_graph, "n_neighbors"): ("graph", "n_neighbors"),
             (stcore.gr.spatial_graph, "radius"): ("graph", "radius")}
    for (fn, arg), (section, key) in pairs.items():
        default = inspect.signature(fn).parameters[arg].default
        assert default == schema[section]["properties"][key]["default"], \
            (f"{fn.__module__}.{fn.__name__}({arg}={default!r}): the config's {section}.{key} defaults to "
             f"{schema[section]['properties'][key]['default']!r}")
    # the docstring's words for cluster.auto_range's default
    low, high = config_schema()["$defs"]["cluster"]["properties"]["auto_range"]["default"]
    assert f"``cluster['auto_range']`` ({low} to {high})" in " ".join(inspect.getdoc(stcore.tl.domains).split())


def test_pl_domains_draws_the_positions_tl_domains_read():
    """tl.domains(spatial_key='coords'): pl.domains draws obsm['coords'] as the tissue map (it looked for
    obsm['spatial'] and raised a KeyError that did not name the positions)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    adata = _slide()
    adata.obsm["coords"] = adata.obsm.pop("spatial")
    stcore.tl.domains(adata, n_clusters=2, spatial_key="coords", **FAST)
    assert adata.uns["stcore"]["graph"]["spatial_key"] == "coords"
    axes = stcore.pl.domains(adata, truth="truth", show=False)
    assert len(axes) == 2
    for ax in axes:                                     # a tissue map: y down, equal axes, no 'on coords'
        assert ax.yaxis_inverted() and ax.get_aspect() == 1.0 and "on coords" not in ax.get_title()
    with pytest.raises(KeyError, match=r"obsm\['spatial'\] is not in adata.obsm .*basis='coords'"):
        stcore.pl.domains(adata, basis="spatial", show=False)
    plt.close("all")


def test_pl_domains_draws_the_two_columns_tl_domains_read():
    """obsm['spatial'] of three columns (z, x, y) and tl.domains(spatial_dims=('x', 'y')): pl.domains drew
    its first two columns, z and x, every spot on one line (x range 0); it draws x and y, the columns the
    domains were found on, by name or by position."""
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    for dims, columns in ((("x", "y"), ["z", "x", "y"]), ((1, 2), None)):
        adata = _slide()
        xy = adata.obsm["spatial"]
        frame = np.column_stack([np.zeros(adata.n_obs), xy])
        adata.obsm["spatial"] = pd.DataFrame(frame, index=adata.obs_names, columns=columns) if columns else frame
        stcore.tl.domains(adata, n_clusters=2, spatial_dims=dims, **FAST)
        fig = stcore.pl.domains(adata, truth="truth", show=False, return_fig=True)
        drawn = np.asarray(fig.axes[0].collections[0].get_offsets())
        assert np.allclose(np.ptp(drawn, axis=0), np.ptp(xy, axis=0)), (dims, np.ptp(drawn, axis=0))


def test_pl_domains_draws_the_two_columns_tl_domains_read_over_a_squidpy_graph(tmp_path):
    """The same with squidpy's graph stored beforehand (its params name no columns): tl.domains read x
    and y, but pl.domains took the columns from the graph's params and drew z and x, every spot on one
    line; the call's spatial_dims are recorded (uns['stcore']['graph']['spatial_dims']) and drawn, also
    after the object is written and read back."""
    import anndata as ad
    import matplotlib
    import pandas as pd

    sq = pytest.importorskip("squidpy", reason="squidpy's graph: the cellcharter extra")
    matplotlib.use("Agg")
    adata = _slide()
    xy = np.asarray(adata.obsm["spatial"], dtype=float)
    adata.obsm["spatial"] = pd.DataFrame({"z": np.zeros(adata.n_obs), "x": xy[:, 0], "y": xy[:, 1]},
                                         index=adata.obs_names)
    sq.gr.spatial_neighbors(adata, coord_type="generic", n_neighs=6)
    stcore.tl.domains(adata, n_clusters=2, spatial_dims=("x", "y"), **FAST)
    assert adata.uns["stcore"]["graph"]["spatial_dims"] == ["x", "y"]
    adata.write_h5ad(tmp_path / "a.h5ad")
    for obj in (adata, ad.read_h5ad(tmp_path / "a.h5ad")):
        fig = stcore.pl.domains(obj, truth="truth", show=False, return_fig=True)
        drawn = np.asarray(fig.axes[0].collections[0].get_offsets())
        assert np.allclose(np.ptp(drawn, axis=0), np.ptp(xy, axis=0)), np.ptp(drawn, axis=0)


def test_coordinates_in_another_order_than_the_spots_are_warned_of(caplog):
    """Positions from a table in another order than the spots, stored with .to_numpy() (not reindexed
    to obs_names): each spot at another spot's place, so the graph joins spots at random and the
    domains follow no structure of the tissue (on STARmap BZ5, ARI 0.222 against -0.004; they were
    taken without a word).  Warned of by tl.domains, by the largest Moran's I of the expression's
    first principal components over the graph; the slide in its own order says nothing."""
    import logging

    import pandas as pd

    caplog.set_level(logging.WARNING, logger="stcore")
    slide = tiny_slide(n_side=16)                           # 256 spots; fewer are not judged
    slide.obs["truth"] = slide.obs.pop("domain")
    stcore.tl.domains(slide, n_clusters=2, **FAST)
    assert not [r for r in caplog.records if "spatial pattern" in r.getMessage()]
    table = pd.DataFrame(slide.obsm["spatial"], index=slide.obs_names, columns=["x", "y"]).sample(frac=1, random_state=0)
    moved = slide.copy()
    del moved.obsp["spatial_connectivities"]
    moved.obsm["spatial"] = table[["x", "y"]].to_numpy()
    stcore.tl.domains(moved, n_clusters=2, **FAST)
    said = [r.getMessage() for r in caplog.records if "spatial pattern" in r.getMessage()]
    assert len(said) == 1 and re.match(
        r"the expression shows no spatial pattern over obsm\['spatial'\]: the largest Moran's I of its first 5 principal "
        r"components over the spatial graph is -?0\.0\d\d .*the coordinates may be in another order than the spots "
        r".*Fix: store the coordinates in the spots' order, e\.g\. adata\.obsm\['spatial'\] = "
        r"positions\.loc\[adata\.obs_names, \['x', 'y'\]\]\.to_numpy\(float\)$", said[0]), said
    caplog.clear()
    moved.obsm["spatial"] = table.loc[moved.obs_names, ["x", "y"]].to_numpy(float)     # the fix, followed
    del moved.obsp["spatial_connectivities"]
    stcore.tl.domains(moved, n_clusters=2, **FAST)
    assert not [r for r in caplog.records if "spatial pattern" in r.getMessage()]


def test_pl_domains_draws_the_column_tl_domains_wrote_not_the_annotation_under_domain():
    """A simulated slide keeps its truth in obs['domain']; tl.domains refuses to write over it and names
    key_added, and the domains go to obs['stcore_domain'].  pl.domains(adata, truth='domain') then drew
    obs['domain'], the annotation, as the found domains and scored it against itself (ARI 1.000, NMI
    1.000); pl.domains(adata) drew the annotation as found domains.  Its key now defaults to the column
    tl.domains wrote, and a column given both as key and as truth is refused."""
    import matplotlib

    matplotlib.use("Agg")
    adata = tiny_slide()
    with pytest.raises(InputError, match="key_added='stcore_domain'"):
        stcore.tl.domains(adata, n_clusters=2, **FAST)
    stcore.tl.domains(adata, n_clusters=2, key_added="stcore_domain", **FAST)
    fig = stcore.pl.domains(adata, truth="domain", show=False, return_fig=True)
    assert list(fig.stcore_scores) == ["stcore_domain"]
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == ["annotation: domain", "stcore_domain: graphst, seed 0"]
    fig = stcore.pl.domains(adata, show=False, return_fig=True)
    assert [ax.get_title() for ax in fig.axes] == ["stcore_domain: graphst, seed 0"]
    with pytest.raises(ValueError, match=r"obs\['domain'\] is given both as found domains \(key\) and as the "
                                         r"annotation \(truth\): it would be drawn and scored against itself"):
        stcore.pl.domains(adata, key="domain", truth="domain", show=False)
    plain = _slide()                                    # no record: 'domain', as before
    plain.obs["domain"] = plain.obs["truth"].astype(str)
    assert [ax.get_title() for ax in stcore.pl.domains(plain, show=False, return_fig=True).axes] == ["domain"]


def test_spots_without_a_found_domain_are_left_out_of_pl_domains_scores(caplog):
    """tl.domains on a part of the slide, its domains assigned back to the whole object
    (adata.obs['domain'] = part.obs['domain']: NaN where a spot was not in the part).  pl.domains
    scored the NaN spots as one more domain (DLPFC 151673, half the slide: ARI 0.216 where the
    clustered spots give 0.504); they are now left out, as unannotated spots are, with a warning and
    the count in the title and in fig.stcore_scores."""
    import logging

    import matplotlib
    import pandas as pd

    from stcore.evaluate import domain_metrics

    matplotlib.use("Agg")
    caplog.set_level(logging.WARNING, logger="stcore")
    adata = _slide()
    part = adata[adata.obsm["spatial"][:, 1] < 400].copy()
    stcore.tl.domains(part, n_clusters=2, **FAST)
    adata.obs["domain"] = part.obs["domain"]
    n = int(adata.obs["domain"].isna().sum())
    assert 0 < n < adata.n_obs
    fig = stcore.pl.domains(adata, truth="truth", show=False, return_fig=True)
    expected = domain_metrics(part.obs["truth"], part.obs["domain"].to_numpy())
    assert fig.stcore_scores["domain"]["ARI"] == pytest.approx(expected["ARI"])
    assert fig.stcore_scores["domain"]["n_without_domain"] == n
    assert fig.axes[1].get_title().endswith(f"({adata.n_obs - n} spots with a domain)")
    assert any(f"obs['domain'] holds no domain for {n} of 64 spots" in r.getMessage() for r in caplog.records)
    whole = _slide()                                    # every spot with a domain: scored as before
    whole.obs["domain"] = pd.Categorical(np.where(whole.obsm["spatial"][:, 1] < 300, "a", "b"))
    fig = stcore.pl.domains(whole, truth="truth", show=False, return_fig=True)
    assert set(fig.stcore_scores["domain"]) == {"ARI", "NMI"}


def test_zeros_stored_in_a_graph_are_not_counted_as_edges():
    """A graph thresholded by hand keeps the pairs it drops as stored zeros (W.data = (D.data < r)):
    uns['stcore']['graph']['n_edges'] counted them as edges (2152 for a graph of 770)."""
    adata = _slide()
    stcore.gr.spatial_graph(adata, mode="radius", radius=250)
    w = adata.obsp["spatial_distances"].tocsr().copy()
    w.data = (w.data < 150).astype(np.float32)
    kept = int(np.count_nonzero(w.data))
    assert w.nnz > kept
    adata.obsp["spatial_connectivities"] = w
    stcore.tl.domains(adata, n_clusters=2, **FAST)
    assert adata.uns["stcore"]["graph"]["n_edges"] == kept
    assert adata.obsp["spatial_connectivities"].nnz == w.nnz          # obsp is left as it is


def test_slides_clustered_apart_and_drawn_together_are_scored_each_on_its_own():
    """Each slide through tl.domains on its own (as its refusal of joined slides asks), then joined with
    anndata.concat(label='slide') and drawn with pl.domains(slide_key='slide'): each run numbers its
    domains its own way, and pooled, one slide's '3' and the other's were scored as one domain (two
    perfect labellings of DLPFC 151673 and 151674: ARI 0.432).  Each slide is scored on its own, as
    the workflow's table scores a group's slides; the title gives their mean."""
    import anndata as ad
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    parts = {}
    for name, shift in (("a", 0), ("b", 1)):
        part = _slide()
        codes = part.obs["truth"].cat.codes.to_numpy()
        part.obs["domain"] = pd.Categorical(((codes + shift) % 2).astype(str))      # perfect, numbered apart
        parts[name] = part
    both = ad.concat(parts, label="slide", index_unique="-")
    fig = stcore.pl.domains(both, truth="truth", slide_key="slide", show=False, return_fig=True)
    scores = fig.stcore_scores["domain"]
    assert scores["ARI"] == pytest.approx(1.0) and scores["NMI"] == pytest.approx(1.0)
    assert set(scores["per_slide"]) == {"a", "b"}
    assert fig.axes[1].get_title().endswith("ARI 1.000, NMI 1.000 (mean of 2 slides)")


def test_slides_drawn_together_say_how_many_of_them_are_scored():
    """Slides joined for a figure where one has no annotation (as an annotation often covers one
    section): its slide's scores are NaN, and the title said 'ARI 1.000, NMI 1.000 (mean of 2 slides)'
    of the one annotated slide's."""
    import anndata as ad
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    parts = {}
    for name, shift in (("a", 0), ("b", 1)):
        part = _slide()
        codes = part.obs["truth"].cat.codes.to_numpy()
        part.obs["domain"] = pd.Categorical(((codes + shift) % 2).astype(str))
        parts[name] = part
    parts["b"].obs["truth"] = np.nan                   # slide b without an annotation
    both = ad.concat(parts, label="slide", index_unique="-")
    fig = stcore.pl.domains(both, truth="truth", slide_key="slide", show=False, return_fig=True)
    scores = fig.stcore_scores["domain"]
    assert scores["ARI"] == pytest.approx(1.0) and np.isnan(scores["per_slide"]["b"]["ARI"])
    assert fig.axes[1].get_title().endswith("ARI 1.000, NMI 1.000 (1 of 2 slides: b has no annotation)")


def test_a_vote_of_two_labelings_is_said_to_be_one_of_them(caplog):
    """tl.domains over two labelings (two methods at one seed, or one method at two seeds) gives one
    of them unchanged, every disagreement being a tie: said, with the fix; three: not said."""
    adata = _slide()
    with caplog.at_level("WARNING", logger="stcore.tl"):
        stcore.tl.domains(adata, n_clusters=2, method=["graphst", "expression"], seed=0, **FAST)
    said = [r.getMessage() for r in caplog.records if "votes over two labelings" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("tl.domains(method=['graphst', 'expression'], seed=0) votes")
    assert "(graphst seed 0's;" in said[0] and "Fix: combine three labelings or more" in said[0]
    assert (adata.obs["domain"].to_numpy() == adata.obsm["domain_methods"]["graphst"].to_numpy()).all()
    caplog.clear()
    with caplog.at_level("WARNING", logger="stcore.tl"):
        stcore.tl.domains(adata, n_clusters=2, seed=range(3), **FAST)
    assert not [r for r in caplog.records if "votes over two labelings" in r.getMessage()]


def test_a_column_replaced_since_the_call_is_not_titled_with_its_settings():
    """pl.domains titles the column tl.domains wrote with the call's method and seeds ('domain: graphst,
    seeds 0, 1, 2'); a column replaced since on the same spots (one seed's labels picked from
    obsm['domain_seeds'], or another call's, tl.domains(copy=True), assigned back), or two results joined
    with anndata.concat(..., uns_merge='first') (the first's record: 'graphst, seed 0' over the second's
    consensus too) or 'same' ('seed None'), kept that title: a figure credited to settings that did not
    make it.  Renamed domains, or a subset of the spots, keep it."""
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    adata = _slide()
    stcore.tl.domains(adata, n_clusters=3, seed=range(3), **FAST)

    def title(obj):
        return stcore.pl.domains(obj, truth="truth", show=False, return_fig=True).axes[1].get_title()

    assert title(adata).startswith("domain: graphst, seeds 0, 1, 2")
    adata.obs["domain"] = adata.obs["domain"].cat.rename_categories(lambda c: f"layer {c}")
    assert title(adata).startswith("domain: graphst, seeds 0, 1, 2")          # renamed: the same domains
    assert title(adata[:40].copy()).startswith("domain: graphst, seeds 0, 1, 2")
    consensus = adata.obs["domain"].astype(str).to_numpy()
    seeds = adata.obsm["domain_seeds"]
    picked = next(c for c in seeds.columns if not np.array_equal(pd.factorize(seeds[c].astype(str))[0],
                                                                 pd.factorize(consensus)[0]))
    adata.obs["domain"] = pd.Categorical(seeds[picked].astype(str))           # one seed's labels
    assert title(adata).split("\n")[0] == "domain"
    other = stcore.tl.domains(_slide(), n_clusters=4, seed=7, copy=True, **FAST)
    assert not np.array_equal(pd.factorize(other.obs["domain"].astype(str))[0], pd.factorize(consensus)[0])
    adata.obs["domain"] = other.obs["domain"]                                  # another call's
    assert title(adata).split("\n")[0] == "domain"
    # results joined, anndata.concat keeping the first's record (uns_merge='first') or what they share ('same')
    import anndata as ad

    first = _slide()
    stcore.tl.domains(first, n_clusters=2, seed=0, **FAST)
    for merge in ("first", "same"):
        joined = ad.concat([first, other], label="library_id", keys=["A", "B"], index_unique="-", uns_merge=merge)
        assert title(joined).split("\n")[0] == "domain", merge
    # the workflow's consensus domains.h5ad, one seed's labels picked from it, likewise
    from stcore.export import domains_adata

    slide = _slide()
    n = slide.n_obs
    seed_labels = {0: np.arange(n) % 2, 1: np.arange(n) % 3}
    h5ad = domains_adata(slide, seed_labels[0], np.zeros((n, 2)), sp.identity(n, format="csr"), method="graphst",
                         info={"method": "graphst", "seed": "consensus", "consensus_of": "0,1"},
                         seed_labels=seed_labels)
    assert title(h5ad).startswith("domain: graphst, seeds 0, 1")
    h5ad.obs["domain"] = pd.Categorical(h5ad.obsm["domain_seeds"]["seed1"].astype(str))
    assert title(h5ad).split("\n")[0] == "domain"
    plt.close("all")


def test_one_slide_taken_out_of_joined_results_is_not_titled_with_the_first_slides_settings(tmp_path):
    """Two slides each through tl.domains (seed 0; seed 5), joined with anndata.concat(..., uns_merge='first'),
    which keeps the first's record, and the second taken out: pl.domains titled it 'domain: graphst, seed 0',
    the first slide's settings.  Taken out of results joined with or without index_unique, after a round trip
    through .h5ad too, it is titled without them; the first slide taken out (its own ids) keeps its own."""
    import anndata as ad
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first, second = _slide(), tiny_slide(seed=3, n_side=7)
    second.obs["truth"] = second.obs.pop("domain")
    stcore.tl.domains(first, n_clusters=2, seed=0, **FAST)
    stcore.tl.domains(second, n_clusters=3, seed=5, **FAST)

    def title(obj):
        return stcore.pl.domains(obj, truth="truth", show=False, return_fig=True).axes[1].get_title().split("\n")[0]

    assert title(second) == "domain: graphst, seed 5"
    for unique in ("-", None):
        joined = ad.concat({"A": first, "B": second}, label="library_id", uns_merge="first", index_unique=unique)
        joined.write_h5ad(tmp_path / "joined.h5ad")
        for obj in (joined, ad.read_h5ad(tmp_path / "joined.h5ad")):
            assert title(obj[obj.obs["library_id"] == "B"].copy()) == "domain", unique
            if unique is None:      # the first slide's own spots and labels
                assert title(obj[obj.obs["library_id"] == "A"].copy()) == "domain: graphst, seed 0"
    plt.close("all")


def test_a_stored_graph_of_positions_changed_since_is_refused():
    """tl.domains warns of coordinates in another order than the spots and says to store them in the
    spots' order; the user does, and runs it again: the graph the first call built (and stored) from
    the shuffled positions was taken again, the same warning given with the same fix, and the same
    domains found (ARI 0.018 against 0.323 on a rebuilt graph, a 256-spot simulated slide).  A graph
    whose edges' stored lengths are not the spots' distances now is refused, before any work; the same
    positions in other units, or moved or mirrored as a whole, keep the graph."""
    adata = _slide()
    good = np.asarray(adata.obsm["spatial"], dtype=float).copy()
    adata.obsm["spatial"] = good[np.random.default_rng(0).permutation(adata.n_obs)]
    stcore.tl.domains(adata, n_clusters=2, **FAST)
    adata.obsm["spatial"] = good                      # the fix the warning gives
    with pytest.raises(InputError, match=r"obsp\['spatial_connectivities'\] was built on other positions than "
                                         r"obsm\['spatial'\] holds now: \d+ of its \d+ edges' lengths"):
        stcore.tl.domains(adata, n_clusters=2, **FAST)
    stcore.gr.spatial_graph(adata)                    # the fix
    for moved in (good / 7.5, good * [1, -1] + 300):  # microns for pixels; mirrored and shifted
        adata.obsm["spatial"] = moved
        stcore.tl.domains(adata, n_clusters=2, **FAST)
        assert adata.uns["stcore"]["graph"]["built"] is False


def test_a_stored_graph_over_x_y_and_z_is_named_as_such_when_spatial_dims_name_two():
    """obsm['spatial'] of x, y and each cell's z (a MERFISH or STARmap slide), a graph stored by squidpy's
    spatial_neighbors (which takes every column), then tl.domains(spatial_dims=(0, 1)) as its refusal of three
    columns says: was refused as 'built on other positions than obsm['spatial'] holds now (the coordinates
    were changed since it was built, e.g. put in the spots' order)', with the fix stcore.gr.spatial_graph(adata),
    itself refused (three columns).  The graph is named as one over x, y and z, and the fix builds the graph
    of the two columns named; that fix (and the fix of a graph of other positions) passes."""
    import pandas as pd
    import squidpy as sq

    adata = _slide()
    xy = np.asarray(adata.obsm["spatial"], dtype=float)
    z = np.random.default_rng(0).uniform(0, 30, adata.n_obs)
    for value, dims in ((np.column_stack([xy, z]), (0, 1)),
                        (pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "z": z}, index=adata.obs_names), ("x", "y"))):
        adata.obsm["spatial"] = value
        sq.gr.spatial_neighbors(adata, coord_type="generic", n_neighs=6)
        with pytest.raises(InputError) as err:
            stcore.tl.domains(adata, n_clusters=2, spatial_dims=dims, **FAST)
        said = str(err.value)
        assert re.search(r"obsp\['spatial_connectivities'\] was built over the 3 columns of obsm\['spatial'\] \(", said)
        assert "changed since" not in said and "spots' order" not in said
        assert f"stcore.gr.spatial_graph(adata, spatial_dims={dims!r})" in said
        stcore.gr.spatial_graph(adata, spatial_dims=dims)                # the fix
        stcore.tl.domains(adata, n_clusters=2, spatial_dims=dims, overwrite=True, **FAST)
        assert adata.uns["stcore"]["graph"]["built"] is False
    # a graph of positions changed since, on coordinates under another key: the fix names the key and the columns
    adata = _slide()
    good = np.asarray(adata.obsm.pop("spatial"), dtype=float)
    adata.obsm["aligned"] = np.column_stack([good[np.random.default_rng(1).permutation(adata.n_obs)], z])
    stcore.gr.spatial_graph(adata, spatial_key="aligned", spatial_dims=(0, 1))
    adata.obsm["aligned"] = np.column_stack([good, z])
    with pytest.raises(InputError, match=r"was built on other positions.*Fix: build it again on these coordinates: "
                                         r"stcore\.gr\.spatial_graph\(adata, spatial_key='aligned', "
                                         r"spatial_dims=\(0, 1\)\)"):
        stcore.tl.domains(adata, n_clusters=2, spatial_key="aligned", spatial_dims=(0, 1), **FAST)


def test_pl_domains_draws_the_two_columns_kept_alone_after_tl_domains_named_them():
    """tl.domains(spatial_dims=('x', 'y')) on obsm['spatial'] of columns z, x, y, then the two columns kept
    alone as an array (adata.obsm['spatial'] = adata.obsm['spatial'][['x', 'y']].to_numpy(), as squidpy
    and scanpy take coordinates): pl.domains stopped with 'ValueError: invalid literal for int() with
    base 10: 'x'' (the recorded names applied to an array); it draws the two columns.  tl.domains run again
    takes the stored graph of the same two columns, which it refused as built from other columns."""
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    adata = _slide()
    xy = np.asarray(adata.obsm["spatial"], dtype=float)
    adata.obsm["spatial"] = pd.DataFrame({"z": 0.0, "x": xy[:, 0], "y": xy[:, 1]}, index=adata.obs_names)
    stcore.tl.domains(adata, n_clusters=2, spatial_dims=("x", "y"), **FAST)
    adata.obsm["spatial"] = adata.obsm["spatial"][["x", "y"]].to_numpy()
    fig = stcore.pl.domains(adata, truth="truth", show=False, return_fig=True)
    drawn = np.asarray(fig.axes[0].collections[0].get_offsets())
    assert np.allclose(np.ptp(drawn, axis=0), np.ptp(xy, axis=0))
    plt.close("all")
    # tl.domains again on them: the stored graph, built from columns x and y, is these columns' (its edges' lengths
    # are their distances); it was refused as 'built from obsm['spatial'] (columns x, y), not ... (columns 0, 1)'
    stcore.tl.domains(adata, n_clusters=2, **FAST)
    assert adata.uns["stcore"]["graph"]["built"] is False


def test_a_call_that_replaces_a_column_drops_the_last_calls_other_embeddings():
    """tl.domains(method=['graphst', 'expression']) then tl.domains(method='graphst') on the same key: the
    first call's obsm['X_expression'] stayed, and pl.domains(basis='X_expression') drew the new domains on
    the embedding of a call whose labels are gone, without a word.  It is removed with those labels; a
    call under another key keeps the embeddings of the column it leaves."""
    adata = _slide()
    stcore.tl.domains(adata, n_clusters=2, method=["graphst", "expression"], **FAST)
    assert {"X_graphst", "X_expression"} <= set(adata.obsm)
    stcore.tl.domains(adata, n_clusters=2, key_added="other", **FAST)            # another column: kept
    assert "X_expression" in adata.obsm
    stcore.tl.domains(adata, n_clusters=2, method=["graphst", "expression"], overwrite=True, **FAST)
    stcore.tl.domains(adata, n_clusters=2, **FAST)                               # replaces 'domain'
    assert "X_graphst" in adata.obsm and "X_expression" not in adata.obsm


def test_genes_detected_in_no_spot_are_dropped_as_the_workflows_qc_drops_them():
    """The workflow's qc job drops genes detected in no spot (qc.min_spots 1); tl.domains does the
    same, so a slide with such genes (1 of MERFISH Bregma 0.21's 161) gets the workflow's labels:
    with every gene used (not more genes than n_top_genes) they were fed to the model as genes, and
    the labels were another run's (MERFISH at 20 epochs: ARI 0.50 with the workflow's)."""
    import anndata as ad
    import pandas as pd

    plain = _slide()
    padded = ad.AnnData(X=sp.hstack([sp.csr_matrix(plain.X), sp.csr_matrix((plain.n_obs, 3), dtype=plain.X.dtype)]).tocsr(),
                        obs=plain.obs.copy(), var=pd.DataFrame(index=[*plain.var_names, "z0", "z1", "z2"]))
    padded.obsm["spatial"] = plain.obsm["spatial"].copy()
    settings = dict(FAST, n_top_genes=100, n_clusters=2)
    stcore.tl.domains(plain, **settings)
    stcore.tl.domains(padded, **settings)
    assert padded.n_vars == plain.n_vars + 3                                   # the object keeps every gene
    assert np.array_equal(padded.obsm["X_graphst"], plain.obsm["X_graphst"])
    assert np.array_equal(padded.obs["domain"].to_numpy(), plain.obs["domain"].to_numpy())


def test_the_record_tells_the_same_slide_held_in_another_order_from_another_matrix_type():
    """uns['stcore']['input_digest']: one for the same values held as CSR, CSC, a dense array, float32
    or int64 counts (which give the same domains); another for the spots or the genes in another order
    (adata[perm], adata[:, perm]), which may give other domains as another seed does
    (docs/guarantees.md): the record says which order ran, where it said nothing of the genes'."""
    plain = _slide()
    held = {"csr": plain, "csc": plain.copy(), "dense float64": plain.copy(), "int64": plain.copy()}
    held["csc"].X = sp.csc_matrix(plain.X)
    held["dense float64"].X = plain.X.toarray().astype(np.float64)
    held["int64"].X = sp.csr_matrix(plain.X.toarray().astype(np.int64))
    perm = np.random.default_rng(0).permutation(plain.n_obs)
    gperm = np.random.default_rng(0).permutation(plain.n_vars)
    other = {"spots": plain[perm].copy(), "genes": plain[:, gperm].copy()}
    for adata in [*held.values(), *other.values()]:
        stcore.tl.domains(adata, n_clusters=2, **FAST)
    digest = {name: a.uns["stcore"].get("input_digest") for name, a in {**held, **other}.items()}
    assert isinstance(digest["csr"], str) and len(digest["csr"]) == 64
    assert {digest[name] for name in held} == {digest["csr"]}, digest
    for name in held:
        assert np.array_equal(held[name].obs["domain"].to_numpy(), plain.obs["domain"].to_numpy()), name
        assert np.array_equal(held[name].obsm["X_graphst"], plain.obsm["X_graphst"]), name
    assert len({digest["csr"], digest["spots"], digest["genes"]}) == 3, digest
    # the spots in another order are told by the labelling's spot digest too; the genes' only here
    assert other["spots"].uns["stcore"]["labelling"]["spots"] != plain.uns["stcore"]["labelling"]["spots"]
    assert other["genes"].uns["stcore"]["labelling"]["spots"] == plain.uns["stcore"]["labelling"]["spots"]
    changed = _slide()
    changed.X.data[0] += 1                # one count more: another digest
    stcore.tl.domains(changed, n_clusters=2, **FAST)
    assert changed.uns["stcore"]["input_digest"] != digest["csr"]

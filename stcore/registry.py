"""The methods a run can train, by name, and what the workflow needs to know of each: declared once.

Standard library only, so the Snakefile reads it without the scientific stack (``rules/common.smk``
loads it with the plan, stcore/plan, without running stcore/__init__.py); :data:`stcore.methods.REGISTRY` pairs each entry with its ``fit``,
``stcore.validate`` checks settings against it, and the config schema's ``model`` enum lists the
same names (a test holds the three equal).

Adding a method: one :data:`METHODS` entry here, its ``fit`` in :mod:`stcore.methods` (or
:mod:`stcore.peers` for a published method from an optional extra), and its name in the schema's
``model`` enum.  Nothing in ``rules/`` names a method.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

__all__ = ["MethodFacts", "METHODS", "PEER_SETTINGS", "GRAPH_MODEL_TRAIN_KEYS", "GRAPH_MODEL_LOG_KEYS", "facts",
           "train_settings_read", "train_log_settings",
           "unknown_peer_settings", "peer_settings_fix"]


@dataclass(frozen=True)
class MethodFacts:
    """What the workflow needs to know of a method.

    description: one line for docs and messages.
    builtin: this package's own (True), or a published method from an optional extra (a peer).
    extra: the optional extra that installs it (``pip install -e '.[<extra>]'``); None when built in.
    requires: the import name that ``extra`` provides, checked before the method runs.
    own_labels: it clusters itself (``cluster.algorithm: own`` reports its labels).
    reads_counts: its fit takes the raw counts of the selected genes (``counts=``).
    wants_n_clusters: its fit takes the slide's number of domains (``n_clusters=``).
    own_labels_optional: its own clustering is a last step that its embedding does not depend on;
        the fit runs it only when given ``n_clusters`` (see :meth:`needs_n_clusters`).
    allows_groups: it can train a group of slides as one (a peer builds its own graph from the
        coordinates, which would join the slides).
    dense_spots: it holds dense spots x spots matrices (the train job's memory request budgets them).
    bytes_per_value: bytes its train job holds at its peak per spot and gene of the slide, beyond the
        interpreter (the memory request budgets them; the built-in models' request is their own).
    env: the conda environment file of its train job on the CPU (``envs/<env>.yaml``).
    train_keys: the keys of the config's ``train:`` block its fit reads (the graph model: its
        TrainParams; the baseline: ``pca_comps``; a peer: ``peer``, its package's settings).  Its train
        job's settings, and so what reruns it, are these keys alone (:func:`train_settings_read`).
    reads_graph: its fit reads the workflow's spatial graph (``graph.npz``, the ``graph:`` settings);
        the baseline reads none and a peer builds its own from the coordinates, so their train jobs
        do not take the graph and a changed ``graph:`` setting does not rerun them.
    log_keys: the keys of the ``train:`` block its fit reads that change what it logs, not its result
        (the graph model's ``log_every``): its train job reads them from the config, not as a setting,
        so a changed one reruns nothing (:func:`train_log_settings`).
    """

    description: str
    builtin: bool
    extra: str | None
    requires: str | None
    own_labels: bool
    reads_counts: bool
    wants_n_clusters: bool
    own_labels_optional: bool
    allows_groups: bool
    dense_spots: bool
    bytes_per_value: int
    env: str
    train_keys: tuple[str, ...]
    reads_graph: bool
    log_keys: tuple[str, ...]

    @property
    def install(self) -> str | None:
        """The command that installs the method's extra, or None when built in."""
        return f"pip install -e '.[{self.extra}]'" if self.extra else None

    def needs_n_clusters(self, own_labels_reported: bool) -> bool:
        """Whether its fit must be given the slide's number of domains: it trains for that number, or
        its own labels are reported (``cluster.algorithm: own``) and its own clustering searches for
        it.  A method whose own clustering is optional skips it otherwise, so that its embedding,
        clustered by the shared step, costs no search and allows ``n_clusters: auto``."""
        return self.wants_n_clusters and (own_labels_reported or not self.own_labels_optional)

    def auto_refusal(self, own_labels_reported: bool) -> tuple[str, str] | None:
        """Why a run cannot choose its number of domains (``n_clusters: auto``), and the fix;
        None when it can (the number is then chosen by the shared cluster step)."""
        if not self.needs_n_clusters(own_labels_reported):
            return None
        if self.own_labels_optional:
            return ("its own clustering (cluster.algorithm own) searches for a given number of domains",
                    "give the number (the sample sheet's n_clusters), or cluster its embedding with the shared "
                    "step (cluster.algorithm mclust), which can choose it")
        return ("it trains for a given number of domains",
                "give the number (the sample sheet's n_clusters), or use a method that does not need it")


def _peer(description: str, extra: str, requires: str, *, own_labels: bool, wants_n_clusters: bool,
          own_labels_optional: bool, dense_spots: bool, bytes_per_value: int = 40) -> MethodFacts:
    """A published method run from its own package, on the CPU: it preprocesses the counts itself and
    builds its own graph from the coordinates (so no groups of slides).  ``bytes_per_value``: ten
    dense float32 copies of the slide unless measured otherwise."""
    return MethodFacts(description, builtin=False, extra=extra, requires=requires, own_labels=own_labels,
                       reads_counts=True, wants_n_clusters=wants_n_clusters,
                       own_labels_optional=own_labels_optional, allows_groups=False,
                       dense_spots=dense_spots, bytes_per_value=bytes_per_value, env="peers", train_keys=("peer",),
                       reads_graph=False, log_keys=())


def _builtin(description: str, train_keys: tuple[str, ...], *, reads_graph: bool,
             log_keys: tuple[str, ...]) -> MethodFacts:
    """This package's own: no extra, the package's environment, groups of slides allowed."""
    return MethodFacts(description, builtin=True, extra=None, requires=None, own_labels=False, reads_counts=False,
                       wants_n_clusters=False, own_labels_optional=False, allows_groups=True, dense_spots=False,
                       bytes_per_value=0, env="stcore", train_keys=train_keys,
                       reads_graph=reads_graph, log_keys=log_keys)


# The train settings the graph model reads: stcore.train.TrainParams less the seed and threads, which
# come from the run, and log_every, which changes its log lines only (GRAPH_MODEL_LOG_KEYS; a test
# holds the three equal and trains with two log_every to the same bits).
GRAPH_MODEL_TRAIN_KEYS = ("epochs", "lr", "weight_decay", "n_latent", "recon_weight", "contrast_weight",
                          "tied_decoder", "device", "input_pcs")
GRAPH_MODEL_LOG_KEYS = ("log_every",)


METHODS: dict[str, MethodFacts] = {
    "graphst": _builtin("sparse graph contrastive autoencoder (GraphST-style), this package's model",
                        GRAPH_MODEL_TRAIN_KEYS, reads_graph=True, log_keys=GRAPH_MODEL_LOG_KEYS),
    "expression": _builtin("PCA of the preprocessed expression, no graph (baseline)", ("pca_comps",),
                           reads_graph=False, log_keys=()),
    "graphst_pkg": _peer("GraphST 1.1.1, the authors' package (AGPL-3.0, optional); embedding: its reconstruction "
                         "output; labels: its R-free Leiden search", "peers", "GraphST",
                         own_labels=True, wants_n_clusters=True, own_labels_optional=True, dense_spots=True),
    "stagate": _peer("STAGATE (stagate-modern, MIT): graph attention autoencoder; embedding: its 30-d latent",
                     "peers", "STAGATE_pyG", own_labels=False, wants_n_clusters=False, own_labels_optional=False,
                     dense_spots=False),
    "spagcn": _peer("SpaGCN (spagcn-modern, MIT) without histology; labels: its own clustering, refined; "
                    "embedding: its hidden layer", "peers", "SpaGCN",
                    own_labels=True, wants_n_clusters=True, own_labels_optional=False, dense_spots=True),
    "cellcharter": _peer("CellCharter (cellcharter, BSD-3): neighbourhood aggregation of 10 PCs over 3 layers; "
                         "labels: its own Gaussian mixture; embedding: the aggregated features",
                         "cellcharter", "cellcharter", own_labels=True, wants_n_clusters=True,
                         own_labels_optional=True, dense_spots=False),
    "banksy": _peer("BANKSY (pybanksy, GPL-3.0, optional): expression augmented with its neighbourhood mean and "
                    "azimuthal Gabor filter; embedding: 20 PCs of the BANKSY matrix; labels: its Leiden search",
                    "banksy", "banksy", own_labels=True, wants_n_clusters=True, own_labels_optional=True,
                    dense_spots=False, bytes_per_value=110),   # stcore.peers.BANKSY_COPIES x 3 blocks x 8 bytes
}


# Each peer's settings, the keys of its method's train.peer block, with their defaults: its package's own,
# as its tutorial sets them, named as the package names its arguments (stcore.peers passes them on; the
# workflow's plan refuses any other key at parse time).
PEER_SETTINGS: dict[str, dict] = {
    # GraphST 1.1.1: the GraphST() constructor's defaults and its tutorial's Leiden search
    # (clustering(method='leiden', start=0.1, end=2.0, increment=0.01, refinement=False)); the
    # tutorial's own clustering is R mclust, which the pipeline's shared mclust replaces.
    "graphst_pkg": {
        "epochs": 600, "learning_rate": 0.001, "weight_decay": 0.0, "dim_output": 64, "alpha": 10.0,
        "beta": 1.0, "datatype": "10X",
        "own_clustering": "leiden",        # leiden: labels from GraphST.utils.clustering; none: no labels
        "start": 0.1, "end": 2.0, "increment": 0.01, "refinement": False, "radius": 50,
    },
    # STAGATE (stagate-modern 1.0.0.post1): train_STAGATE's defaults, as in its DLPFC tutorial.
    # rad_cutoff None: from the data (stcore.peers.stagate_radius), which gives the tutorial's 150 on Visium.
    "stagate": {
        "rad_cutoff": None, "hidden_dims": [512, 30], "n_epochs": 1000, "lr": 0.001,
        "weight_decay": 0.0001, "gradient_clipping": 5.0,
    },
    # SpaGCN (spagcn-modern 1.4.1, default compat 'spagcn-1.2.7'): its tutorial without histology.
    "spagcn": {
        "p": 0.5, "min_cells": 3, "num_pcs": 50, "init": "louvain", "n_neighbors": 10,
        "lr": 0.05, "max_epochs": 200, "tol": 5e-3,
        "res_start": 0.7, "res_step": 0.1, "res_lr": 0.05, "res_max_epochs": 20,
        "refine_shape": "auto",            # auto | hexagon | square | none
    },
    # CellCharter (cellcharter 0.3.7): its README's pipeline - Delaunay graph (squidpy), long links
    # over the 99th distance percentile removed, neighbourhood aggregation over 3 layers, a
    # full-covariance Gaussian mixture (torchgmm) - on a 10-d representation.  Its authors use scVI's
    # 10-d latent for transcriptomics; scvi-tools is not in the extra, so the representation is the
    # first 10 principal components of the log-normalised genes (rep_dims).
    "cellcharter": {"n_layers": 3, "distance_percentile": 99.0, "rep_dims": 10},
    # BANKSY (pybanksy 1.3.5): its authors' settings for domain segmentation, which depend on what a
    # location is (see stcore.peers.fit_banksy for the source of each).  lambda and k_geom None: from
    # the slide's kind (stcore.peers.BANKSY_BY_KIND); kind auto: 'spots' on a regular grid
    # (grid_shape hexagon or square: Visium, ST), else 'cells'.
    "banksy": {
        "kind": "auto", "lambda": None, "k_geom": None, "max_m": 1, "nbr_weight_decay": "scaled_gaussian",
        "pca_dims": 20, "n_top_genes": 2000, "log1p": False,
        "own_clustering": "leiden",        # leiden: labels from its Leiden search; none: no labels
        "num_nn": 50, "resolution_start": 0.6, "resolution_step": 0.05, "max_iter": 25,
    },
}


def train_settings_read(model: str, train: dict) -> dict:
    """The settings of the ``train:`` block ``train`` (the config's with a method's own on top) that
    ``model``'s fit reads (its :attr:`MethodFacts.train_keys`): what its train job is given and
    what reruns it.  ``train.epochs`` is not the baseline's, ``pca_comps`` not the graph model's."""
    keys = facts(model).train_keys
    return {key: value for key, value in train.items() if key in keys}


def train_log_settings(model: str, train: dict) -> dict:
    """The settings of the ``train:`` block ``train`` that change only what ``model``'s fit logs (its
    :attr:`MethodFacts.log_keys`): given to its train job from the config, outside its settings, so
    that ``train.log_every`` reruns no training."""
    keys = facts(model).log_keys
    return {key: value for key, value in train.items() if key in keys}


def unknown_peer_settings(model: str, given) -> list[str]:
    """The keys of ``given`` (a peer method's ``train.peer``) that peer ``model`` does not take, sorted."""
    return sorted(str(key) for key in set(given or {}) - set(PEER_SETTINGS[model]))


def peer_settings_fix(model: str, unknown, given=None, method: str | None = None) -> str:
    """The fix for ``unknown`` keys of peer ``model``'s ``train.peer`` (``given``; ``method``: its
    name in the config): where a key is a method's name (``{banksy: {n_top_genes: 1000}}``, the
    notebook's block by method), where a method's own settings go in the config and in
    ``tl.domains``; else the key meant where one is close (``n_epoch`` -> ``n_epochs``), and the keys
    it takes."""
    blocks = [key for key in unknown if key in METHODS]
    if blocks:
        key = blocks[0]
        inner = (given or {}).get(key) if isinstance(given, dict) else None
        inner = dict(inner) if isinstance(inner, dict) and inner else None
        yaml = "{" + ", ".join(f"{k}: {v}" for k, v in inner.items()) + "}" if inner else "{...}"
        name = method if method and key == model else "<its name>"
        return (f"the settings of a method go in its own block: in the config, methods.<its name>.train.peer "
                f"(methods: {{{name}: {{model: {key}, train: {{peer: {yaml}}}}}}}); in tl.domains, "
                f"train={{'peer': {{'{key}': {repr(inner) if inner else '{...}'}}}}}")
    accepted = sorted(PEER_SETTINGS[model])
    close = [f"{match[0]} for {key}" for key in unknown
             if (match := difflib.get_close_matches(key, accepted, n=1, cutoff=0.75))]
    return ((f"write {', '.join(close)}, or " if close else "")
            + f"use only {accepted} (stcore/registry.py, PEER_SETTINGS, has their defaults)")


def facts(model: str) -> MethodFacts:
    """The facts of ``model``; a KeyError naming the known ones for an unknown name."""
    try:
        return METHODS[model]
    except KeyError:
        raise KeyError(f"unknown method model '{model}'; the registry has {sorted(METHODS)}") from None

"""The methods a run can train, by name, and the one result type they all return.

A method is a function ``fit(x, adj, coords, params, seed) -> MethodResult``:

- ``x``: the preprocessed expression (N x G, sparse or dense), as ``hvg.h5ad`` holds it;
- ``adj``: the spatial graph (N x N sparse, symmetric 0/1), as ``graph.npz`` holds it; None for a
  method whose facts say it reads none (``reads_graph``: the baseline, the peers), whose train job
  does not take the graph;
- ``coords``: the spots' coordinates (N x 2);
- ``params``: the method's ``train:`` settings from the config (a dict, the method's
  overrides already merged in; in the workflow, the keys its facts' ``train_keys`` name);
- ``seed``: the run's seed.

Two optional keywords are passed to a ``fit`` whose facts (:mod:`stcore.registry`) ask for
them (a ``fit`` with the five arguments alone never sees them):

- ``counts``: raw counts of the same spots and genes as ``x`` (N x G, sparse), as ``hvg.h5ad``
  holds them in ``layers['counts']``; for methods that preprocess the counts themselves
  (``reads_counts``: the peers, :mod:`stcore.peers`); on a slide of log-normalised values
  :func:`fit` gives them the normalised values (see its ``values``);
- ``n_clusters``: the slide's number of domains (the sample sheet's ``n_clusters``), for
  methods that cluster themselves and search for that many domains (``wants_n_clusters``).
  Where that clustering is a last step (``own_labels_optional``), None skips it: the callers
  give the number only when the method's own labels are reported or it trains for the number
  (:meth:`stcore.registry.MethodFacts.needs_n_clusters`).

The built-in ``graphst`` and ``expression`` take neither.

Adding a method: declare its facts in :data:`stcore.registry.METHODS`, write its ``fit`` (here,
or in :mod:`stcore.peers` for a published method from an optional extra), and add its name to
the ``model`` enum of ``stcore/schemas/config.schema.yaml``; a test fails if the three disagree.
Nothing else changes: the workflow reads the facts, and the train step, the clustering, the
evaluation and the tables read only :class:`MethodResult`.

:class:`MethodResult` is the one result type (the built-in trainings of :mod:`stcore.train`
return it too) and the one place that knows the layout of ``train.npz``.
"""
from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .errors import InputError
from .registry import METHODS, MethodFacts, train_settings_read

__all__ = ["MethodResult", "Method", "REGISTRY", "method", "fit", "check_fit", "recorded_train", "trained_on", "RESULT_VERSION",
           "LOSS_COLUMNS"]

# The layout version of train.npz; load() refuses other versions with the fix.  Files
# without a version field (written before it existed) have the same keys, less `machine`
# and `labels`, and are read as version 1.
RESULT_VERSION = 1
LOSS_COLUMNS = ["epoch", "total", "reconstruction", "contrastive"]


@dataclass
class MethodResult:
    """What a method (and :func:`stcore.train.fit_graph_model` / :func:`~stcore.train.fit_expression`)
    gives the rest of the pipeline.

    embedding: (N, d) latent.  decoded, decoder_weight: the reconstruction as the product
    ``decoded @ decoder_weight`` ((N, r) and (r, G)); empty for a method without a decoder.
    labels: the method's own clustering (N,), where it has one; else None.  losses: one row per
    epoch (columns :data:`LOSS_COLUMNS`), empty without training.  seconds: the fit's wall time.
    device: where it ran.  machine: :func:`stcore.provenance.machine` of the process that fit.
    epoch_seconds: the wall time of each epoch (the benchmarks' timing; not written to
    ``train.npz``, like ``losses``, which the train step writes to ``losses.tsv``).
    """

    embedding: np.ndarray
    decoded: np.ndarray = field(default_factory=lambda: np.empty((0, 0), np.float32))
    decoder_weight: np.ndarray = field(default_factory=lambda: np.empty((0, 0), np.float32))
    labels: np.ndarray | None = None
    losses: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=LOSS_COLUMNS))
    seconds: float = 0.0
    device: str = "cpu"
    machine: dict = field(default_factory=dict)
    epoch_seconds: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))

    @property
    def has_decoder(self) -> bool:
        return self.decoded.size > 0 and self.decoder_weight.size > 0

    def save(self, path: str | Path) -> None:
        """Write ``train.npz`` (complete or not at all)."""
        from .io import atomic_path

        arrays = {"version": np.int64(RESULT_VERSION), "embedding": self.embedding, "decoded": self.decoded,
                  "decoder_weight": self.decoder_weight, "seconds": np.float64(self.seconds),
                  "device": np.str_(self.device), "machine": np.str_(json.dumps(self.machine))}
        if self.labels is not None:
            arrays["labels"] = np.asarray(self.labels)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "MethodResult":
        with np.load(path) as npz:
            version = int(npz["version"]) if "version" in npz else RESULT_VERSION
            if version != RESULT_VERSION:
                raise InputError(f"training output of layout version {version}; this stcore reads version "
                                 f"{RESULT_VERSION}", path=str(path),
                                 fix="delete it and run the workflow again to retrain")
            return cls(embedding=npz["embedding"], decoded=npz["decoded"], decoder_weight=npz["decoder_weight"],
                       labels=npz["labels"] if "labels" in npz else None, seconds=float(npz["seconds"]),
                       device=str(npz["device"]),
                       machine=json.loads(str(npz["machine"])) if "machine" in npz else {})


def recorded_train(model: str, train: dict) -> dict:
    """The train settings a run of ``model`` reads, as its record (``uns['stcore']['train']``) shows
    them: a built-in model's keys of the train block (the registry's ``train_keys``: the baseline's
    ``pca_comps``, not the graph model's epochs); a peer reads only ``train.peer``, shown with its
    package's defaults filled in (:func:`stcore.peers.settings_of`), not the graph model's epochs."""
    if method(model).facts.builtin:
        return {"model": model, **train_settings_read(model, train)}
    from .peers import settings_of

    return {"model": model, "peer": settings_of(model, train)}


def trained_on(path: str | Path) -> dict:
    """The machine that wrote ``train.npz`` (:func:`stcore.provenance.machine` columns), without
    reading its arrays; empty for a file that does not hold it."""
    with np.load(path) as npz:
        return json.loads(str(npz["machine"])) if "machine" in npz else {}


@dataclass(frozen=True)
class Method:
    """A registry entry: ``fit`` and the method's facts (:class:`stcore.registry.MethodFacts`:
    its extra, the module it imports, whether it clusters itself, ...)."""

    fit: Callable[..., MethodResult]
    facts: MethodFacts

    @property
    def description(self) -> str:
        return self.facts.description

    @property
    def requires(self) -> str | None:
        return self.facts.requires

    @property
    def install(self) -> str | None:
        return self.facts.install

    @property
    def own_labels(self) -> bool:
        return self.facts.own_labels

    def check_installed(self, name: str) -> None:
        if self.requires and importlib.util.find_spec(self.requires) is None:
            raise InputError(f"method '{name}' needs the Python package '{self.requires}', which is not "
                             "installed", fix=self.install)


def _fit_graphst(x, adj, coords, params: dict, seed: int) -> MethodResult:
    from dataclasses import fields

    from .provenance import machine
    from .train import TrainParams, fit_graph_model

    known = {f.name for f in fields(TrainParams)}
    box = [x]           # hand x over (see fit)
    del x
    res = fit_graph_model(box.pop(), adj, TrainParams(**{k: v for k, v in params.items() if k in known}, seed=seed))
    res.machine = machine()
    return res


def _fit_expression(x, adj, coords, params: dict, seed: int) -> MethodResult:
    from .provenance import machine
    from .train import fit_expression

    res = fit_expression(x, params.get("pca_comps", 50), seed=seed)
    res.machine = machine()
    return res


def _peer(name: str):
    """The peer's fit from stcore.peers, imported when it runs (stcore.peers imports this module)."""
    def fit_peer(x, adj, coords, params: dict, seed: int, *, counts=None, n_clusters=None) -> MethodResult:
        from . import peers

        return getattr(peers, f"fit_{name}")(x, adj, coords, params, seed, counts=counts, n_clusters=n_clusters)

    fit_peer.__name__ = f"fit_{name}"
    return fit_peer


# Each method reads the keys of the train: block it knows and ignores the others; the peers
# read their own settings from its `peer:` block (stcore/peers.py).
_BUILTIN_FITS: dict[str, Callable[..., MethodResult]] = {"graphst": _fit_graphst, "expression": _fit_expression}
REGISTRY: dict[str, Method] = {name: Method(_BUILTIN_FITS[name] if f.builtin else _peer(name), f)
                               for name, f in METHODS.items()}


def method(name: str) -> Method:
    try:
        return REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown method model '{name}'", fix=f"use one of {sorted(REGISTRY)}") from None


def _unlogged(values):
    """``expm1`` of log-normalised values (sparse stays sparse, zeros stay zeros); a new matrix."""
    import scipy.sparse as sp

    if sp.issparse(values):
        out = sp.csr_matrix(values, dtype=np.float64, copy=True)
        np.expm1(out.data, out=out.data)
        return out
    return np.expm1(np.asarray(values, dtype=np.float64))


def reads_counts(name: str) -> bool:
    """Whether method ``name`` reads the raw counts (``fit``'s ``counts``)."""
    return method(name).facts.reads_counts


def check_fit(name: str, params: dict, coords, *, n_genes: int, n_clusters=None) -> None:
    """What :func:`fit` of method ``name`` would refuse that is known before it trains: the method
    installed, and a peer's own checks (:func:`stcore.peers.check`: its settings, the modules it imports,
    the slide's positions and ``n_genes``, the memory it needs), which its fit runs first too.  A call
    of several methods runs it for each before any trains (:func:`stcore.tl.domains`)."""
    entry = method(name)
    entry.check_installed(name)
    if not entry.facts.builtin:
        from .peers import check

        check(name, params, coords, n_genes=n_genes,
              n_clusters=n_clusters if entry.facts.wants_n_clusters else None)


def fit(name: str, x, adj, coords, params: dict, seed: int, *, counts=None, n_clusters=None,
        values: str = "counts") -> MethodResult:
    """Fit method ``name`` (see the module docstring for the arguments; ``counts`` and
    ``n_clusters`` reach only a method whose facts ask for them).

    ``values``: what ``counts`` holds (the sample sheet's ``values``).  A method that normalises
    and logs the counts itself (``reads_counts``) is given log-normalised values as the
    normalised values they are the log of (``expm1``): its own ``normalize_total`` and ``log1p``
    then give what they give on the raw counts of the same genes, where they would have logged
    the values a second time.  Normalised values are given as they are."""
    entry = method(name)
    entry.check_installed(name)
    if entry.facts.reads_counts and counts is not None and values == "log_normalized":
        counts = _unlogged(counts)
    extra = {k: v for k, v, wanted in (("counts", counts, entry.facts.reads_counts),
                                       ("n_clusters", n_clusters, entry.facts.wants_n_clusters)) if wanted}
    # Hand x over: this frame keeps no reference to it, so that training can free the matrix once
    # it holds the features it reads (1.5 GB at 10^6 spots when it trains on PCA scores).  A
    # caller that passes its last reference (the train step) then holds none either.
    box = [x]
    del x
    if extra:       # a call with **extra keeps its arguments in a tuple until it returns
        return entry.fit(box.pop(), adj, coords, dict(params), int(seed), **extra)
    return entry.fit(box.pop(), adj, coords, dict(params), int(seed))

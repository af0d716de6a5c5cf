"""The runs of a config: methods, seeds, slides, combinations, their files and their settings."""
from __future__ import annotations

import functools
import glob
import math
import os
import re

from ..registry import PEER_SETTINGS, peer_settings_fix, train_settings_read, unknown_peer_settings
from . import PlanError
from .sheet import NOT_SLIDES, check_names
from .stamps import INPUT_STAMP

# Where things go, written once.  RUN: the folder of one (slide, method, seed) run; CONSENSUS: the
# consensus of a (slide, method)'s seed labelings, beside its runs; RECORD: Snakemake's time and
# memory record of one job (its `benchmark:` file); RUN_JOB: a run's job name in its records.
RUN = "results/{sample}/{method}/seed{seed}"
CONSENSUS = "results/{sample}/{method}/consensus"
RECORD = "results/records/{stage}/{job}.tsv"
RUN_JOB = "{sample}.{method}.seed{seed}"
# SIMULATED: a slide the simulate rule writes (config ``simulate``, by name); a sample sheet names it by
# this path, before it exists.
SIMULATED = "results/simulated/{name}.h5ad"
# TRAIN_FILES: the files the train rule writes in a run folder (rules/train.smk).
TRAIN_FILES = ("train.npz", "losses.tsv")
# FIGURE: one figure of the comparison (its kind: domains, umap, losses) drawn for one slide.
FIGURE = "results/compare/figures/{kind}_{sample}.png"


def simulated_file(name="{name}"):
    """Path of the slide the simulate rule writes for simulated slide ``name`` (wildcard left in by
    default)."""
    return SIMULATED.format(name=name)


# A simulated slide's size settings and their defaults (stcore.simulate.SimParams takes them from here).
SIMULATED_SIZE = {"n_spots": 2000, "layout": "hex", "n_genes": 3000, "depth": 1000.0, "dispersion": 2.0}
SIMULATED_DEPTH_SPREAD = 0.35   # a simulated spot's library size: depth x a lognormal of this spread (stcore.simulate)
SIMULATED_GENE_SPREAD = 1.0     # a simulated gene's share of a spot's counts: a lognormal of this spread, normalised
SIMULATE_BLOCK = 10_000     # spots stcore.simulate draws at a time (dense arrays of them x the genes)


def hex_side(n_spots):
    """Spots a side of a simulated slide's hex layout: a square grid of about ``n_spots`` (at least 2 a side)."""
    return max(2, int(round(math.sqrt(n_spots))))


def simulated_shape(settings):
    """(spots, genes) of the slide the simulate rule makes from ``settings`` (the config's ``simulate`` entry
    of its name): a hex layout's grid of :func:`hex_side` squared, a scatter layout's ``n_spots``."""
    size = dict(SIMULATED_SIZE, **{k: v for k, v in (settings or {}).items() if k in SIMULATED_SIZE})
    spots = hex_side(size["n_spots"]) ** 2 if size["layout"] == "hex" else int(size["n_spots"])
    return spots, int(size["n_genes"])


def simulated_entries(settings):
    """The most stored entries of the slide the simulate rule makes from ``settings`` (stcore.simulate): a spot
    stores only the genes it has counts of.  A spot's counts are drawn around a library size ``L`` of ``depth``
    times a lognormal of spread :data:`SIMULATED_DEPTH_SPREAD` (mean ``m`` = exp(spread^2 / 2) = 1.063, standard
    deviation ``s`` = ``m`` x sqrt(exp(spread^2) - 1) = 0.38), each gene's a negative binomial of size
    ``dispersion`` ``r`` and mean ``L`` times its share (lognormals of spread :data:`SIMULATED_GENE_SPREAD`, drawn
    once a slide, over their sum), stored with chance 1 - (1 + mean / r)^-r.  That chance is concave in the mean,
    so a spot stores on average at most :func:`simulated_genes_a_spot` (the chance over the shares' lognormal at
    ``L`` = ``depth`` x ``m``); a slide's own draw of shares moves it by about ``cv`` / sqrt(genes), ``cv`` the
    lognormal's sd over its mean (measured over 12 seeds of 2,000 spots: 1.0 at 3,000 genes, 1.6 at 300, 2.4 at
    100 times that, up to 0.97 to 0.99 times it on average), taken 3 times, and the spots' sum by 6 of its standard
    deviations (a spot's at most sqrt(genes / 4 + (``depth`` ``s``)^2)).  Also under the counts' own bound
    (``depth`` x (``m`` x spots + 6 standard deviations)) and spots x genes.  Measured stored entries a spot
    (100,000 spots of 3,000 genes): 0.93 x depth at depth 200, 0.68 x at 1,000; this takes 1.01 x and 0.75 x.
    The counts' bound alone took 1.07 x at both, 1.57 times the entries at depth 1,000, and the start-of-run sizes
    of qc, hvg and train with it."""
    spots, genes = simulated_shape(settings)
    size = dict(SIMULATED_SIZE, **(settings or {}))
    depth = float(size["depth"])
    mean = math.exp(SIMULATED_DEPTH_SPREAD ** 2 / 2)
    sd = mean * math.sqrt(math.exp(SIMULATED_DEPTH_SPREAD ** 2) - 1)
    counts = depth * (mean * spots + 6 * sd * math.sqrt(spots))
    cv = math.sqrt(math.exp(SIMULATED_GENE_SPREAD ** 2) - 1)
    a_spot = simulated_genes_a_spot(genes, depth * mean, float(size["dispersion"])) * (1 + 3 * cv / math.sqrt(genes))
    stored = spots * a_spot + 6 * math.sqrt(spots * (genes / 4 + (depth * sd) ** 2))
    return min(spots * genes, int(math.ceil(min(counts, stored))))


@functools.lru_cache(maxsize=256)
def simulated_genes_a_spot(genes, library, dispersion, steps=241):
    """The genes a simulated spot of ``library`` counts stores on average: the chance 1 - (1 + mean / r)^-r
    (``r``: ``dispersion``) of a gene whose mean is ``library`` x its share, a lognormal of spread
    :data:`SIMULATED_GENE_SPREAD` over ``genes`` times its mean, summed over the lognormal's density (``steps``
    points over 8 of its standard deviations each side)."""
    spread = SIMULATED_GENE_SPREAD
    scale = library / (genes * math.exp(spread ** 2 / 2) * dispersion)
    total = weight = 0.0
    for i in range(steps):
        z = -8 + 16 * i / (steps - 1)
        density = math.exp(-z * z / 2)
        total += density * (1 - (1 + scale * math.exp(spread * z)) ** -dispersion)
        weight += density
    return genes * total / weight


def choices(names):
    """A wildcard constraint (a regular expression) that matches exactly one of ``names``; where there
    are none, 'NONE', so that the rule matches no path of the plan."""
    return "|".join(re.escape(name) for name in names) or "NONE"


def run_file(name, sample="{sample}", method="{method}", seed="{seed}"):
    """Path of file ``name`` of one run (wildcards left in by default)."""
    return f"{RUN}/{name}".format(sample=sample, method=method, seed=seed)


def consensus_file(name, sample="{sample}", method="{method}"):
    """Path of file ``name`` of a (slide, method)'s consensus (wildcards left in by default)."""
    return f"{CONSENSUS}/{name}".format(sample=sample, method=method)


def result_folders(root="results"):
    """The folders under ``root`` laid out as :data:`RUN` or :data:`CONSENSUS` that hold a run's result
    (``domains.h5ad`` or ``labels.tsv``)."""
    return sorted(folder for folder in glob.glob(os.path.join(glob.escape(root), "*", "*", "*"))
                  if re.fullmatch(r"seed\d+|consensus", os.path.basename(folder))
                  and any(os.path.isfile(os.path.join(folder, f)) for f in ("domains.h5ad", "labels.tsv")))


SHOWN = 5          # folders named in a warning line; the count gives the rest


def stale_folders(plan, found):
    """The folders of ``found`` (run folders results/<sample>/<method>/seed<N> or consensus holding a
    run's result, as :func:`result_folders` lists them) that are not runs of ``plan``, sorted.  A
    folder of :meth:`Plan.planned_folders` is never one.  Where every run under
    results/<sample>/<method>/ is stale (a method or combination the slide no longer runs), that
    folder is named instead of its runs; where every run under results/<sample>/ is (a slide not in
    the sheet), results/<sample>.  A folder above a slide file of the sheet, or one of
    :data:`NOT_SLIDES`, is never named whole."""
    planned = plan.planned_folders()
    stale = sorted({f for f in map(os.path.normpath, found) if f not in planned})
    # the folders that hold a run of the plan or a slide file of the sheet (each path's ancestors)
    holding = {os.path.dirname(f) for f in planned} | {os.path.dirname(os.path.dirname(f)) for f in planned}
    for row in plan.slides.values():
        folder = os.path.abspath(row.get("path") or os.sep)
        while os.path.dirname(folder) != folder:
            folder = os.path.dirname(folder)
            holding.add(folder)

    def whole(folder, parts):
        """Whether ``folder`` (results/<sample> or results/<sample>/<method>) may be named whole: no
        run of the plan and no slide file lies in it, and a results/<sample> is not of a slide or
        group of the plan (its qc files are the plan's) nor one of NOT_SLIDES."""
        if len(parts) == 2 and (parts[1] in plan.units or parts[1] in NOT_SLIDES):
            return False
        return folder not in holding and os.path.abspath(folder) not in holding

    named = set()
    for folder in stale:
        parts = folder.split(os.sep)           # results, sample, method, seed<N>|consensus
        if len(parts) != 4:
            named.add(folder)
            continue
        sample, method = os.path.join(*parts[:2]), os.path.join(*parts[:3])
        named.add(sample if whole(sample, parts[:2]) else method if whole(method, parts[:3]) else folder)
    return sorted(named)


# The cluster settings each clustering reads (stcore/cluster.py, run_cluster; a test holds every
# ClusterParams field named here): the features' (input, n_pcs; a group's correct) for every algorithm
# but own, which relabels nothing of them; each algorithm's own; refine_neighbors where refine is on;
# the choice of the number (auto...) where the slide's n_clusters is auto.
CLUSTER_FEATURES = ("input", "n_pcs", "correct")
CLUSTER_ALGORITHM = {"mclust": ("subset",), "gmm_tied": ("n_init",), "kmeans": ("n_init",),
                     "leiden": ("n_neighbors",), "louvain": ("n_neighbors",), "own": ()}
CLUSTER_AUTO = ("auto", "auto_range", "auto_measure", "auto_repeats", "subset")


def cluster_settings_read(cluster, n_clusters):
    """The settings of ``cluster`` (a method's merged cluster block) that its clustering of a slide
    with ``n_clusters`` (a number or 'auto') reads: a setting it does not read (``n_init`` under
    mclust, ``auto_repeats`` at a given number, ``refine_neighbors`` without refine) reruns nothing.
    An algorithm this table does not know keeps every setting."""
    algorithm = cluster.get("algorithm", "mclust")
    if algorithm not in CLUSTER_ALGORITHM:
        return dict(cluster)
    keys = {"algorithm", "refine", *CLUSTER_ALGORITHM[algorithm]}
    if algorithm != "own":
        keys.update(CLUSTER_FEATURES)
        if n_clusters == "auto":
            keys.update(CLUSTER_AUTO)
    if cluster.get("refine"):
        keys.add("refine_neighbors")
    return {key: value for key, value in cluster.items() if key in keys}


def record_file(stage, job):
    """Path of the time and memory record of job ``job`` of ``stage``."""
    return RECORD.format(stage=stage, job=job)


def job_run(wildcards):
    """(sample, name, seed) of the run a job is about, from its wildcards: ``name`` its method or
    combination (``ensemble``), ``seed`` its seed as written in the path, or 'consensus' for a job of
    the consensus of the seeds (no ``seed`` wildcard)."""
    name = getattr(wildcards, "method", None) or getattr(wildcards, "ensemble", None)
    return wildcards.sample, name, getattr(wildcards, "seed", None) or "consensus"


class Plan:
    """What a config asks of the sheet's slides.

    ``config``: the checked config (defaults filled); ``slides``: {id: row} of the sheet plus one
    row per group (:func:`stcore.plan.sheet.slides_and_groups`); ``groups``: name -> its slides;
    ``registry``: the facts of every model (:data:`stcore.registry.METHODS`).  Building it checks
    the names and references a later step would trip over, each refusal one :class:`PlanError`."""

    def __init__(self, config, slides, groups, registry):
        self.config, self.slides, self.groups, self.registry = config, slides, groups, registry
        self.samples = [s for s, row in slides.items() if row["format"] != "group"]   # the sheet's slides
        self.units = self.samples + list(groups)      # what the stages after qc run on
        check_names("method", list(config["methods"]), "config 'methods'")
        check_names("simulated slide", list(config.get("simulate") or {}), "config 'simulate'")
        # The slides the simulate rule writes, by name, and their paths as a sheet names them.
        self.simulated = list(config.get("simulate") or {})
        self._simulated_paths = {os.path.normpath(simulated_file(name)) for name in self.simulated}
        self.methods = list(config["methods"])
        self.seeds = [int(s) for s in config["seeds"]]
        self._check_train_from()
        # Named combinations of methods (config `ensembles`): name -> the methods whose labelings are combined.
        self.ensembles = {name: list(spec["methods"]) for name, spec in (config.get("ensembles") or {}).items()}
        check_names("method", list(self.ensembles), "config 'ensembles'")
        for name, members in self.ensembles.items():
            if name in config["methods"]:
                raise PlanError(f"config: ensemble '{name}' is also a method; both would write "
                                f"results/<sample>/{name}/. Fix: rename the ensemble")
            unknown = [m for m in members if m not in config["methods"]]
            if unknown:
                raise PlanError(f"config: ensemble '{name}' names {unknown}, which are not methods of the config. "
                                f"Fix: use methods of the config ({', '.join(config['methods'])})")
        for method in self.methods:
            self.facts_of(method)                      # an unknown model is named now, not in a job
            self._check_named_model(method)
            self._check_own_train(method)
        for name, members in self.ensembles.items():   # one that would run nowhere is named, not left out
            if not self.ensemble_seeds(name):
                raise PlanError(f"config: ensemble '{name}' combines its methods' labelings at one seed, but they "
                                "share no seed (" + "; ".join(f"{m}: {self.seeds_of(m)}" for m in members)
                                + "), so it would run nowhere. Fix: give its methods a seed in common "
                                "(their seeds:, or leave them out for the config's seeds)")
            if not self.ensemble_samples(name):
                raise PlanError(f"config: ensemble '{name}' combines its methods' labelings of one slide, but they "
                                "share no slide (" + "; ".join(f"{m}: {self.samples_of(m)}" for m in members)
                                + "), so it would run nowhere. Fix: give its methods a slide in common "
                                "(their samples:)")

    # --- the comparison ---------------------------------------------------------------------
    @property
    def compare(self):
        """The config's ``compare`` block (the schema's defaults filled in)."""
        return self.config.get("compare") or {}

    @property
    def figure_method(self):
        """The method the comparison's figures and claim are about (``compare.figure_method``)."""
        return self.compare.get("figure_method", "graphst")

    @property
    def agreement_method(self):
        """The method whose clustering R mclust clusters again for the agreement table
        (``compare.agreement_method``); None: no table."""
        return self.compare.get("agreement_method")

    # --- the slides -------------------------------------------------------------------------
    def n_clusters(self, sample):
        """The slide's n_clusters: a number, or 'auto' (chosen in the cluster step)."""
        value = self.slides[sample]["n_clusters"]
        return value if value == "auto" else int(value)

    def values(self, sample):
        """What the slide's X holds (the sheet's `values`: counts, normalized, log_normalized)."""
        return self.slides[sample].get("values") or "counts"

    def bin_size(self, sample):
        """The DNBs a side of a stereo slide's square bins: the sheet's `bin_size`, where empty
        :data:`stcore.formats.STEREO_BIN` (as the reader reads it); None for another format."""
        from ..formats import STEREO_BIN

        row = self.slides[sample]
        if row.get("format") != "stereo":
            return None
        return STEREO_BIN if row.get("bin_size") in ("", None) else row["bin_size"]

    def made_here(self, sample):
        """Whether the slide's file is one the simulate rule writes (:data:`SIMULATED` of a name of the
        config's ``simulate``): the DAG makes it before the slide's qc job reads it."""
        return os.path.normpath(self.slides[sample]["path"]) in self._simulated_paths

    def simulated_of(self, sample):
        """The name in the config's ``simulate`` of the slide the simulate rule writes for ``sample``, or None
        (:meth:`made_here`)."""
        path = os.path.normpath(self.slides[sample]["path"])
        return next((name for name in self.simulated if os.path.normpath(simulated_file(name)) == path), None)

    def raw_input(self, sample, slide_files):
        """The files the slide's qc job reads: every file the slide's reader opens (Visium positions,
        scale factors and images included), as far as they exist now (``slide_files(path, format)``,
        :func:`stcore.formats.slide_files`).  A slide the simulate rule makes, not there yet: its file.
        A slide whose files are missing: none (its qc job fails with the reader's one-line message)."""
        row = self.slides[sample]
        files = slide_files(row["path"], row["format"])
        if self.made_here(sample):
            return files or [row["path"]]
        return files

    def qc_input(self, sample, slide_files):
        """The slide's files as its qc job declares them: a slide the simulate rule makes, its file
        (:meth:`raw_input`), so that the rule runs first; none for every other slide, whose input stamp
        (:meth:`input_stamp`, the sha256 of every file :meth:`raw_input` names) stands for them.  Their
        content reruns the slide, through the stamp; their path does not (a folder moved or copied
        elsewhere and the sheet's path edited, the content the same), nor does their modification time.
        Declared as inputs, their paths reran the qc job when they changed (Snakemake reruns a job whose
        set of input files changed), and everything after it, training included."""
        return self.raw_input(sample, slide_files) if self.made_here(sample) else []

    def input_stamp(self, sample, keep_stamp, digest_stamp):
        """The slide's input stamp (:data:`stcore.plan.stamps.INPUT_STAMP`: the sha256 of its files,
        rewritten only when it changed, so a slide replaced by other content reruns whatever the
        files' modification times) as its qc job's input, or [] where there is none.
        ``keep_stamp(sample, keep)``: :meth:`stcore.plan.stamps.RunStamps.input`, which keeps it with
        ``keep(stamp, scratch)``; ``digest_stamp(path, format, stamp, scratch, report)``:
        :func:`stcore.formats.digest_stamp`, ``report`` the slide's qc report (the input_sha256 its
        results were made from).  A slide the simulate rule makes has none (``keep`` is
        None: the DAG tracks it), nor has a slide without files yet (its qc job names what is missing)."""
        row = self.slides[sample]
        keep = None if self.made_here(sample) else (
            lambda stamp, scratch: digest_stamp(row["path"], row["format"], stamp, scratch,
                                                f"results/{sample}/qc.json"))
        return keep_stamp(sample, keep) or []

    def input_digests(self, stamp_digest):
        """{sample: the input_sha256 its input stamp holds, or None}, of the sheet's slides
        (``stamp_digest(path)``: :func:`stcore.formats.stamp_digest`), as :meth:`repeated_slides` takes it."""
        return {sample: stamp_digest(INPUT_STAMP.format(sample=sample)) for sample in self.samples}

    # --- the methods ------------------------------------------------------------------------
    def merged(self, stage, method):
        """Settings of ``stage`` ('train' or 'cluster') for ``method``: the config's block with the
        method's own overrides on top."""
        return dict(self.config[stage], **self.config["methods"][method].get(stage, {}))

    def model_of(self, method):
        return self.config["methods"][method].get("model", "graphst")

    def facts_of(self, method):
        """The registry's facts of the model a config method trains (stcore/registry.py)."""
        model = self.model_of(method)
        if model not in self.registry:
            raise PlanError(f"config: method '{method}' has model '{model}', which is not a method of the "
                            f"registry. Fix: use one of {', '.join(self.registry)}")
        return self.registry[model]

    def is_peer(self, method):
        """Whether the method's model is a published method from an optional extra."""
        return not self.facts_of(method).builtin

    def source(self, method):
        """The method whose trained model ``method`` clusters: its ``train_from``, else itself."""
        return self.config["methods"][method].get("train_from", method)

    def seeds_of(self, method):
        """The method's own ``seeds`` when it sets them, else the config's."""
        return [int(s) for s in self.config["methods"][method].get("seeds", self.seeds)]

    def samples_of(self, method):
        """The slides the method runs on: its own ``samples`` when it sets them (else those of its
        train_from), else every slide of the sheet.  Groups run with the models that allow them
        only: a peer builds its own graph from coordinates, which would join a group's slides."""
        spec = self.config["methods"][method]
        chosen = spec.get("samples") or self.config["methods"][spec.get("train_from", method)].get("samples")
        units = self.units if self.facts_of(self.source(method)).allows_groups else self.samples
        if not chosen:
            return units
        unknown = sorted(set(chosen) - set(units))
        if unknown:
            raise PlanError(f"method '{method}': samples {unknown} are not in the sample sheet"
                            + (" (groups run the built-in models only)" if set(unknown) & set(self.groups) else "")
                            + f". Fix: use ids of the sheet ({', '.join(units)})")
        chosen = set(chosen)                           # a set: a job asks it at every DAG build, of every slide
        return [s for s in units if s in chosen]

    def run_settings(self, method, sample):
        """Every setting a run of ``method`` on ``sample`` depends on (its row's ``config_sha256``): qc,
        hvg, the graph's where its training reads the graph (the registry's ``reads_graph``: not the
        baseline's nor a peer's), the training's (its train_from's, :meth:`trained_with`) and those its
        clustering reads at the slide's n_clusters (:meth:`cluster_settings`).  A setting the run does
        not read changes neither its row nor the jobs that write it (evaluate, consensus, export)."""
        settings = {"qc": self.config["qc"], "hvg": self.config["hvg"]}
        if self.facts_of(self.source(method)).reads_graph:
            settings["graph"] = self.config["graph"]
        return settings | {"train": self.trained_with(method)["settings"],
                           "cluster": self.cluster_settings(method, sample)}

    def annotation(self, sample):
        """A group's annotation as the steps that read it take it: each of its slides' truth column
        ('' for none), sheet order; {} for a single slide (its own truth column)."""
        return {s: self.slides[s].get("truth", "") for s in self.groups.get(sample, ())}

    def annotation_inputs(self, sample):
        """The files a group's annotation is read from (each slide's qc.h5ad, :meth:`annotation`'s
        order); none for a single slide."""
        return [f"results/{s}/qc.h5ad" for s in self.annotation(sample)]

    def job_settings(self, stage, sample, method=None):
        """What the job of ``stage`` ('qc', 'group', 'hvg', 'graph', 'train', 'cluster', 'consensus',
        'ensemble', 'ensemble_consensus', 'agreement', 'table', 'simulate', 'annotation') for ``sample`` (and ``method``, or
        combination) takes from the sheet and the config, as its rule's params hold it: the content
        of its settings stamp (:mod:`.stamps`)."""
        if stage == "qc":               # not the truth column, which the steps that read it are given, nor the
            # path: the slide's input stamp holds what was read there (a folder moved elsewhere reruns nothing)
            row = self.slides[sample]
            return {"qc": self.config["qc"], "values": self.values(sample), "format": row.get("format", ""),
                    **({"bin_size": self.bin_size(sample)} if row.get("format") == "stereo" else {})}
        if stage == "hvg":
            return dict(self.config["hvg"], values=self.values(sample))
        if stage == "graph":
            return self.config["graph"]
        if stage == "train":
            return {"model": self.model_of(method), "train": self.train_settings(method, sample)}
        if stage == "cluster":          # and the training it clusters, where it is another method's (train_from)
            source = self.source(method)
            return {"cluster": self.cluster_settings(method, sample), "n_clusters": self.n_clusters(sample),
                    **({"trained_by": source} if source != method else {})}
        if stage == "annotation":       # the steps that read the annotation (evaluate, consensus, the combinations',
            # export): the slide's truth column, a group's each of its slides'
            return {"truth": self.slides[sample].get("truth", ""), "annotation": self.annotation(sample)}
        if stage == "group":            # its slides, in sheet order (their truth columns: the steps that read them)
            return {"slides": list(self.groups[sample])}
        # the steps that gather runs: which runs they gather (fewer seeds, methods or slides read no
        # newer file, so only the list says that they changed)
        if stage == "consensus":        # a method's seeds
            return {"seeds": self.seeds_of(method)}
        if stage == "ensemble":         # a combination's methods at one seed
            return {"methods": list(self.ensembles[method])}
        if stage == "ensemble_consensus":
            return {"methods": list(self.ensembles[method]), "seeds": self.ensemble_seeds(method)}
        if stage == "simulate":         # a simulated slide's settings (``sample``: its name)
            return (self.config.get("simulate") or {})[sample]
        if stage == "agreement":        # R mclust against the R-free clusterings: the runs, their numbers and truth
            method = self.agreement_method
            runs = self.agreement_runs(method)
            return {"runs": runs, "method": method, "r_mclust": self.compare.get("r_mclust", True),
                    "cluster": self.merged("cluster", method) if runs else {}}
        if stage == "table":            # every row's run, and the comparison the summary makes
            return {"runs": self.table_runs(), "compare": self.compare}
        raise ValueError(f"no settings stamp for stage {stage!r}")

    def unknown_target(self, targets, sheet, exists=os.path.exists):
        """The line that stops a run asked for a file under results/ of a slide or method the plan does
        not have (``targets``: the command line's, as Snakemake holds them; ``sheet``: the sample
        sheet's path), where Snakemake said only 'MissingRuleException: No rule to produce ...' (the
        rules' wildcard constraints match the plan's names only), or of a run of a method (or
        combination) on a slide it does not run on (its ``samples:``; a peer on a group), which the rules
        made without a word: a run the results table does not list, a peer trained on a group's slides
        joined as one; None where every target is one of the plan's, a rule's name, or a file that
        exists (kept as it is, as before)."""
        methods = self.methods + list(self.ensembles)
        for target in targets:
            path = str(target)
            path = os.path.normpath(os.path.relpath(path) if os.path.isabs(path) else path)
            parts = path.split(os.sep)
            if parts[0] != "results" or len(parts) < 3 or parts[1] in NOT_SLIDES \
                    or exists(path):
                continue
            sample = parts[1]
            if sample not in self.units:
                have = ", ".join(self.units) or "none"
                return (f"target {path}: sample '{sample}' is not in the sample sheet '{sheet}' (its samples: "
                        f"{have}), so no rule makes it. Fix: add a row for '{sample}' to '{sheet}' (or the "
                        f"sheet this config names), or ask for one of its samples")
            if len(parts) >= 4 and parts[2] not in methods:
                return (f"target {path}: method '{parts[2]}' is not in the config (its methods and combinations: "
                        f"{', '.join(methods)}), so no rule makes it. Fix: add '{parts[2]}' under methods in "
                        "the config, or ask for one of its methods")
            if len(parts) >= 4 and sample not in (runs_on := self.samples_of_run(parts[2])):
                return self._skipped_target(path, parts[2], sample, runs_on)
            if len(parts) >= 4:
                line = self._unplanned_run(path, parts[2], parts[3])
                if line:
                    return line
            if len(parts) >= 5 and parts[4] in TRAIN_FILES and parts[2] in self.methods \
                    and self.source(parts[2]) != parts[2]:
                source = self.source(parts[2])
                return (f"target {path}: method '{parts[2]}' clusters the training of '{source}' (its train_from), so "
                        f"it trains nothing itself and its clustering never reads this file. Fix: ask for "
                        + os.path.join(parts[0], sample, source, *parts[3:]) + ", the training it clusters")
            fmt = self.slides[sample]["format"]
            if len(parts) >= 5 and parts[4] == "domains.zarr" and fmt != "spatialdata":
                return (f"target {path}: domains.zarr holds the domains of a slide read from a SpatialData store "
                        f"(format spatialdata), annotating its shapes; sample '{sample}' is "
                        + ("a group of slides" if fmt == "group" else f"read as format {fmt}")
                        + ", so no export of the config makes it. Fix: ask for "
                        + os.path.join(*parts[:4], "domains.h5ad") + ", which holds its domains")
        return None

    def _unplanned_run(self, path, name, run):
        """The line of :meth:`unknown_target` for a target in run folder ``run`` (seed<N> or consensus) of
        method or combination ``name`` that the config does not run: a seed it does not run, a
        consensus of fewer than two seeds (one seed's labels made a 'consensus' without a word), or
        with the config's consensus off; None for a run of the plan or another folder."""
        kind = "combination" if name in self.ensembles else "method"
        seeds = self.seeds_of_run(name)
        where = (f"the seeds of each of its methods ({', '.join(self.ensembles[name])})" if kind == "combination"
                 else f"methods.{name}.seeds" if "seeds" in self.config["methods"][name] else "seeds")
        head = f"target {path}: {kind} '{name}'"
        if re.fullmatch(r"seed\d+", run) and int(run[4:]) not in seeds:
            return (f"{head} runs at seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} ({where} in the "
                    f"config), not {run[4:]}, so no run of the config makes it and results/table.tsv (and the "
                    f"consensus of its seeds) would not count it. Fix: add {run[4:]} to {where} in the config, or "
                    "ask for one of its seeds")
        if run == "consensus" and not self.config["consensus"]:
            return (f"{head}: the config's consensus is false, so it makes no consensus of the seeds. Fix: set "
                    "consensus: true in the config, or ask for one of its seeds (seed<N>)")
        own = self.seeds_run(name)              # a consensus combines its own seeds' labelings
        if run == "consensus" and len(own) < 2:
            return (f"{head} runs at one seed ({own[0]}: {where} in the config), and a consensus combines two "
                    f"seeds or more, so its 'consensus' would be seed {own[0]}'s labels. Fix: give it three seeds "
                    f"or more ({where}: [0, 1, 2]), or ask for seed{own[0]}")
        return None

    def samples_of_run(self, name):
        """The slides method or combination ``name`` runs on (:meth:`samples_of`, :meth:`ensemble_samples`;
        a method's, with those of the methods that cluster its training: train_from)."""
        if name in self.ensembles:
            return self.ensemble_samples(name)
        wanted = {s for m in self.methods if m == name or self.source(m) == name for s in self.samples_of(m)}
        return [s for s in self.units if s in wanted]

    def seeds_of_run(self, name):
        """The seeds method or combination ``name`` runs at (:meth:`seeds_run`; a method's, with those
        of the methods that cluster its training: train_from)."""
        if name in self.ensembles:
            return self.ensemble_seeds(name)
        return sorted({s for m in self.methods if m == name or self.source(m) == name for s in self.seeds_of(m)})

    def _skipped_target(self, path, name, sample, runs_on):
        """The line of :meth:`unknown_target` for a target of ``name``'s run on ``sample``, a slide it
        does not run on (``runs_on``: those it does)."""
        kind = "combination" if name in self.ensembles else "method"
        head = f"target {path}: {kind} '{name}' does not run on sample '{sample}' (it runs on {', '.join(runs_on)}"
        if kind == "method" and sample in self.groups and not self.facts_of(self.source(name)).allows_groups:
            return (f"{head}; model {self.model_of(self.source(name))} runs on no group: it builds its own graph "
                    f"from the coordinates, which would join the slides of group '{sample}'), so no run of the "
                    f"config makes it. Fix: ask for the group's slides alone ({', '.join(self.groups[sample])}), "
                    "or for a built-in method on the group")
        where = (f"the samples of its methods ({', '.join(self.ensembles[name])})" if kind == "combination"
                 else f"methods.{name if self.config['methods'][name].get('samples') else self.source(name)}.samples")
        return (f"{head}: {where} in the config), so no run of the config makes it and results/table.tsv would not "
                f"list it. Fix: add '{sample}' to {where} in the config, or ask for one of the slides it runs on")

    def missing_slides(self, missing_slide):
        """A warning line for each slide of the sheet whose files are not there now
        (``missing_slide(path, format)``: the problem and its fix, or None), except those the
        simulate rule makes (:meth:`made_here`); its qc job fails alone with the reader's line, so the
        warning says that the other slides run with --keep-going."""
        lines = []
        for sample in self.samples:                  # the sheet's slides (a group is made of them)
            row = self.slides[sample]
            if self.made_here(sample):
                continue
            missing = missing_slide(row["path"], row["format"])
            folder, beside = self.beside_the_sheet(row["path"], row["format"], missing_slide)
            if missing:
                fix = missing[1]
                if beside:
                    fix = (f"'{beside}' beside the sample sheet exists: set data_dir: {folder} in the config "
                           f"(the sheet's relative paths are then read from its folder), or write the path as '{beside}'")
                lines.append(f"WARNING sample '{sample}', file '{row['path']}': {missing[0]}; its jobs will fail "
                             f"(the other slides run with --keep-going). Fix: {fix}")
            elif beside and _differ(row["path"], beside, row["format"]):
                lines.append(f"WARNING sample '{sample}', file '{row['path']}': read from the folder the workflow runs "
                             f"in ({os.path.abspath(row['path'])}), not the sample sheet's, whose folder holds another "
                             f"'{beside}' (its size differs): the slide read may not be the one the sheet means. Fix: if "
                             f"it is '{beside}', set data_dir: {folder} in the config "
                             "(the sheet's relative paths are then read from its folder); else rename one of them")
        return lines

    def beside_the_sheet(self, path, fmt, missing_slide):
        """The slide ``path`` (relative, format ``fmt``) read from the sample sheet's folder, where
        the sheet lies in another folder than the one the workflow runs in, no data_dir is set, and
        a slide is there (``missing_slide`` finds nothing missing): (the sheet's folder, the path
        from it); else (None, None).  A sheet's relative paths are read from the folder the
        workflow runs in, and a sheet kept beside its slides names them from its own."""
        folder = os.path.dirname(str(self.config.get("samples") or ""))
        if not folder or self.config.get("data_dir") or os.path.isabs(path):
            return None, None
        beside = os.path.join(folder, path)
        if os.path.normpath(os.path.abspath(beside)) == os.path.normpath(os.path.abspath(path)):
            return None, None
        if os.path.exists(beside) and missing_slide(beside, fmt) is None:
            return folder, beside
        return None, None

    def samples_by_digest(self, digests):
        """{input_sha256: the sheet's samples whose files hold it, in the sheet's order} (``digests``: sample -> its
        input_sha256, or None where not known: left out)."""
        by_digest = {}
        for sample in self.samples:
            if digests.get(sample):
                by_digest.setdefault(digests[sample], []).append(sample)
        return by_digest

    def repeated_slides(self, digests):
        """A warning line for each set of the sheet's slides whose files hold the same data
        (``digests``: sample -> its input_sha256, or None where not known): a folder copied or named
        twice gives rows that only look like two slides.  Rows of one Stereo-seq GEM at other bin sizes
        are other slides, not warned of."""
        by_digest = self.samples_by_digest(digests)
        group_of = {s: g for g, members in self.groups.items() for s in members}
        lines = []
        # one GEM at two bin sizes (format stereo) is two slides: other spots, each the sum of other DNBs
        parts = [(digest, [s for s in same if self.bin_size(s) == size])
                 for digest, same in by_digest.items() for size in dict.fromkeys(map(self.bin_size, same))]
        for digest, same in parts:
            if len(same) < 2:
                continue
            named = f"samples {', '.join(repr(s) for s in same)} read the same data (input_sha256 {digest[:12]}...)"
            groups = [group_of.get(s, "") for s in same]
            if all(groups) and len(set(groups)) == len(groups):
                # one slide given a row per group (a row's group cell holds one group), as meant
                lines.append(f"WARNING {named}: one slide in groups {', '.join(groups)}, trained with each; it also "
                             f"runs alone under each id, so its runs alone are counted {len(same)} times in "
                             "results/table.tsv. Fix: nothing where the slide is meant for each group; count its "
                             "runs alone once when comparing slides")
            elif len({os.path.realpath(self.slides[s]["path"]) for s in same}) == 1:
                # one file named by several rows (written two ways: relative and absolute, with './')
                paths = ", ".join(f"'{self.slides[s]['path']}' ({s})" for s in same)
                differ = [c for c in ("n_clusters", "truth", "values")
                          if len({str(self.slides[s].get(c, "")) for s in same}) > 1]
                keep = (f"nothing where they are meant as runs of one slide with other {' and '.join(differ)}; else "
                        if differ else "")
                lines.append(f"WARNING {named}: one file, which the sample sheet names {len(same)} times ({paths}), "
                             f"so the slide is trained {len(same)} times under {len(same)} ids and counted "
                             f"{len(same)} times in results/table.tsv. Fix: {keep}keep one of the rows "
                             f"{', '.join(same)} in the sample sheet")
            else:
                lines.append(f"WARNING {named}: their rows will be the same slide's, counted {len(same)} times. Fix: "
                             "check their paths in the sample sheet (a folder copied under two names?)")
        return lines

    def trained_with(self, method):
        """The model and train settings of ``method``'s training (its train_from's), for its record
        (the export step shows what the model reads: :func:`stcore.methods.recorded_train`): the
        keys of the train block that model reads (:meth:`read_train`)."""
        source = self.source(method)
        return {"model": self.model_of(source), "settings": self.read_train(source)}

    def train_graph(self, method, sample):
        """The spatial graph the train job of ``method`` on ``sample`` reads: ``graph.npz`` for a
        model that reads it (the registry's ``reads_graph``), else none, so that a changed ``graph:``
        setting reruns neither the baseline nor a peer (which builds its own from the coordinates)."""
        return [f"results/{sample}/graph.npz"] if self.facts_of(method).reads_graph else []

    def cluster_settings(self, method, sample):
        """The cluster settings the cluster job of ``method`` on ``sample`` is given and reruns for:
        those of :meth:`merged` that its algorithm reads at the slide's n_clusters
        (:func:`cluster_settings_read`); the others take ClusterParams' defaults, unread."""
        return cluster_settings_read(self.merged("cluster", method), self.n_clusters(sample))

    def read_train(self, method):
        """The settings of :meth:`merged` ``('train', method)`` that the method's model reads (the
        registry's ``train_keys``: the baseline reads ``pca_comps`` alone, the graph model not
        ``pca_comps``, a peer ``peer`` alone): a setting the model does not read reruns nothing."""
        return train_settings_read(self.model_of(method), self.merged("train", method))

    def train_settings(self, method, sample):
        """The train settings of a run: those its model reads (:meth:`read_train`).  A method that
        trains for the slide's ``n_clusters``, or whose own clustering searches for it and is
        reported by a method of the config (:meth:`own_labels_reported`), gets it too; the others'
        settings are left without it (so a slide's other number reruns only their clustering)."""
        settings = self.read_train(method)
        if (self.facts_of(method).needs_n_clusters(self.own_labels_reported(method))
                and self.n_clusters(sample) != "auto"):
            settings["n_clusters"] = self.n_clusters(sample)
        return settings

    def own_labels_reported(self, method):
        """Whether a method of the config reports the own labels of ``method``'s training
        (``cluster.algorithm: own``, the method itself or one that trains from it)."""
        return any(self.source(m) == method and self.merged("cluster", m)["algorithm"] == "own"
                   for m in self.methods)

    def train_env(self, method):
        """Conda env of the train job: the model's own (envs/peers.yaml for the peers, on the CPU),
        else the CUDA env when train.device is cuda, else the CPU env."""
        env = self.facts_of(method).env
        if env != "stcore":
            return f"../envs/{env}.yaml"
        return "../envs/stcore-cuda.yaml" if self.on_cuda() else "../envs/stcore.yaml"

    def on_cuda(self):
        return str(self.config["train"]["device"]).startswith("cuda")

    def train_gpus(self, method):
        """One GPU for train when the run trains on CUDA (the switch that also picks the CUDA
        env); none for the peers, which run on the CPU."""
        return 1 if self.on_cuda() and not self.is_peer(method) else 0

    def idle_gpu(self, asked):
        """The line to say when train jobs are given ``asked`` GPUs each (``set-resources train:
        gpu=...``, as profiles/slurm-gpu sets) while train.device is not cuda: a --config on the
        command line replaces the profile's ``train={device: cuda}``, and the jobs would take the CPU
        env and train beside an idle GPU; and when the run trains on CUDA, where the config has published
        methods (peers), whose train jobs run on the CPU beside the GPU they are given.  None when no GPU is
        asked for, or the run trains on CUDA without a peer."""
        try:
            asked = float(asked or 0)
        except (TypeError, ValueError):
            return None
        if asked <= 0:
            return None
        peers = [m for m in self.methods if self.is_peer(m) and self.source(m) == m]     # those that train
        if self.on_cuda():          # the published methods train on the CPU (train_gpus gives them none)
            return None if not peers else (
                f"warning: train jobs are given {asked:g} GPU each (set-resources train: gpu, as profiles/slurm-gpu "
                f"sets), those of {', '.join(peers)} too: published methods, which train on the CPU "
                "(envs/peers.yaml), so each holds a GPU that stays idle and waits for a GPU node. Fix: delete gpu "
                "under set-resources: train: in the profile (and train: where nothing else is under it; train.device cuda asks one GPU for the train jobs of "
                f"the graph model and none for {', '.join(peers)}), or run them under profiles/slurm")
        if not any(not self.is_peer(m) for m in self.methods):
            return None
        return (f"warning: train jobs are given {asked:g} GPU each (set-resources train: gpu, as profiles/slurm-gpu "
                f"sets) but train.device is {self.config['train']['device']}, not cuda: they take the CPU env "
                "(envs/stcore.yaml) and the GPU stays idle; a --config on the command line replaces the profile's "
                "train={device: cuda}. Fix: add train='{device: cuda}' to the --config (or train: {device: cuda} "
                "to the config file)")

    def figure_slides(self, methods):
        """The slides (not groups) that one of ``methods`` runs on, in sheet order: those the comparison
        draws their UMAP or loss curves of (a method's ``samples`` may leave a slide out)."""
        return [s for s in self.samples if any(m in self.methods and s in self.samples_of(m) for m in methods)]

    def figure_files(self, kind, enabled=True, slides=None):
        """The comparison's figure ``kind`` of each slide of ``slides`` (default: every slide of the
        sheet), as [(slide, path)] (:data:`FIGURE`); none where the figure is not ``enabled``."""
        if not enabled:
            return []
        return [(s, FIGURE.format(kind=kind, sample=s)) for s in (self.samples if slides is None else slides)]

    def train_output(self, name, sample, method, seed):
        """File ``name`` of the training run that ``method`` clusters on ``sample`` at ``seed``: its
        train_from's run (:meth:`source`), else its own."""
        return run_file(name, sample, self.source(method), seed)

    def loss_methods(self):
        """Methods that train the graph model themselves: their loss curves are drawn."""
        return [m for m, spec in self.config["methods"].items()
                if "train_from" not in spec and spec.get("model", "graphst") == "graphst"]

    # --- the files of the runs ------------------------------------------------------------------
    def run_outputs(self, name, methods=None):
        """One file ``name`` per (sample, method, seed of that method)."""
        return [run_file(name, sample, method, seed) for method in (methods or self.methods)
                for sample in self.samples_of(method) for seed in self.seeds_of(method)]

    def training_outputs(self, name, methods):
        """File ``name`` of the training each run of ``methods`` uses (its ``train_from``'s, else its own), per
        (sample, method, seed of that method): the report's UMAP of a method that clusters another's
        training asked for a ``train.npz`` of its own, so the workflow trained it again as a model of its
        own (the default graphst, whatever its ``train_from`` trains)."""
        return list(dict.fromkeys(run_file(name, sample, self.source(method), seed) for method in methods
                                  for sample in self.samples_of(method) for seed in self.seeds_of(method)))

    def consensus_outputs(self, name):
        """One file ``name`` per (sample, method) whose seeds are combined (two seeds or more), and
        per (sample, ensemble) run at two seeds or more (every member at every seed combined: the
        slide's one answer)."""
        if not self.config["consensus"]:
            return []
        return ([consensus_file(name, sample, method) for method in self.methods
                 if len(self.seeds_of(method)) > 1 for sample in self.samples_of(method)]
                + [consensus_file(name, sample, ensemble) for ensemble in self.ensembles
                   if len(self.ensemble_seeds(ensemble)) > 1 for sample in self.ensemble_samples(ensemble)])

    def ensemble_samples(self, name):
        """The slides every method of ensemble ``name`` runs on (sheet order)."""
        members = [set(self.samples_of(m)) for m in self.ensembles[name]]
        return [s for s in self.units if all(s in m for m in members)]

    def ensemble_seeds(self, name):
        """The seeds every method of ensemble ``name`` runs (the first method's order)."""
        members = self.ensembles[name]
        return [s for s in self.seeds_of(members[0]) if all(s in self.seeds_of(m) for m in members)]

    def ensemble_outputs(self, name):
        """One file ``name`` per (sample, ensemble, seed)."""
        return [run_file(name, sample, ensemble, seed) for ensemble in self.ensembles
                for sample in self.ensemble_samples(ensemble) for seed in self.ensemble_seeds(ensemble)]

    def spatialdata_outputs(self):
        """``domains.zarr`` beside every ``domains.h5ad`` of a slide read from a SpatialData store
        (runs, consensus and combinations): its domains annotating the store's own shapes."""
        stores = {s for s in self.samples if self.slides[s]["format"] == "spatialdata"}
        return [f.removesuffix("domains.h5ad") + "domains.zarr" for f in self.result_files("domains.h5ad")
                if f.split("/")[1] in stores]

    def result_files(self, name):
        """File ``name`` of every result of the plan: each run (:meth:`run_outputs`), each consensus of
        seeds (:meth:`consensus_outputs`) and each combination at a seed (:meth:`ensemble_outputs`)."""
        return self.run_outputs(name) + self.consensus_outputs(name) + self.ensemble_outputs(name)

    # --- one run's files and record, as its consensus and export jobs read them -------------------
    def members(self, name):
        """The methods whose labelings ``name`` combines: a combination's (config ``ensembles``), else
        the method alone."""
        return list(self.ensembles[name]) if name in self.ensembles else [name]

    def seeds_run(self, name):
        """The seeds ``name`` runs at: a combination's (:meth:`ensemble_seeds`), else the method's."""
        return self.ensemble_seeds(name) if name in self.ensembles else self.seeds_of(name)

    def run_record(self, sample, name, seed):
        """What the files of a run of method or combination ``name`` on ``sample`` at ``seed`` (a seed,
        or 'consensus': the consensus of its seeds) record of it (the consensus and export steps'
        ``run``): the seed as a number, what trained it (a method's train_from, else itself; a
        combination's methods joined by '+') and, for a consensus, the seeds it combines."""
        consensus = seed == "consensus"
        record = {"sample": sample, "method": name, "seed": "consensus" if consensus else int(seed),
                  "trained_by": "+".join(self.ensembles[name]) if name in self.ensembles else self.source(name)}
        if consensus:
            record["consensus_of"] = ",".join(map(str, self.seeds_run(name)))
        return record

    def embedding_training(self, sample, name, seed):
        """The ``train.npz`` whose embedding a run of ``name`` on ``sample`` at ``seed`` keeps (its
        export's, a consensus's): that of its first method's training (its train_from's), at ``seed``,
        or at the first seed it runs at for a consensus ('consensus')."""
        seed = self.seeds_run(name)[0] if seed == "consensus" else seed
        return run_file("train.npz", sample, self.source(self.members(name)[0]), seed)

    def member_trainings(self, sample, name, seed):
        """The ``train.npz`` of each method of ``name`` on ``sample`` at ``seed`` (a consensus: at the
        first seed it runs at), their train_from's where they set one."""
        seed = self.seeds_run(name)[0] if seed == "consensus" else seed
        return [run_file("train.npz", sample, self.source(m), seed) for m in self.members(name)]

    def seed_files(self, file, sample, name, seed="consensus"):
        """File ``file`` of each seed run of ``name`` on ``sample`` that its consensus combines
        (``seed``: 'consensus', the job's)."""
        return [run_file(file, sample, name, s) for s in self.seeds_run(name)]

    def member_files(self, file, sample, name, seed):
        """File ``file`` of each method of ``name`` on ``sample``: at ``seed``, or at every seed it
        runs at for a consensus ('consensus'), method by method."""
        seeds = self.seeds_run(name) if seed == "consensus" else [seed]
        return [run_file(file, sample, m, s) for m in self.members(name) for s in seeds]

    def run_names(self, sample, name, seed):
        """The names of the labelings a run of ``name`` combines, as its domains.h5ad lists them
        ('<method> seed <seed>', in :meth:`member_files`' order)."""
        seeds = self.seeds_run(name) if seed == "consensus" else [seed]
        return [f"{m} seed {s}" for m in self.members(name) for s in seeds]

    def consensus_settings(self, sample, name, seed):
        """The settings a consensus job of ``name`` on ``sample`` reruns for (its ``settings`` param):
        the runs' it combines (:meth:`run_settings`, a combination's per method) and, for the consensus
        of the seeds (``seed`` 'consensus'), the seeds."""
        runs = ({m: self.run_settings(m, sample) for m in self.ensembles[name]} if name in self.ensembles
                else self.run_settings(name, sample))
        return {"runs": runs} if seed != "consensus" else {"runs": runs, "seeds": self.seeds_run(name)}

    def members_trained_with(self, name):
        """:meth:`trained_with` of each method of combination ``name``."""
        return {m: self.trained_with(m) for m in self.members(name)}

    def members_cluster_settings(self, name, sample):
        """:meth:`cluster_settings` of each method of combination ``name`` on ``sample``."""
        return {m: self.cluster_settings(m, sample) for m in self.members(name)}

    def group_inputs(self, group):
        """The ``qc.h5ad`` of each slide of ``group``, joined by its group job."""
        return [f"results/{s}/qc.h5ad" for s in self.groups[group]]

    # --- the comparison's figures and agreement (rules/report.smk, agreement.smk) --------------
    @property
    def figure_source(self):
        """The method whose training the comparison's UMAP draws: the figure method's train_from (else
        itself); the figure method as named where it is not a method of the config (no UMAP)."""
        method = self.figure_method
        return self.source(method) if method in self.methods else method

    def umap_trainings(self):
        """The ``train.npz`` the comparison's UMAP is drawn from (:meth:`training_outputs` of the figure
        method); none where the figure method is not one of the config."""
        method = self.figure_method
        return self.training_outputs("train.npz", [method]) if method in self.methods else []

    def umap_slides(self):
        """The slides the comparison draws a UMAP of: those the figure method runs on; none where
        ``compare.umap`` is off or the figure method is not one of the config."""
        method = self.figure_method
        return self.figure_slides([method]) if self.compare.get("umap", True) and method in self.methods else []

    def loss_files(self):
        """The ``losses.tsv`` of every run of :meth:`loss_methods` (none without such a method)."""
        methods = self.loss_methods()
        return self.run_outputs("losses.tsv", methods=methods) if methods else []

    def loss_slides(self):
        """The slides the comparison draws the loss curves of (:meth:`loss_methods`' slides)."""
        return self.figure_slides(self.loss_methods())

    def figure_samples(self):
        """Each slide of the sheet with its annotation column, as the comparison's figures read them."""
        return [{"sample": s, "truth": self.slides[s]["truth"]} for s in self.samples]

    def method_seeds(self):
        """{method: its seeds} of every method of the config."""
        return {m: self.seeds_of(m) for m in self.methods}

    def agreement_files(self, key):
        """The files (``key``: 'npz' or 'hvg') the agreement table reads, each once, sorted
        (:meth:`agreement_runs` of the agreement method)."""
        return sorted({r[key] for r in self.agreement_runs(self.agreement_method)})

    def agreement_cluster(self):
        """The cluster settings the agreement clusters with again: the agreement method's merged block
        (:meth:`merged`); {} where the table has no run."""
        method = self.agreement_method
        return self.merged("cluster", method) if self.agreement_runs(method) else {}

    def page_figures(self, figure_method):
        """The domain maps the report's first page shows, as {sample, method, seed, path} of a
        ``domains.png``: where the config combines methods (``ensembles``), the first combination's
        answer for each slide it runs on (its one vote over every member at every seed, seed
        ``consensus``; with one seed, or with ``consensus: false``, which makes no such vote, each
        seed's vote, of which the page picks the median seed by ARI); on the other slides, or without a
        combination, every seed of ``figure_method`` (the first method when it is not one of the
        config; on a slide it does not run on, the first method that does), of which the page picks
        each slide's median seed by ARI."""
        figures = []
        for sample in self.units:
            shown = self.page_maps(sample, figure_method)
            if shown is not None:
                name, seeds = shown
                figures += [{"sample": sample, "method": name, "seed": seed,
                             "path": consensus_file("domains.png", sample, name) if seed == "consensus" else
                             run_file("domains.png", sample, name, seed)} for seed in seeds]
        return figures

    def page_maps(self, sample, figure_method):
        """The method or combination, and its seeds, whose maps of ``sample`` the report's first page shows
        (:meth:`page_figures`), as (name, seeds); None where no method runs on the slide.  One slide's
        answer, found for that slide alone: a job's map reference and label (:meth:`map_reference`,
        :meth:`map_label`) ask it at every DAG build, and building the page's figures of every slide for
        each job took time quadratic in the slides."""
        if self.ensembles:
            name = next(iter(self.ensembles))
            if all(sample in self.samples_of(m) for m in self.ensembles[name]):
                return name, self.answer_seeds(name)
        first = figure_method if figure_method in self.methods else self.methods[0]
        # a slide the figure method does not run on (its ``samples``): the first method that does
        method = next((m for m in [first, *self.methods] if sample in self.samples_of(m)), None)
        return None if method is None else (method, self.seeds_of(method))

    def map_reference(self, sample, name, seed):
        """The ``labels.tsv`` whose colours the ``domains.png`` of a run of ``name`` on ``sample`` at
        ``seed`` (a seed, or 'consensus') matches, as a list for its job's input: on a slide without an
        annotation, one run's domains, so that one region has one colour on every map of the slide.  That
        run is the lowest seed of the first of this package's own methods (the registry's ``builtin``: the
        figure method first, then the config's order) that runs on the slide, which needs no extra and
        reads what every method reads, so that a method failing alone (an extra not installed, a peer
        refused for its memory) leaves the other runs' maps and files to be made; where no such method runs
        on it, the map the report's first page shows for it (:meth:`page_maps`: the first combination's
        answer, else the figure method's lowest seed).  None ([]) on an annotated slide (its maps match the
        annotation), for the reference run itself (its colours are its own), and where the slide has no
        such map."""
        if self.slides[sample].get("truth"):
            return []
        first = self.figure_method if self.figure_method in self.methods else self.methods[0]
        own = [m for m in dict.fromkeys([first, *self.methods])
               if sample in self.samples_of(m) and self.facts_of(m).builtin]
        if own:
            ref = {"method": own[0], "seed": min(self.seeds_of(own[0]), key=int)}
        else:
            shown = self.page_maps(sample, self.figure_method)
            if shown is None:
                return []
            method, seeds = shown
            ref = {"method": method, "seed": "consensus" if "consensus" in seeds else min(seeds, key=int)}
        if ref["method"] == name and str(ref["seed"]) == str(seed):
            return []
        return [consensus_file("labels.tsv", sample, ref["method"]) if ref["seed"] == "consensus"
                else run_file("labels.tsv", sample, ref["method"], ref["seed"])]

    def map_label(self, sample, name, seed):
        """The report's first label of a ``domains.png`` of ``name`` on ``sample`` at ``seed`` (a seed, or
        'consensus'), where the config combines methods (``ensembles``): ``{'map': 'answer'}`` for the
        answer's map the report's first page shows (:meth:`page_figures`: the first combination's vote
        over its seeds, else each seed's vote), ``{'map': 'other'}`` for every other map; the report lists
        a slide's maps sorted by their labels, first label first, so the answer comes first ('answer'
        before 'other'; by method it came after banksy, cellcharter and graphst).  {} without a
        combination: the labels as they were."""
        if not self.ensembles:
            return {}
        shown = self.page_maps(sample, self.figure_method) if name == next(iter(self.ensembles)) else None
        answer = shown is not None and shown[0] == name and str(seed) in map(str, shown[1])
        return {"map": "answer" if answer else "other"}

    def answer_seeds(self, name):
        """The seeds of combination ``name`` whose maps the report's first page shows as its answer
        (:meth:`page_figures`): its one vote over every seed, 'consensus', where it makes one (two seeds or
        more, ``consensus`` on), else each of its seeds."""
        seeds = self.ensemble_seeds(name)
        return ["consensus"] if len(seeds) > 1 and self.config["consensus"] else seeds

    def table_runs(self):
        """Every (slide, method, seed) with the files its row of the results table is read from:
        the evaluate step's metrics, the labels, and the train and cluster jobs' records."""
        runs = []
        for sample in self.units:
            group = sample if sample in self.groups else ""
            for method in self.methods:
                if sample not in self.samples_of(method):
                    continue
                source = self.source(method)
                for seed in self.seeds_of(method):
                    runs.append({
                        "sample": sample, "group": group, "method": method, "seed": seed, "trained_by": source,
                        "metrics": run_file("metrics.tsv", sample, method, seed),
                        "labels": run_file("labels.tsv", sample, method, seed),
                        "train_record": record_file("train", RUN_JOB.format(sample=sample, method=source, seed=seed)),
                        "cluster_record": record_file("cluster", RUN_JOB.format(sample=sample, method=method, seed=seed)),
                    })
                if self.config["consensus"] and len(self.seeds_of(method)) > 1:
                    # it costs its seeds' runs (their seconds were 'n/a' in the summary)
                    runs.append({"sample": sample, "group": group, "method": method, "seed": "consensus",
                                 "trained_by": source, "members": [method], "member_seeds": self.seeds_of(method),
                                 "metrics": consensus_file("metrics.tsv", sample, method),
                                 "labels": consensus_file("labels.tsv", sample, method),
                                 "train_record": None, "cluster_record": None})
        for name, members in self.ensembles.items():
            seeds = self.ensemble_seeds(name)
            for sample in self.ensemble_samples(name):
                group = sample if sample in self.groups else ""
                for seed in seeds:
                    runs.append({"sample": sample, "group": group, "method": name,
                                 "seed": seed, "trained_by": "+".join(members), "members": members,
                                 "metrics": run_file("metrics.tsv", sample, name, seed),
                                 "labels": run_file("labels.tsv", sample, name, seed),
                                 "train_record": None, "cluster_record": None})
                if self.config["consensus"] and len(seeds) > 1:
                    runs.append({"sample": sample, "group": group, "method": name, "seed": "consensus",
                                 "trained_by": "+".join(members), "members": members, "member_seeds": seeds,
                                 "metrics": consensus_file("metrics.tsv", sample, name),
                                 "labels": consensus_file("labels.tsv", sample, name),
                                 "train_record": None, "cluster_record": None})
        return runs

    def table_files(self, key):
        """File ``key`` ('metrics' or 'labels') of each row of the results table (:meth:`table_runs`)."""
        return [run[key] for run in self.table_runs()]

    def stale_output(self, stage, exists=os.path.exists):
        """The first file of a run that the output of ``stage``'s job lists and that is gone, or None:
        of the results table (results/table.tsv there), a run's labels or metrics, its folder deleted
        to make it again.  Snakemake keeps an output newer than the inputs that remain, so
        ``snakemake results/table.tsv`` (or ``compare``) said "Nothing to be done" and the table kept
        the deleted run's row; its settings stamp, rewritten, makes it again, with the run."""
        if stage != "table" or not exists("results/table.tsv"):
            return None
        return next((path for path in self.table_files("labels") + self.table_files("metrics")
                     if not exists(path)), None)

    def table_records(self):
        """The train and cluster jobs' records the results table reads its times from, each once, sorted."""
        return sorted({run[k] for run in self.table_runs() for k in ("train_record", "cluster_record") if run[k]})

    def prep_records(self):
        """The records of each slide's and group's qc (a group's: its group job), hvg and graph jobs,
        stage by stage, as the results table reads them."""
        return [record_file("group" if stage == "qc" and s in self.groups else stage, s)
                for stage in ("qc", "hvg", "graph") for s in self.units]

    def agreement_table(self):
        """The agreement table the results table reads, where it has a run (:meth:`agreement_runs`);
        none ([]) without."""
        return "results/compare/agreement.tsv" if self.agreement_runs(self.agreement_method) else []

    def page_figure_files(self):
        """The ``domains.png`` of :meth:`page_figures` (of the figure method)."""
        return [f["path"] for f in self.page_figures(self.figure_method)]

    def planned_folders(self):
        """The run folders of this plan (normalised paths): every folder whose ``domains.h5ad`` a job
        of the plan writes (runs, consensus, combinations) and every folder a row of the results
        table is read from."""
        files = self.result_files("domains.h5ad") + [run["labels"] for run in self.table_runs()]
        return {os.path.normpath(os.path.dirname(f)) for f in files}

    def stale_runs(self, found, stamp_digest=None):
        """A warning line, or none, naming the result folders of ``found`` that are not runs of this
        plan (:func:`stale_folders`): left by an earlier config or sample sheet, they stay on disk
        beside the current runs, and results/table.tsv lists the current runs only.  Nothing is
        deleted; the line says how.  ``stamp_digest(path)`` (:func:`stcore.formats.stamp_digest`):
        a folder of a slide not in the sheet whose input stamp holds the data of one that is (its id
        changed in the sheet: ``d`` -> ``0d``) is said to be that slide, under :meth:`renamed_slides`."""
        stale = stale_folders(self, found)
        if not stale:
            return []
        more = f" and {len(stale) - SHOWN} more" if len(stale) > SHOWN else ""
        them = "them if they are" if len(stale) > 1 else "it if it is"
        renamed = "".join(f"{line}. " for line in self.renamed_slides(stale, stamp_digest))
        return [f"WARNING {len(stale)} result folder{'s' if len(stale) > 1 else ''} not of this config's runs "
                f"(left by an earlier config or sample sheet): {', '.join(stale[:SHOWN])}{more}; {renamed}"
                f"results/table.tsv lists this config's runs only. "
                f"Fix: delete {them} not wanted (rm -r {' '.join(stale)})"]      # every one: a command to paste

    def renamed_slides(self, stale, stamp_digest=None):
        """For each slide folder results/<old> among ``stale`` (:func:`stale_folders`) whose input stamp
        (:data:`~.stamps.INPUT_STAMP`, kept after the slide left the sheet) holds the input_sha256 the
        stamp of a slide of the sheet holds (:meth:`input_digests`): a phrase saying it is that slide
        under its earlier id; none without ``stamp_digest``."""
        if stamp_digest is None:
            return []
        current = self.samples_by_digest(self.input_digests(stamp_digest))
        phrases = []
        for folder in stale:
            parts = os.path.normpath(folder).split(os.sep)
            if len(parts) != 2 or parts[1] in self.units:
                continue
            digest = stamp_digest(INPUT_STAMP.format(sample=parts[1]))
            if digest in current:
                now = ", ".join(repr(s) for s in current[digest])
                phrases.append(f"{folder} holds the same slide as sample{'s' if len(current[digest]) > 1 else ''} "
                               f"{now} (input_sha256 {digest[:12]}...) under an earlier id: was the id changed in "
                               "the sample sheet? this run made the slide's results again under the new one")
        return phrases

    def agreement_runs(self, method):
        """(slide, seed) runs of the agreement method, with the files its features come from."""
        if method is None or method not in self.methods:
            return []
        source = self.source(method)
        return [{"sample": s, "seed": seed, "truth": self.slides[s]["truth"], "n_clusters": self.n_clusters(s),
                 "npz": run_file("train.npz", s, source, seed), "hvg": f"results/{s}/hvg.h5ad"}
                for s in self.samples for seed in self.seeds_of(method)
                if self.n_clusters(s) != "auto"]     # the agreement compares clusterings at one G

    # --- checks a later step would otherwise fail -------------------------------------------------
    def _check_own_train(self, method):
        """A method's own ``train:`` block holds only what its model reads: a peer reads ``train.peer``
        alone (its package's settings), a built-in model every key but ``peer``; the rest of the block
        was ignored without a word (``stagate: {train: {epochs: 50}}`` trained STAGATE's 1000 epochs)."""
        own = (self.config["methods"][method] or {}).get("train") or {}
        model = self.model_of(method)
        where = f"config: method '{method}' (model {model})"
        if self.is_peer(method):
            ignored = sorted(key for key in own if key != "peer")
            if ignored:
                raise PlanError(f"{where} reads only train.peer, the settings of its package, so its train."
                                + ", train.".join(ignored) + " would be ignored. Fix: give them as the package "
                                f"names them under methods.{method}.train.peer (e.g. {{n_epochs: 500}} for stagate, "
                                "{max_epochs: 100} for spagcn, {epochs: 300} for graphst_pkg; stcore/registry.py "
                                "lists each package's keys)")
            given = self.merged("train", method).get("peer")      # what its train job reads
            unknown = unknown_peer_settings(model, given) if model in PEER_SETTINGS else []
            if unknown:
                block = f"methods.{method}.train.peer" if "peer" in own else "train.peer"
                raise PlanError(f"{where}: unknown {block} setting(s) {unknown}; its package takes no such "
                                f"argument, so its train job would refuse them. Fix: {peer_settings_fix(model, unknown, given, method)}")
        elif "peer" in own:
            raise PlanError(f"{where} reads no train.peer (the settings of a peer method's package), so it would "
                            f"be ignored. Fix: set its settings as keys of methods.{method}.train (epochs, lr, ...), "
                            "or give the method the peer model they are for")

    def missing_extras(self, find_spec):
        """One warning line per method whose extra is not installed where its train jobs run, with
        the command that installs it, said when the run starts rather than by the train job after the
        slides' qc, hvg and graph ran.  The run goes on: only that method's jobs fail (a missing extra
        fails its own jobs alone; with --keep-going the other methods finish).  ``find_spec``:
        :func:`importlib.util.find_spec` of the environment the jobs run in (the Snakefile asks only
        when the jobs run in its own: under ``--sdm conda`` a job's package is in the job's environment)."""
        lines = []
        for method in self.methods:
            facts = self.facts_of(method)
            if self.source(method) == method and facts.requires and find_spec(facts.requires) is None:
                lines.append(f"warning: method '{method}' (model {self.model_of(method)}) needs the Python package "
                             f"'{facts.requires}', which is not installed, so its train jobs will fail (the other "
                             f"methods run). Fix: {facts.install}, or leave the method out of the config's methods")
        return lines

    def ensemble_gaps(self):
        """A warning line for each combination that leaves out a slide of the sheet, or a seed, that
        one of its methods runs but another does not (their ``samples:`` or ``seeds:``): it runs on
        the slides and at the seeds they all share, so such a slide has no answer of it, and at one
        seed left there is no vote over its seeds (the slide's one answer).  Groups are not named:
        the peers never run on them.  A combination at the config's one seed: a note of where each
        slide's answer is (``seed<seed>/``; no ``consensus/``, where the README names it)."""
        lines = []
        for name, members in self.ensembles.items():
            shared = set(self.ensemble_samples(name))
            left = [s for s in self.samples if s not in shared and any(s in self.samples_of(m) for m in members)]
            if left:
                lacking = [m for m in members if any(s not in self.samples_of(m) for s in left)]
                more = f" and {len(left) - SHOWN} more" if len(left) > SHOWN else ""
                lines.append(
                    f"warning: ensemble '{name}' runs on the slides all its methods run, so slide"
                    f"{'s' if len(left) > 1 else ''} {', '.join(left[:SHOWN])}{more} (not among the samples: of "
                    f"method{'s' if len(lacking) > 1 else ''} {', '.join(lacking)}) "
                    f"{'have' if len(left) > 1 else 'has'} no answer of '{name}' (no results/<sample>/{name}/, no "
                    f"row in results/table.tsv). Fix: run each of its methods on those slides (leave their samples: "
                    f"out for every slide), or leave the slides out of the sample sheet")
            seeds = self.ensemble_seeds(name)
            every = list(dict.fromkeys(s for m in members for s in self.seeds_of(m)))
            out = [s for s in every if s not in seeds]
            if out:
                lacking = [m for m in members if any(s not in self.seeds_of(m) for s in out)]
                at = (f"it runs at seed {seeds[0]} alone, and no results/<sample>/{name}/consensus/ (the slide's one "
                      "answer, a vote over two seeds or more) is made" if len(seeds) == 1 and self.config["consensus"]
                      else f"it runs at seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}")
                lines.append(
                    f"warning: ensemble '{name}' votes at the seeds all its methods run, so seed"
                    f"{'s' if len(out) > 1 else ''} {', '.join(map(str, out))} (not among the seeds: of "
                    f"method{'s' if len(lacking) > 1 else ''} {', '.join(lacking)}) "
                    f"{'are' if len(out) > 1 else 'is'} left out: {at}. Fix: give its methods the same seeds "
                    "(leave their seeds: out for the config's seeds)")
            elif len(seeds) == 1:
                # one seed: no consensus/ folder, where the README names the answer
                lines.append(f"note: ensemble '{name}' runs at one seed ({seeds[0]}), so each slide's answer is "
                             f"results/<sample>/{name}/seed{seeds[0]}/domains.h5ad; results/<sample>/{name}/consensus/ "
                             "(one vote over every member at every seed) is made with two seeds or more "
                             "(seeds: [0, 1, 2])")
        return lines

    def two_labeling_votes(self):
        """A warning line for each vote the config asks for over exactly two labelings, which gives
        one of them unchanged (:func:`stcore.consensus.two_labelings`): a combination of two methods
        at each seed, and a method's consensus of two seeds."""
        from ..consensus import two_labelings
        pairs = [(f"ensemble {name!r} (at each seed)", f"method {members[0]}",
                  "combine three methods or more (the README: graphst, banksy, cellcharter)")
                 for name, members in self.ensembles.items() if len(members) == 2]
        if self.config["consensus"]:
            pairs += [(f"the consensus of method {method!r}", f"seed {seeds[0]}",
                       "give it three seeds or more (seeds: [0, 1, 2])")
                      for method in self.methods if len(seeds := self.seeds_of(method)) == 2]
        return [f"warning: {two_labelings(*pair)}" for pair in pairs]
        return lines

    def _check_named_model(self, method):
        """A method named as a model of the registry other than the default (``banksy: {}``,
        ``expression: {cluster: ...}``) that gives no ``model`` (nor ``train_from``) would train the
        default model, graphst, and be reported under the other model's name: refused."""
        spec = self.config["methods"][method] or {}
        named = method.lower()
        if ("model" not in spec and "train_from" not in spec and named in self.registry
                and named != self.model_of(method)):
            raise PlanError(f"config: method '{method}' gives no model, so it would train the default model, "
                            f"{self.model_of(method)}, reported under the name of model '{named}'. Fix: write "
                            f"{method}: {{model: {named}}} (methods given with --config replace the config's "
                            "methods whole: give each its model)")

    def _check_train_from(self):
        methods = self.config["methods"]
        for name, spec in methods.items():
            source = spec.get("train_from")
            if source is None:
                continue
            if source not in methods:
                raise PlanError(f"method '{name}': train_from '{source}' is not a method in the config. "
                                f"Fix: use one of {sorted(m for m in methods if m != name)}")
            if source == name or methods[source].get("train_from") is not None:
                raise PlanError(f"method '{name}': train_from '{source}' must name a method that trains "
                                "itself. Fix: point train_from at a method without train_from")
            # what a method that clusters another's training says of the training would be ignored
            if spec.get("train"):
                raise PlanError(f"method '{name}': train_from '{source}' clusters the training of '{source}', so "
                                f"its own train settings ({spec['train']}) would be ignored. Fix: set them in "
                                f"methods.{source}.train, or drop train_from to train '{name}' itself")
            if "model" in spec and spec["model"] != methods[source].get("model", "graphst"):
                raise PlanError(f"method '{name}': train_from '{source}' clusters the training of '{source}' "
                                f"(model {methods[source].get('model', 'graphst')}), so its model "
                                f"{spec['model']} would be ignored. Fix: drop its model, or drop train_from "
                                f"to train model {spec['model']}")

    def check_settings(self, compare_written):
        """Config values the schema cannot judge alone but a later step would refuse.
        ``compare_written``: the `compare:` keys the user wrote (defaults are not checked)."""
        graph = self.config["graph"]
        if graph["mode"] == "radius" and graph.get("radius") is None:
            raise PlanError("config: graph.mode is radius but graph.radius is not set. Fix: set graph.radius "
                            "(in the units of the slides' coordinates) or use graph.mode knn")
        if graph["mode"] == "knn" and graph.get("radius") is not None:
            raise PlanError(f"config: graph.radius {graph['radius']:g} is set, but graph.mode is knn, which joins each "
                            f"spot to its graph.n_neighbors nearest: the radius would be ignored. Fix: set graph.mode "
                            "radius to join the spots within it, or delete graph.radius")
        asked = [self.n_clusters(s) for s in self.units]
        largest = max([k for k in asked if k != "auto"], default=2)
        for method in self.methods:
            cluster = self.merged("cluster", method)
            where = f"config: method '{method}'" if self.config["methods"][method].get("cluster") else "config"
            lo, hi = cluster["auto_range"]
            if lo > hi:
                raise PlanError(f"{where}: cluster.auto_range {[lo, hi]} runs from high to low. "
                                f"Fix: write it as [{hi}, {lo}]")
            most = max(largest, hi if "auto" in asked else 2)
            if cluster["algorithm"] == "mclust" and cluster["subset"] <= most:
                raise PlanError(f"{where}: cluster.subset {cluster['subset']} must exceed the largest number of "
                                f"domains asked for ({most}). Fix: raise cluster.subset (mclust's default: 2000)")
            facts = self.facts_of(self.source(method))
            own = cluster["algorithm"] == "own"
            if own and not facts.own_labels:
                raise PlanError(f"{where}: cluster.algorithm own, but model "
                                f"'{self.model_of(self.source(method))}' has no clustering of its own. "
                                "Fix: use it with a model that clusters itself ("
                                + ", ".join(m for m, f in self.registry.items() if f.own_labels) + "), "
                                "or another cluster.algorithm")
            # a slide correction where it corrects nothing: the method's own, or the config's for every method
            own_correct = "correct" in (self.config["methods"][method].get("cluster") or {})
            grouped = [m for m in (self.methods if not own_correct else [method])
                       if set(self.samples_of(m)) & set(self.groups)]
            if cluster.get("correct", "none") != "none" and not grouped:
                who = f"method '{method}' runs on no group" if own_correct else "no method runs on a group"
                raise PlanError(f"config: {'method ' + repr(method) + ': ' if own_correct else ''}cluster.correct "
                                f"{cluster['correct']} removes slide effects within a group of slides (the sample "
                                f"sheet's group column), but {who}, so it would change nothing. "
                                "Fix: give the slides to cluster together one group in the sample sheet, or set "
                                "cluster.correct none")
            unknown = [s for s in self.samples_of(method) if self.n_clusters(s) == "auto"]
            if unknown and cluster["algorithm"] not in ("mclust", "own"):      # (own: the model's facts, below)
                raise PlanError(f"config: method '{method}': n_clusters auto (the sample sheet's {', '.join(unknown)}) "
                                f"is chosen with mclust's mixture; cluster.algorithm {cluster['algorithm']} has none. "
                                "Fix: use cluster.algorithm mclust for it, or give the number in the sample sheet's "
                                "n_clusters")
            refusal = facts.auto_refusal(own)
            if unknown and refusal:
                raise PlanError(f"config: method '{method}': model '{self.model_of(self.source(method))}' cannot run on "
                                f"{', '.join(unknown)} (n_clusters auto in the sample sheet): {refusal[0]}. "
                                f"Fix: {refusal[1]}")
        compare = self.compare
        for key in ("figure_method", "baseline", "agreement_method"):     # (a missing ablation: the claim reads n/a)
            name = compare.get(key)
            if key in compare_written and name not in self.methods:
                raise PlanError(f"config: compare.{key} '{name}' is not a method of the config. "
                                f"Fix: use one of {self.methods}")


def _differ(path, other, fmt):
    """Whether the slides at ``path`` and ``other`` (format ``fmt``) are other files: not the
    same files, and their reader's files differ in number or size (copies of one slide pass)."""
    from ..formats import slide_files

    mine, theirs = slide_files(path, fmt), slide_files(other, fmt)
    if len(mine) != len(theirs):
        return True
    if all(os.path.samefile(a, b) for a, b in zip(mine, theirs)):
        return False
    return [os.path.getsize(f) for f in mine] != [os.path.getsize(f) for f in theirs]

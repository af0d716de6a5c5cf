# Glue between the Snakefile and the workflow's plan (stcore/plan: standard library only, unit-tested
# in tests/test_plan.py).  Here: the config and sheet checked against their schemas, the plan built
# from them, and the names the rules read.  No file of rules names a model; what the workflow knows of
# each is in stcore/registry.py.
import importlib
import importlib.util
import os
import sys
import time
import types

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


def _stcore_part(name):
    """stcore.<name> loaded without running stcore/__init__.py (the Snakefile does not import the
    scientific stack): the package's folder under a name of its own."""
    if "_stcore" not in sys.modules:
        package = types.ModuleType("_stcore")
        package.__path__ = [os.path.join(workflow.basedir, "stcore")]
        sys.modules["_stcore"] = package
    return importlib.import_module(f"_stcore.{name}")


PlanError = _stcore_part("plan").PlanError
FORMATS = _stcore_part("formats")
REGISTRY = _stcore_part("registry").METHODS      # what the workflow knows of each model, declared once
_sheet = _stcore_part("plan.sheet")
_runs = _stcore_part("plan.runs")
_res = _stcore_part("plan.resources")
_failures = _stcore_part("plan.failures")
_settings = _stcore_part("plan.settings")
_stamps = _stcore_part("plan.stamps")


# The config as the plan reads it (stcore/plan/settings.py, checked_config): a key given twice, a renamed
# key, a value the schema refuses are one line each.  A --configfile's methods, combinations and
# simulated slides replace the demo's (config.yaml); the methods hold what the user wrote, without defaults.
_CONFIG_SCHEMA = os.path.join(workflow.basedir, "stcore", "schemas", "config.schema.yaml")    # the package's
try:
    _checked, _raw_compare = _settings.checked_config(
        config, workflow.config_settings.overwrite_config, workflow.configfiles, _CONFIG_SCHEMA,
        lambda c: validate(c, _CONFIG_SCHEMA), tuple(REGISTRY), dict(workflow.config_settings.config))
except PlanError as exc:
    raise WorkflowError(str(exc)) from None
config.update(_checked)


_SHEET_SCHEMA = os.path.join(workflow.basedir, "schemas", "samples.schema.yaml")


def _validated_rows(rows):
    """The sample sheet's rows validated by Snakemake (a data frame, one record a row), the schema's
    defaults filled in (stcore/plan/sheet.py, checked_sheet, names a bad cell)."""
    table = pd.DataFrame(rows, dtype=object)
    validate(table, _SHEET_SCHEMA)
    return table.to_dict("records")


try:
    os.environ.update(_settings.allocator_environment(os.environ))    # every job inherits it
    _rows = _sheet.checked_sheet(config["samples"], workflow.configfiles, _SHEET_SCHEMA, _validated_rows)
    _slides, GROUPS = _sheet.slides_and_groups(_rows, config["samples"], config.get("data_dir") or "")
    PLAN = _runs.Plan(config, _slides, GROUPS, REGISTRY)
    PLAN.check_settings(_raw_compare)
    TABLE_RUNS = PLAN.table_runs()
    COMPARE, FIGURE_METHOD, AGREEMENT_METHOD = PLAN.compare, PLAN.figure_method, PLAN.agreement_method
    PAGE_FIGURES = PLAN.page_figures(FIGURE_METHOD)        # the domain maps on the report's first page
    AGREEMENT_RUNS = PLAN.agreement_runs(AGREEMENT_METHOD)
except PlanError as exc:
    raise WorkflowError(str(exc)) from None

SAMPLES, UNITS, METHODS, ENSEMBLES = PLAN.samples, PLAN.units, PLAN.methods, PLAN.ensembles
LOSS_METHODS = PLAN.loss_methods()
RUN, CONSENSUS, RUN_JOB = _runs.RUN, _runs.CONSENSUS, _runs.RUN_JOB
run_file, consensus_file, record_file = _runs.run_file, _runs.consensus_file, _runs.record_file
simulated_file, choices = _runs.simulated_file, _runs.choices
run_outputs, consensus_outputs, ensemble_outputs = PLAN.run_outputs, PLAN.consensus_outputs, PLAN.ensemble_outputs
spatialdata_outputs = PLAN.spatialdata_outputs
ensemble_samples, ensemble_seeds, method_seeds = PLAN.ensemble_samples, PLAN.ensemble_seeds, PLAN.seeds_of


wildcard_constraints:
    sample=choices(UNITS),
    method=choices(METHODS),
    ensemble=choices(ENSEMBLES),
    seed=r"\d+",


# A slide whose files are missing is said now, so that `-n` shows it; its qc job fails with the same
# line and, with --keep-going, the other slides run (docs/bad_input.md).
if workflow.is_main_process:
    # a file asked for of a slide or method the plan does not have: named (Snakemake: 'No rule to produce')
    _unknown = PLAN.unknown_target(_stamps.command_line_targets(sys.argv), config["samples"])
    if _unknown:
        raise WorkflowError(_unknown)
    for _line in PLAN.missing_slides(FORMATS.missing_slide):
        print(_line, file=sys.stderr)
    # a method whose extra is not installed: said now (its train jobs fail; the others run).  Asked only
    # where the jobs run in this environment: under --sdm a job's package is in the job's own
    if not (workflow.deployment_settings and workflow.deployment_settings.deployment_method):
        for _line in PLAN.missing_extras(importlib.util.find_spec):
            print(_line, file=sys.stderr)
    for _line in PLAN.two_labeling_votes():      # a vote of two labelings gives one of them unchanged
        print(_line, file=sys.stderr)
    for _line in PLAN.ensemble_gaps():           # slides or seeds a combination leaves out
        print(_line, file=sys.stderr)
    # GPUs given to train (profiles/slurm-gpu's set-resources) while it trains on the CPU: said once
    _idle = PLAN.idle_gpu(_res.given(workflow.resource_settings.overwrite_resources, "train", "gpu"))
    if _idle:
        print(_idle, file=sys.stderr)


# Input functions: the plan, asked about the job's wildcards.
def slide(key):
    """The sheet's ``key`` of the job's slide (path, format, truth)."""
    return lambda wildcards: PLAN.slides[wildcards.sample][key]


def slide_n_clusters(wildcards):
    return PLAN.n_clusters(wildcards.sample)


def slide_values(wildcards):
    return PLAN.values(wildcards.sample)


def seed_param(wildcards):
    return int(wildcards.seed)


def method_model(wildcards):
    return PLAN.model_of(wildcards.method)


def cluster_settings(wildcards):
    return PLAN.cluster_settings(wildcards.method, wildcards.sample)


def train_settings(wildcards):
    return PLAN.train_settings(wildcards.method, wildcards.sample)


def train_graph(wildcards):
    return PLAN.train_graph(wildcards.method, wildcards.sample)


def train_output(name):
    """File ``name`` of the training run that the job's method uses (its train_from, else its own)."""
    return lambda wildcards: PLAN.train_output(name, wildcards.sample, wildcards.method, wildcards.seed)


def of_run(part, *args):
    """``PLAN.<part>(*args, sample, name, seed)`` of the job's run (stcore/plan/runs.py, job_run: its
    method or combination, its seed or 'consensus'), as an input function or param."""
    return lambda wildcards: getattr(PLAN, part)(*args, *_runs.job_run(wildcards))


def map_labels(**labels):
    """The report's labels of a job's domains.png: ``labels``, after the answer's mark where the config
    combines methods (Plan.map_label: 'answer' or 'other'), so that the answer is listed first."""
    return lambda wildcards: PLAN.map_label(*_runs.job_run(wildcards)) | labels


def env_for_train(wildcards):
    return PLAN.train_env(wildcards.method)


def train_gpus(wildcards):
    return PLAN.train_gpus(wildcards.method)


def raw_input(wildcards):
    """The slide's files as its qc job's inputs (stcore/plan/runs.py, Plan.qc_input): a simulated slide's
    file; none for a slide with an input stamp, which stands for every file its reader opens: their
    content reruns the slide, their path (the folder moved, the sheet edited) and modification time do not."""
    return PLAN.qc_input(wildcards.sample, FORMATS.slide_files)


# The input and settings stamps (stcore/plan/stamps.py, RunStamps).  A run that executes no job (-n,
# --dag, --summary, --report) writes them to a temporary folder.  `snakemake --report` alone draws the
# files as they are: before any run it is refused now; drawn from results that this config, its sheet
# or a slide would rerun (another run's), it is refused while the DAG is built.  Each stamp written
# while the DAG is built is told to Snakemake's listing of its folder (RunStamps' exists).
def _listed(path):
    """Tell Snakemake's listing of the folders (its IOCache's exists_local, not a public API: Snakemake
    9.27) that the stamp ``path`` exists; nothing where a Snakemake keeps no such listing."""
    listing = getattr(getattr(workflow, "iocache", None), "exists_local", None)
    try:
        listing[path] = True
    except (TypeError, AttributeError, KeyError):
        pass


REPORT_ONLY = workflow.is_main_process and _stamps.report_only(sys.argv)
_refused = REPORT_ONLY and _stamps.report_before_run(runs=PLAN.result_files("domains.png"))   # every map drawn
if _refused:
    raise WorkflowError(_refused)
STAMPS = _stamps.RunStamps(lambda: workflow.executor_plugin is not None and not workflow.dryrun, REPORT_ONLY,
                           config=_stamps.config_named(workflow.config_settings.configfiles,
                                                       getattr(workflow.config_settings, "config_args", None)),
                           exists=_listed)


def input_stamp(wildcards):
    """results/records/input/<sample>.json: the sha256 of the slide's files (its input_sha256), checked
    on every run and rewritten only when it changed, so a slide replaced by other content reruns
    whatever the files' modification times (cp -p, rsync -a, tar x and unzip keep older ones).
    An unchanged file is not read again (its size, mtime, inode and ctime are kept in the stamp).
    None for a slide without files yet or made by the simulate rule (Plan.input_stamp)."""
    return PLAN.input_stamp(wildcards.sample, STAMPS.input, FORMATS.digest_stamp)


def settings_stamp(stage):
    """results/records/settings/<stage>/<job>.json: the job's settings (stcore/plan/stamps.py), an
    input rewritten only when they changed, so a results/ folder copied without .snakemake/ reruns
    the jobs whose settings this config changed."""
    def stamp(wildcards):
        sample, method, job = _stamps.stamp_job(wildcards)
        return STAMPS.settings(stage, job, PLAN.job_settings(stage, sample, method),
                               stale=PLAN.stale_output(stage) if workflow.is_main_process else None)
    return stamp


# Resources (stcore/plan/resources.py, JobResources): memory and minutes from the slide's size.
# The rules name them: mem_mb=RESOURCES.qc_mem_mb, runtime=RESOURCES.qc_runtime, ...
RESOURCES = _res.JobResources(PLAN)


def compare_figures(kind, enabled=True, slides=None):
    """One figure ``kind`` per slide (of ``slides``, default every slide; Plan.figure_files), flagged
    for the HTML report."""
    return [report(path, category="Figures", subcategory=kind, labels={"slide": s, "figure": kind})
            for s, path in PLAN.figure_files(kind, enabled, slides)]


# When jobs fail, repeat the one-line message each failed step wrote to its log at the end of the
# console output, where the user looks first (stcore/plan/failures.py).
_RUN_STARTED = time.time()


def _slurm_cluster():
    """What sinfo says of the cluster under the slurm executor ({} elsewhere): stcore/plan/resources.py."""
    return _res.slurm_cluster(workflow)


def _unschedulable():
    """A job no node or partition can ever run is refused before anything is submitted; a retry none can
    run of a job whose attempt 1 fits, and a partition down, are warned of (stcore/plan/resources.py,
    check_slurm)."""
    lines, warnings = _res.check_slurm(workflow)
    if lines:
        raise WorkflowError("\n".join(lines))
    for _line in warnings:
        print(_line, file=sys.stderr)


onstart:       # the slides' digests are known once the DAG is built: the same data under two names is said
    for _line in PLAN.repeated_slides(PLAN.input_digests(FORMATS.stamp_digest)):
        print(_line, file=sys.stderr)
    _unschedulable()


onsuccess:     # result folders of runs this config does not have (an earlier config's, a sheet's) are said
    for _line in PLAN.stale_runs(_runs.result_folders("results"), FORMATS.stamp_digest):
        print(_line, file=sys.stderr)


onerror:       # FAILED <log>: <line> per failed job, then a table an earlier run wrote is said to be so (no table: where the finished runs are)
    for _line in _failures.end_of_run_lines(_RUN_STARTED, snakemake_logs=log, cluster=_slurm_cluster):
        print(_line, file=sys.stderr)

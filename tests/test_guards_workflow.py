"""Guards of the workflow (docs/bad_input.md): results follow the content of their inputs, every
failed job is named with its cause, sample sheets and configs as spreadsheets and programs save
them, detected genes are non-zero values, outputs honour the umask."""
from __future__ import annotations

import json
import os
import re
import shutil
import stat

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from slides import REPO, snakemake, tiny_slide, workdir, write
from stcore.errors import InputError
from stcore.qc import QCParams, prepare_slide, qc_masks

HEADER = "sample\tpath\tformat\tn_clusters\ttruth"


# --- results follow content -------------------------------------------------------------------------

def test_the_digest_stamp_hashes_a_file_only_when_it_changed(tmp_path, monkeypatch):
    """The stamp is rewritten (fresh mtime) only when the content changed; an unchanged file is
    not read again; a copy with an older mtime (cp -p) is still seen, by its ctime and inode."""
    from stcore import formats

    hashed = []
    real = formats._hash_file
    monkeypatch.setattr(formats, "_hash_file", lambda h, f: (hashed.append(f), real(h, f)))
    slide = write(tiny_slide(seed=1), tmp_path / "s.h5ad")
    stamp = str(tmp_path / "results/records/input/s.json")
    assert formats.digest_stamp(str(slide), "h5ad", stamp) == stamp
    assert json.loads(open(stamp).read())["input_sha256"] == formats.input_digest(slide)
    first = os.stat(stamp).st_mtime_ns
    hashed.clear()
    formats.digest_stamp(str(slide), "h5ad", stamp)
    assert hashed == [] and os.stat(stamp).st_mtime_ns == first            # unchanged: not read

    os.utime(slide, ns=(first + 10**9, first + 10**9))                     # touched, same content
    formats.digest_stamp(str(slide), "h5ad", stamp)
    assert hashed and os.stat(stamp).st_mtime_ns == first                  # read, stamp kept as it was

    other = write(tiny_slide(seed=2), tmp_path / "other.h5ad")
    os.utime(other, (1e9, 1e9))                                            # 2001
    shutil.copy2(other, slide)                                             # cp -p: old mtime, new content
    hashed.clear()
    formats.digest_stamp(str(slide), "h5ad", stamp)
    assert hashed and os.stat(stamp).st_mtime_ns > first
    assert json.loads(open(stamp).read())["input_sha256"] == formats.input_digest(other)
    assert formats.digest_stamp(str(tmp_path / "gone.h5ad"), "h5ad", str(tmp_path / "x.json")) is None


def test_an_input_stamp_written_again_reruns_the_slide_only_where_its_results_name_other_content(tmp_path):
    """`rm -r results/records/input` (the input stamps), then a run: the stamp written again
    was dated now, newer than every result, so without Snakemake's records (.snakemake/ deleted, results
    copied) all 9 jobs of a finished one-slide run reran, trained again.  Where the slide's qc report
    names this content it is dated 1970 (it was dated as the slide's files, so a folder copied without
    -p, its files newer than the results, reran every job: 10 of 10 on a SpatialData store); where the
    report names other content (the slide replaced with an older modification time, cp -p), it is dated
    now and the slide reruns; with no report yet, dated as the files."""
    from stcore import formats

    slide = write(tiny_slide(seed=1), tmp_path / "s.h5ad")
    os.utime(slide, (1e9, 1e9))                                            # 2001
    stamp, report = tmp_path / "results/records/input/s.json", tmp_path / "results/s/qc.json"
    assert formats.digest_stamp(str(slide), "h5ad", str(stamp), None, str(report)) == str(stamp)
    assert os.stat(stamp).st_mtime == 1e9                                  # first run: no qc report yet
    report.parent.mkdir(parents=True)
    report.write_text(json.dumps({"input_sha256": formats.input_digest(slide)}))
    stamp.unlink()
    later = os.stat(report).st_mtime + 60
    os.utime(slide, (later, later))                                        # copied without -p: newer than the results
    formats.digest_stamp(str(slide), "h5ad", str(stamp), None, str(report))
    assert os.stat(stamp).st_mtime == 0                                    # the content the results were made from
    scratch = formats.digest_stamp(str(slide), "h5ad", str(stamp), str(tmp_path / "scratch"), str(report))
    assert scratch == str(stamp)                                           # a dry run: kept, nothing written
    stamp.unlink()
    shown = formats.digest_stamp(str(slide), "h5ad", str(stamp), str(tmp_path / "scratch"), str(report))
    assert os.stat(shown).st_mtime == 0 and not stamp.exists()             # a dry run: the same, elsewhere

    report.write_text(json.dumps({"input_sha256": "other content"}))       # results of another slide's content
    formats.digest_stamp(str(slide), "h5ad", str(stamp), None, str(report))
    assert os.stat(stamp).st_mtime > 1e9 + 10**8                           # dated now: the slide reruns
    written = os.stat(stamp).st_mtime_ns
    formats.digest_stamp(str(slide), "h5ad", str(stamp), None, str(report))
    assert os.stat(stamp).st_mtime_ns == written                           # kept as it is once there


def test_a_dry_run_writes_no_input_stamp(tmp_path):
    """snakemake -n wrote results/records/input/<sample>.json (and every settings stamp): a dry run
    writes nothing under results/, and a slide replaced by other content is still shown as rerun
    through a stamp in the dry run's scratch folder."""
    from stcore import formats

    slide = write(tiny_slide(seed=1), tmp_path / "s.h5ad")
    workdir(tmp_path, {"s": ("s.h5ad", 2, "domain")}, epochs=2)
    dry = snakemake(tmp_path, "--cores", "1", "--dry-run", timeout=300)
    assert dry.returncode == 0, (dry.stdout + dry.stderr)[-3000:]
    assert "rule qc:" in dry.stdout and not (tmp_path / "results").exists()

    stamp, scratch = str(tmp_path / "results/records/input/s.json"), str(tmp_path / "scratch")
    formats.digest_stamp(str(slide), "h5ad", stamp)                        # a real run's stamp
    kept = open(stamp).read(), os.stat(stamp).st_mtime_ns
    os.utime(slide, (1e9, 1e9))                                            # touched, same content
    assert formats.digest_stamp(str(slide), "h5ad", stamp, scratch) == stamp
    write(tiny_slide(seed=2), slide)                                       # other content
    shown = formats.digest_stamp(str(slide), "h5ad", stamp, scratch)
    assert shown.startswith(scratch) and json.loads(open(shown).read())["input_sha256"] == formats.input_digest(slide)
    assert (open(stamp).read(), os.stat(stamp).st_mtime_ns) == kept


def test_one_slides_steps_asked_for_directly_run_in_a_fresh_folder(tmp_path):
    """`snakemake results/a/qc.json results/b/qc.json` in a fresh folder (a slide's qc checked before a
    whole run) stopped with MissingInputException for results/records/input/b.json: the stamps are
    written while the DAG is built, and Snakemake had listed their folder when a's was the only one;
    a second call worked.  Both slides' steps run, and a dry run of their train jobs plans them."""
    for name, seed in (("a", 1), ("b", 2)):
        write(tiny_slide(seed=seed), tmp_path / f"{name}.h5ad")
    workdir(tmp_path, {"a": ("a.h5ad", 2, "domain"), "b": ("b.h5ad", 2, "domain")}, epochs=2)
    dry = snakemake(tmp_path, "--dry-run", "results/a/graphst/seed0/train.npz",
                    "results/b/graphst/seed0/train.npz", timeout=300)
    assert dry.returncode == 0, (dry.stdout + dry.stderr)[-3000:]
    assert dry.stdout.count("rule train:") == 2 and not (tmp_path / "results").exists()
    run = snakemake(tmp_path, "--cores", "1", "results/a/qc.json", "results/b/qc.json", timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert (tmp_path / "results/a/qc.json").exists() and (tmp_path / "results/b/qc.json").exists()


def test_a_target_of_a_slide_the_sheet_does_not_have_is_named(tmp_path):
    """`snakemake -n results/c/qc.json` where the sheet has no slide c (a typo): Snakemake said only
    'MissingRuleException: No rule to produce results/c/qc.json'."""
    write(tiny_slide(seed=1), tmp_path / "s.h5ad")
    workdir(tmp_path, {"s": ("s.h5ad", 2, "domain")}, epochs=2)
    dry = snakemake(tmp_path, "--dry-run", "results/c/qc.json", timeout=120)
    assert dry.returncode == 1 and "MissingRuleException" not in dry.stdout + dry.stderr
    assert ("target results/c/qc.json: sample 'c' is not in the sample sheet 'samples.tsv' (its samples: s), so "
            "no rule makes it. Fix: add a row for 'c' to 'samples.tsv'") in dry.stdout + dry.stderr


@pytest.mark.slow
def test_a_slide_replaced_with_an_older_mtime_reruns(tmp_path):
    """A slide file replaced by other content whose modification time is older (cp -p, rsync -a,
    tar x, unzip) reruns its qc and everything after it; the table names the new content."""
    from stcore.formats import input_digest
    from stcore.io import read_tsv

    slide = write(tiny_slide(seed=1), tmp_path / "s.h5ad")
    workdir(tmp_path, {"s": ("s.h5ad", 2, "domain")}, epochs=2)
    first = snakemake(tmp_path, "--cores", "1", timeout=600)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    before = read_tsv(tmp_path / "results/table.tsv")
    assert before["input_sha256"].tolist() == [input_digest(slide)]
    nothing = snakemake(tmp_path, "--cores", "1", "--dry-run", timeout=300)
    assert "Nothing to be done" in nothing.stdout + nothing.stderr

    replacement = tmp_path / "copied_from_elsewhere.h5ad"
    write(tiny_slide(n_side=9, seed=7), replacement)
    os.utime(replacement, (1e9, 1e9))                 # 2001: older than every result
    shutil.copy2(replacement, slide)                  # what cp -p does
    assert os.stat(slide).st_mtime < os.stat(tmp_path / "results/s/qc.h5ad").st_mtime
    again = snakemake(tmp_path, "--cores", "1", timeout=600)
    console = again.stdout + again.stderr
    assert again.returncode == 0, console[-3000:]
    for rule in ("qc", "hvg", "graph", "train", "cluster", "evaluate", "table"):
        assert re.search(rf"rule {rule}:", console), rule
    after = read_tsv(tmp_path / "results/table.tsv")
    assert after["input_sha256"].tolist() == [input_digest(replacement)] != before["input_sha256"].tolist()
    assert json.loads((tmp_path / "results/s/qc.json").read_text())["spots_in"] == 81      # the 9 x 9 slide


@pytest.mark.slow
def test_a_slide_file_made_newer_with_the_same_content_reruns_nothing(tmp_path):
    """A slide file over 1 MB (a real slide's size) touched, or copied again from where it came
    (cp without -p, a download of the same file): Snakemake compares the checksum of a newer input of
    at most 1 MB only, so every job of the slide reran, training included, for the same content.  Its
    input stamp follows the content: nothing reruns; other content, newer, reruns the slide."""
    slide = write(tiny_slide(n_side=12, n_genes=3000, seed=1), tmp_path / "s.h5ad")
    assert slide.stat().st_size > 1_000_000
    workdir(tmp_path, {"s": ("s.h5ad", 2, "domain")}, epochs=2)
    first = snakemake(tmp_path, "--cores", "1", timeout=600)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    later = os.stat(tmp_path / "results/table.tsv").st_mtime + 60
    os.utime(slide, (later, later))                                              # touch
    touched = snakemake(tmp_path, "--cores", "1", "--dry-run", timeout=300)
    assert "Nothing to be done" in touched.stdout + touched.stderr, (touched.stdout + touched.stderr)[-3000:]
    copy = tmp_path / "download.h5ad"
    shutil.copyfile(slide, copy)
    shutil.copyfile(copy, slide)                                                 # cp: same bytes, newer time
    copied = snakemake(tmp_path, "--cores", "1", "--dry-run", timeout=300)
    assert "Nothing to be done" in copied.stdout + copied.stderr, (copied.stdout + copied.stderr)[-3000:]
    write(tiny_slide(n_side=12, n_genes=3000, seed=5), slide)                   # other content
    changed = snakemake(tmp_path, "--cores", "1", "--dry-run", timeout=300)
    shown = changed.stdout + changed.stderr
    for rule in ("qc", "hvg", "graph", "train", "cluster", "evaluate", "table"):
        assert re.search(rf"^rule {rule}:", shown, re.M), (rule, shown[-3000:])


def _one_slide_run(tmp_path, path_and_format):
    """A finished run (2 epochs) of one slide ``s``, its sheet's path and format cells ``path_and_format``; the sheet."""
    workdir(tmp_path, {}, epochs=2)
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(f"{HEADER}\ns\t{path_and_format}\t2\t\n")
    first = snakemake(tmp_path, "--cores", "2", timeout=600)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    return sheet


def _nothing_reruns(tmp_path, *args):
    run = snakemake(tmp_path, "--cores", "2", *args, timeout=300)
    said = run.stdout + run.stderr
    assert run.returncode == 0 and "Nothing to be done" in said, (args, said[-3000:])


@pytest.mark.slow
def test_slides_moved_or_copied_to_another_folder_rerun_nothing(tmp_path):
    """A slide's data folder moved (mv data data2) or copied (cp -r) elsewhere and the sheet's paths
    edited, the files' content and input_sha256 the same: every job of every slide ran again, qc,
    training and all after it (the path was a param, a setting and, through the files, an input of
    qc).  Nothing reruns, a dry run says so too, the results are the same bytes and the table keeps
    the same input_sha256 (an edited file still reruns the slide: test_an_edited_positions_file_reruns_the_slide).
    A Visium folder: five files, each a path that moved."""
    from slides import write_visium

    write_visium(tmp_path / "data/s", tiny_slide(seed=1))
    sheet = _one_slide_run(tmp_path, "data/s\tvisium")
    made = {p: p.read_bytes() for p in (tmp_path / "results").rglob("*")
            if p.is_file() and "records" not in p.parts}
    shutil.move(tmp_path / "data", tmp_path / "data2")                            # mv data data2
    sheet.write_text(sheet.read_text().replace("\tdata/s", "\tdata2/s"))
    _nothing_reruns(tmp_path, "--dry-run")
    _nothing_reruns(tmp_path)                                                      # what the dry run said
    shutil.copytree(tmp_path / "data2", tmp_path / "data3")                       # cp -r data2 data3
    sheet.write_text(sheet.read_text().replace("\tdata2/s", "\tdata3/s"))
    _nothing_reruns(tmp_path, "--dry-run")
    assert {p: p.read_bytes() for p in made} == made                               # the table's input_sha256 too


def test_the_steps_that_read_a_slide_take_its_path_from_the_sheet_as_the_plan_does(tmp_path):
    """qc and export_spatialdata read the slide's path from the sheet (no param or input holds it): a
    relative path from the config's data_dir, where set, as the plan (slides_and_groups) gives it."""
    from types import SimpleNamespace

    from stcore.plan.sheet import read_sheet, slides_and_groups
    from stcore.workflow import sheet_row

    sheet = tmp_path / "samples.tsv"
    sheet.write_text(f"{HEADER}\na\tslides/a.h5ad\th5ad\t2\t\nb\t/abs/b.h5ad\th5ad\t2\t\n")
    for data_dir in ("", "/data", None):
        config = {"samples": str(sheet)} | ({} if data_dir is None else {"data_dir": data_dir})
        plan, _ = slides_and_groups(read_sheet(str(sheet)), str(sheet), data_dir or "")
        for sample in ("a", "b"):
            row = sheet_row(SimpleNamespace(config=config, wildcards=SimpleNamespace(sample=sample)))
            assert row["path"] == plan[sample]["path"]
    assert sheet_row(SimpleNamespace(config={"samples": str(sheet), "data_dir": "/data"},
                                     wildcards=SimpleNamespace(sample="a")))["path"] == "/data/slides/a.h5ad"


@pytest.mark.slow
def test_a_spatialdata_store_moved_elsewhere_exports_nothing_again(tmp_path):
    """A SpatialData store moved (mv data data2, the sheet's path edited), the same content: the
    export_spatialdata job (domains.zarr, the domains annotating the store's shapes) ran again, the
    store's path its input.  It takes the store's input stamp; nothing reruns, by a dry run or the run."""
    from test_readers import write_spatialdata

    (tmp_path / "data").mkdir()
    write_spatialdata(tmp_path / "data/s.zarr", tiny_slide(seed=1))
    sheet = _one_slide_run(tmp_path, "data/s.zarr\tspatialdata")
    assert (tmp_path / "results/s/graphst/seed0/domains.zarr").is_dir()
    shutil.move(tmp_path / "data", tmp_path / "data2")
    sheet.write_text(sheet.read_text().replace("\tdata/", "\tdata2/"))
    _nothing_reruns(tmp_path, "--dry-run")
    _nothing_reruns(tmp_path)


@pytest.mark.slow
def test_results_copied_without_snakemakes_records_rerun_where_the_settings_changed(tmp_path):
    """A results/ folder copied with its modification times (cp -a, rsync -a, tar) to a folder
    without .snakemake/, then run with other settings: the jobs whose settings changed rerun (was:
    "Nothing to be done", and the table gave the earlier settings' runs as this config's); with the
    same settings nothing reruns.  A slide's truth column changed reruns the steps that read the
    annotation (was: "Nothing to be done", the scores against the earlier column)."""
    from stcore.io import read_tsv

    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    write(tiny_slide(seed=1), first_dir / "s.h5ad")
    workdir(first_dir, {"s": ("s.h5ad", 2, "domain")}, epochs=2)
    first = snakemake(first_dir, "--cores", "1", timeout=600)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    before = read_tsv(first_dir / "results/table.tsv")

    shutil.copytree(first_dir, second_dir, ignore=shutil.ignore_patterns(".snakemake"))   # cp -a, no records
    same = snakemake(second_dir, "--cores", "1", "--dry-run", timeout=300)
    assert "Nothing to be done" in same.stdout + same.stderr, (same.stdout + same.stderr)[-3000:]

    sheet = second_dir / "samples.tsv"
    kept = sheet.read_text()
    sheet.write_text(kept.replace("\tdomain\n", "\t\n"))                   # the slide's truth column taken out
    unscored = snakemake(second_dir, "--cores", "1", "--dry-run", timeout=300)
    shown = unscored.stdout + unscored.stderr
    assert unscored.returncode == 0, shown[-3000:]
    for rule in ("evaluate", "export", "table"):                           # the steps that read the annotation
        assert re.search(rf"^rule {rule}:", shown, re.M), (rule, shown[-3000:])
    for rule in ("qc", "hvg", "graph", "train", "cluster"):
        assert not re.search(rf"^rule {rule}:", shown, re.M), rule
    sheet.write_text(kept)

    config = second_dir / "config.yaml"
    config.write_text(config.read_text().replace("epochs: 2", "epochs: 3"))
    again = snakemake(second_dir, "--cores", "1", timeout=600)
    console = again.stdout + again.stderr
    assert again.returncode == 0, console[-3000:]
    assert "Nothing to be done" not in console
    assert re.search(r"rule train:", console) and not re.search(r"rule qc:", console)      # only what changed
    losses = pd.read_csv(second_dir / "results/s/graphst/seed0/losses.tsv", sep="\t")
    assert len(losses) == 3                                                               # trained anew, 3 epochs
    after = read_tsv(second_dir / "results/table.tsv")
    assert after["config_sha256"].tolist() != before["config_sha256"].tolist()


@pytest.mark.slow
def test_runs_taken_out_of_a_copied_results_folder_leave_the_table_and_the_consensus(tmp_path):
    """A results/ folder without Snakemake's records (copied without .snakemake/, or that folder
    deleted), then a seed and a slide taken out of the config and the sheet: "Nothing to be done",
    and the table kept the slide's rows and seed 2's, the consensus the vote over seeds 0, 1 and 2
    (fewer runs read no newer file).  The gathering steps' stamps hold which runs they gather."""
    from stcore.io import read_tsv

    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    write(tiny_slide(seed=1), first_dir / "a.h5ad")
    write(tiny_slide(seed=2), first_dir / "b.h5ad")
    workdir(first_dir, {"a": ("a.h5ad", 2, "domain"), "b": ("b.h5ad", 2, "domain")}, epochs=2,
            extra_config="seeds: [0, 1, 2]\n")
    first = snakemake(first_dir, "--cores", "1", timeout=600)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    assert len(read_tsv(first_dir / "results/table.tsv")) == 8

    shutil.copytree(first_dir, second_dir, ignore=shutil.ignore_patterns(".snakemake"))   # cp -a, no records
    workdir(second_dir, {"a": ("a.h5ad", 2, "domain")}, epochs=2, extra_config="seeds: [0, 1]\n")
    again = snakemake(second_dir, "--cores", "1", timeout=600)
    console = again.stdout + again.stderr
    assert again.returncode == 0, console[-3000:]
    assert "Nothing to be done" not in console and not re.search(r"rule (train|cluster):", console)
    table = read_tsv(second_dir / "results/table.tsv")
    assert table["sample"].tolist() == ["a"] * 3 and table["seed"].tolist() == ["0", "1", "consensus"]
    consensus = ad.read_h5ad(second_dir / "results/a/graphst/consensus/domains.h5ad")
    assert consensus.uns["stcore"]["consensus_of"] == "0,1" and consensus.obsm["stcore_domain_seeds"].shape[1] == 2


@pytest.mark.slow
def test_a_run_folder_deleted_is_made_again_by_the_table_target(tmp_path):
    """rm -r results/s/graphst/seed0 after a run (to make the run again), then snakemake results/table.tsv
    (or compare): "Nothing to be done", and the table kept the row of the run whose files were gone."""
    write(tiny_slide(seed=1), tmp_path / "s.h5ad")
    workdir(tmp_path, {"s": ("s.h5ad", 2, "domain")}, epochs=2)
    first = snakemake(tmp_path, "--cores", "1", timeout=600)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    shutil.rmtree(tmp_path / "results/s/graphst/seed0")
    again = snakemake(tmp_path, "--cores", "1", "results/table.tsv", timeout=600)
    console = again.stdout + again.stderr
    assert again.returncode == 0, console[-3000:]
    for rule in ("train", "cluster", "evaluate", "table"):
        assert re.search(rf"rule {rule}:", console), (rule, console[-3000:])
    assert (tmp_path / "results/s/graphst/seed0/labels.tsv").exists()
    nothing = snakemake(tmp_path, "--cores", "1", "--dry-run", "results/table.tsv", timeout=300)
    assert "Nothing to be done" in nothing.stdout + nothing.stderr


# --- every failure named ----------------------------------------------------------------------------

# Loaded by every Python process of the run (PYTHONPATH): makes the step named in STCORE_TEST_FAULTS
# fail for the named sample, as "<rule>:<sample>" (an exception inside the step),
# "early:<rule>:<sample>" (an exception before the step's logging is set up) or
# "kill:<rule>:<sample>" (SIGKILL, no message at all).
FAULTS = '''
import importlib.abc, importlib.util, os, signal, sys

FAULTS = [f for f in os.environ.get("STCORE_TEST_FAULTS", "").split(",") if f]


def _patch(workflow):
    real = workflow.run_step

    def run_step(snakemake, step, *, sample=None):
        who = f"{snakemake.rule}:{sample or getattr(snakemake.wildcards, 'sample', None)}"
        if "kill:" + who in FAULTS:
            os.kill(os.getpid(), signal.SIGKILL)
        if "early:" + who in FAULTS:
            raise RuntimeError(f"fault injected before {snakemake.rule} began")

        def failing(sm):
            if who in FAULTS:
                raise ZeroDivisionError(f"fault injected into {snakemake.rule}")
            return step(sm)

        return real(snakemake, failing, sample=sample)

    workflow.run_step = run_step


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "stcore.workflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


if FAULTS:
    sys.meta_path.insert(0, _Finder())
'''


def _faulty_run(tmp, monkeypatch, faults, *args):
    (tmp / "faults").mkdir(exist_ok=True)
    (tmp / "faults" / "sitecustomize.py").write_text(FAULTS)
    monkeypatch.setenv("STCORE_TEST_FAULTS", ",".join(faults))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(tmp / "faults"), os.environ.get("PYTHONPATH"))
                                                     if p))
    return snakemake(tmp, "--cores", "2", "--keep-going", *args, timeout=900)


def _assert_named(tmp, console, log, sample, step, cause):
    text = (tmp / log).read_text()
    assert text.strip(), f"{log} is empty"
    if "empty log" not in cause:
        assert "Traceback (most recent call last)" in text, text
    line = f"FAILED {log}: sample '{sample}', step '{step}': {cause}"
    assert line in console, (line, [c for c in console.splitlines() if c.startswith("FAILED")])


@pytest.mark.slow
def test_an_unexpected_error_in_any_step_is_logged_and_listed(tmp_path, monkeypatch):
    """An exception in each step of the DAG (one slide per step, --keep-going) ends with its
    traceback in the job's log and one FAILED line naming the log, the slide, the step and the
    cause; so does one raised before the step began, and a job killed without a word is listed too."""
    names = ["q", "h", "gr", "t", "cl", "ev", "ex", "c", "ce", "en", "ee", "g1", "g2", "early", "killed"]
    for i, name in enumerate(names):
        write(tiny_slide(n_side=6, seed=i), tmp_path / f"{name}.h5ad")
    workdir(tmp_path, {}, epochs=1, extra_config=(
        "simulate: {sim: {n_spots: 40, n_genes: 30, markers_per_domain: 3, n_layers: 2, n_regions: 0}}\n"
        "consensus: true\n"
        "methods:\n"
        "  graphst: {model: graphst, samples: [q, h, gr, t, cl, ev, ex, en, ee, early, killed, sim, G]}\n"
        "  pair: {model: expression, seeds: [0, 1], samples: [c, ce], train: {pca_comps: 5}}\n"
        "  latent: {train_from: graphst, cluster: {input: embedding}, samples: [en, ee]}\n"
        "ensembles: {both: {methods: [graphst, latent]}}\n"))
    rows = [HEADER + "\tgroup"] + [f"{n}\t{n}.h5ad\th5ad\t2\tdomain\t{'G' if n in ('g1', 'g2') else ''}"
                                   for n in names]
    rows.append("sim\tresults/simulated/sim.h5ad\th5ad\t2\t\t")
    (tmp_path / "samples.tsv").write_text("\n".join(rows) + "\n")
    faults = ["simulate:sim", "qc:q", "hvg:h", "graph:gr", "train:t", "cluster:cl", "evaluate:ev", "export:ex",
              "consensus:c", "export_consensus:ce", "ensemble:en", "export_ensemble:ee", "group:G", "early:hvg:early",
              "kill:graph:killed"]
    run = _faulty_run(tmp_path, monkeypatch, faults)
    console = run.stdout + run.stderr
    assert run.returncode != 0
    cause = "unexpected error ZeroDivisionError: fault injected into {} (traceback below in this log)"
    expected = [("logs/simulate/sim.log", "sim", "simulate"), ("logs/qc/q.log", "q", "qc"),
                ("logs/hvg/h.log", "h", "hvg"), ("logs/graph/gr.log", "gr", "graph"),
                ("logs/train/t.graphst.seed0.log", "t", "train"), ("logs/cluster/cl.graphst.seed0.log", "cl", "cluster"),
                ("logs/evaluate/ev.graphst.seed0.log", "ev", "evaluate"),
                ("logs/export/ex.graphst.seed0.log", "ex", "export"), ("logs/consensus/c.pair.log", "c", "consensus"),
                ("logs/export/ce.pair.consensus.log", "ce", "export_consensus"),
                ("logs/consensus/en.both.seed0.log", "en", "ensemble"),
                ("logs/export/ee.both.seed0.log", "ee", "export_ensemble"), ("logs/group/G.log", "G", "group")]
    for log, sample, step in expected:
        _assert_named(tmp_path, console, log, sample, step, cause.format(step))
    _assert_named(tmp_path, console, "logs/hvg/early.log", "early", "hvg",
                  "unexpected error RuntimeError: fault injected before hvg began (traceback below in this log)")
    assert ("FAILED logs/graph/killed.log: sample 'killed', step 'graph': the job ended with an empty log (killed, "
            "or out of memory?)") in console
    assert "ERROR stcore: sample 'killed', step 'graph': the job ended with" in (tmp_path / "logs/graph/killed.log").read_text()
    assert len([c for c in console.splitlines() if c.startswith("FAILED ")]) == len(expected) + 2


@pytest.mark.slow
def test_an_unexpected_error_in_the_table_step_is_logged_and_listed(tmp_path, monkeypatch):
    write(tiny_slide(seed=1), tmp_path / "s.h5ad")
    workdir(tmp_path, {"s": ("s.h5ad", 2, "domain")}, epochs=1)
    run = _faulty_run(tmp_path, monkeypatch, ["table:all"])
    console = run.stdout + run.stderr
    assert run.returncode != 0 and (tmp_path / "results/s/graphst/seed0/metrics.tsv").is_file()
    _assert_named(tmp_path, console, "logs/table.log", "all", "table",
                  "unexpected error ZeroDivisionError: fault injected into table (traceback below in this log)")
    assert not (tmp_path / "results/table.tsv").exists()


# --- sample sheets as spreadsheets save them ---------------------------------------------------------

def _sheet_dry_run(tmp, content: bytes, target="results/s1/qc.json"):
    workdir(tmp, {})
    (tmp / "samples.tsv").write_bytes(content)
    return snakemake(tmp, "--dry-run", "--cores", "1", target, timeout=120)


ROW = "s1\tdata/s.h5ad\th5ad\t2\tdomain"

# id -> the sheet's bytes, read as meant
SHEETS_READ = {
    "utf16_with_bom": ("\ufeff" + HEADER + "\r\n" + ROW + "\r\n").encode("utf-16-le"),     # Excel "Unicode Text"
    "utf16_big_endian": ("\ufeff" + HEADER + "\n" + ROW + "\n").encode("utf-16-be"),
    "cp1252_path": (HEADER + "\n" + "s1\tdonn\u00e9es/s.h5ad\th5ad\t2\tdomain\n").encode("cp1252"),
    "trailing_tabs": (HEADER + "\t\t\n" + ROW + "\t\t\n").encode(),
    "empty_unnamed_column": ("sample\tpath\t\tformat\tn_clusters\ttruth\n" + "s1\tdata/s.h5ad\t\th5ad\t2\tdomain\n").encode(),
    "short_row": (HEADER + "\tgroup\n" + ROW + "\n").encode(),       # trailing empty cells not saved
    "quoted_cells": (HEADER + '\n"s1"\t"data/s.h5ad"\th5ad\t2\tdomain\n').encode(),
    "capitalised_header": ("Sample\tPath\tFormat\tN_clusters\tTruth\n" + ROW + "\n").encode(),
}


@pytest.mark.parametrize("case", sorted(SHEETS_READ))
def test_sheets_saved_by_spreadsheets_are_read_as_meant(case, tmp_path):
    folder = "donn\u00e9es" if case == "cp1252_path" else "data"
    (tmp_path / folder).mkdir()
    write(tiny_slide(), tmp_path / folder / "s.h5ad")
    run = _sheet_dry_run(tmp_path, SHEETS_READ[case])
    text = run.stdout + run.stderr
    assert run.returncode == 0, text[-2000:]
    # the qc job's input: the stamp of the slide's files, kept only where they are found at the path meant
    assert "results/records/input/s1.json" in run.stdout and "Traceback" not in text
    if case == "cp1252_path":
        assert "not UTF-8 (line 2); read as Windows-1252" in text


# id -> (the sheet's bytes, expected message)
SHEETS_REFUSED = {
    # a workbook given as the sheet (was: "holds NUL bytes (UTF-16 without a byte-order mark, ...)")
    "xlsx_workbook": (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00[Content_Types].xml\x00\x00",
                      r"sample sheet 'samples\.tsv': a spreadsheet workbook \(Excel \.xlsx or \.xls, LibreOffice \.ods\), "
                      r"not text\. Fix: save the sheet as tab-separated text \(Excel: File > Save As > 'Text \(Tab "
                      r"delimited\)'"),
    "value_in_unnamed_column": (("sample\tpath\t\tformat\tn_clusters\ttruth\n"
                                 "s1\tdata/s.h5ad\tnote\th5ad\t2\tdomain\n").encode(),
                                r"sample sheet 'samples\.tsv', line 2: column 3 has no name in the header but holds "
                                r"'note'\. Fix: name the column in the header, or delete it"),
    "value_past_the_header": ((HEADER + "\n" + ROW + "\t\tstray\n").encode(),
                              r"sample sheet 'samples\.tsv', line 2: a value past the header's last column \('truth'\): "
                              r"'stray'\. Fix: delete the cells after the last named column"),
    "utf16_without_bom": ((HEADER + "\n" + ROW + "\n").encode("utf-16-le"),
                          r"sample sheet 'samples\.tsv', line 1: holds NUL bytes \(UTF-16 without a byte-order mark, or "
                          r"not a text file\)\. Fix: save it as tab-separated text in UTF-8"),
    "neither_utf8_nor_cp1252": ((HEADER + "\n").encode() + b"s1\tdata/\x81\x8d.h5ad\th5ad\t2\tdomain\n",
                                r"sample sheet 'samples\.tsv', line 2: neither UTF-8 nor Windows-1252 text \(byte 0x81\)\. "
                                r"Fix: save it as tab-separated text in UTF-8"),
    "column_twice": (("sample\tpath\tformat\tn_clusters\tpath\n" "s1\ta.h5ad\th5ad\t2\tb.h5ad\n").encode(),
                     r"sample sheet 'samples\.tsv': column 'path' appears twice in the header\. Fix: keep one"),
}


@pytest.mark.parametrize("case", sorted(SHEETS_REFUSED))
def test_sheets_that_cannot_be_read_name_the_file_line_and_fix(case, tmp_path):
    content, expected = SHEETS_REFUSED[case]
    run = _sheet_dry_run(tmp_path, content)
    text = run.stdout + run.stderr
    assert run.returncode != 0
    assert re.search(expected, text), text[-2000:]
    assert "Traceback" not in text and not (tmp_path / "results").exists()


# --- integers written 20.0 --------------------------------------------------------------------------

@pytest.mark.slow
def test_integers_written_with_a_decimal_point_are_read_as_integers(tmp_path):
    """train.epochs, graph.n_neighbors, hvg.n_top_genes, seeds, a method's own seeds and train
    block, cluster settings and a simulated slide's size written 20.0 (as programs write numbers)
    run as 20 (range(2.0) and array sizes of 3.0 were tracebacks in the jobs)."""
    write(tiny_slide(), tmp_path / "s.h5ad")
    workdir(tmp_path, {"s": ("s.h5ad", 2, "domain")})
    (tmp_path / "config.yaml").write_text(
        "samples: samples.tsv\nseeds: [0.0]\n"
        "simulate: {sim: {n_spots: 40.0, n_genes: 30.0, markers_per_domain: 3.0, n_layers: 2.0, n_regions: 0.0}}\n"
        "hvg: {n_top_genes: 30.0}\ngraph: {n_neighbors: 4.0}\n"
        "train: {epochs: 2.0, device: cpu, log_every: 1.0}\ncluster: {n_init: 1.0, n_pcs: 5.0}\n"
        "methods:\n  graphst: {model: graphst, train: {epochs: 3.0, n_latent: 8.0}}\n"
        "  expr: {model: expression, seeds: [1.0], train: {pca_comps: 5.0}}\n")
    with open(tmp_path / "samples.tsv", "a") as fh:
        fh.write("sim\tresults/simulated/sim.h5ad\th5ad\t2.0\t\n")
    run = snakemake(tmp_path, "--cores", "2", timeout=900)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    table = pd.read_csv(tmp_path / "results/table.tsv", sep="\t", dtype=str)
    assert sorted(zip(table["sample"], table["method"], table["seed"])) == [
        ("s", "expr", "1"), ("s", "graphst", "0"), ("sim", "expr", "1"), ("sim", "graphst", "0")]
    losses = pd.read_csv(tmp_path / "results/s/graphst/seed0/losses.tsv", sep="\t")
    assert len(losses) == 3                                                 # the method's own 3.0 epochs
    assert json.loads((tmp_path / "results/s/graph.json").read_text())["n_neighbors"] == 4


def test_a_fractional_integer_is_refused_naming_the_key(tmp_path):
    workdir(tmp_path, {"s": ("s.h5ad", 2, "")}, extra_config="graph: {n_neighbors: 3.5}\n")
    run = snakemake(tmp_path, "--dry-run", "--cores", "1", timeout=120)
    text = run.stdout + run.stderr
    assert run.returncode != 0 and "Traceback" not in text
    assert re.search(r"config is invalid: graph\.n_neighbors: 3\.5 is not of type 'integer'\. Fix: see ", text), text[-2000:]


def test_a_gpu_given_to_train_on_the_cpu_is_said(tmp_path):
    """profiles/slurm-gpu gives train one GPU (set-resources) and sets train.device: cuda through its
    config line, which a --config of the user's replaces: the run then says the GPU would stay idle.
    Where the device is cuda, or no GPU is given, nothing is said."""
    write(tiny_slide(), tmp_path / "s.h5ad")
    workdir(tmp_path, {"s": ("s.h5ad", 2, "")})
    said = "train jobs are given 1 GPU each"
    idle = snakemake(tmp_path, "--dry-run", "--cores", "1", "--set-resources", "train:gpu=1", timeout=120)
    assert idle.returncode == 0 and said in idle.stderr and "Fix: add train='{device: cuda}'" in idle.stderr
    on_gpu = snakemake(tmp_path, "--dry-run", "--cores", "1", "--set-resources", "train:gpu=1",
                       "--config", "train={device: cuda}", timeout=120)
    assert on_gpu.returncode == 0 and said not in on_gpu.stderr
    plain = snakemake(tmp_path, "--dry-run", "--cores", "1", timeout=120)
    assert plain.returncode == 0 and said not in plain.stderr

# --- detected genes are non-zero values --------------------------------------------------------------

def _with_explicit_zeros():
    """The tiny slide with 5 genes detected in even spots and 15 in odd ones, every spot storing
    25 entries: the others explicitly stored zeros (as some writers leave them)."""
    adata = tiny_slide(n_genes=60)
    rows, cols, data = [], [], []
    for i in range(adata.n_obs):
        detected = 5 if i % 2 == 0 else 15
        rows += [i] * 25
        cols += list(range(25))
        data += [1.0 + 2.0 * (j % 2) for j in range(detected)] + [0.0] * (25 - detected)      # 1s and 3s, as counts
    adata.X = sp.csr_matrix((np.array(data, np.float32), (rows, cols)), shape=adata.shape)
    assert adata.X.nnz == 25 * adata.n_obs and (np.diff(adata.X.indptr) == 25).all()     # the zeros are stored
    return adata


def test_explicitly_stored_zeros_are_not_detected_genes(tmp_path):
    adata = _with_explicit_zeros()
    keep, _, report = qc_masks(adata, QCParams(min_genes=10))
    assert (keep == (np.arange(adata.n_obs) % 2 == 1)).all(), keep
    dense = adata.copy()
    dense.X = adata.X.toarray()
    assert (qc_masks(dense, QCParams(min_genes=10))[0] == keep).all()     # sparse and dense agree
    path = write(_with_explicit_zeros(), tmp_path / "zeros.h5ad")
    with pytest.raises(InputError, match=r"QC removed every spot \(of 64\)"):
        prepare_slide(str(path), "h5ad", QCParams(min_genes=16), truth="domain", n_clusters=2)


# --- outputs honour the umask ------------------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o002], ids=["022", "002"])
def test_outputs_get_the_mode_the_umask_gives(tmp_path, umask):
    from stcore.io import atomic_path, write_h5ad, write_labels

    old = os.umask(umask)
    try:
        (tmp_path / "plain.txt").write_text("x")
        write_h5ad(tiny_slide(), tmp_path / "domains.h5ad")
        write_labels(tmp_path / "labels.tsv", pd.DataFrame(index=["a", "b"]), [0, 1])
        with atomic_path(tmp_path / "table.tsv") as tmp:
            tmp.write_text("x\n")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == dict.fromkeys(["plain.txt", "domains.h5ad", "labels.tsv", "table.tsv"], 0o666 & ~umask)


# --- an h5ad without X; a group whose annotations differ in type -------------------------------------------

def test_an_h5ad_without_x_is_one_message(tmp_path):
    import anndata as ad

    slide = tiny_slide()
    empty = ad.AnnData(obs=slide.obs, var=slide.var, obsm=dict(slide.obsm), layers={"counts": slide.X})
    path = write(empty, tmp_path / "nox.h5ad")
    with pytest.raises(InputError) as err:
        prepare_slide(str(path), "h5ad", QCParams(), truth="domain", n_clusters=2)
    assert str(err.value) == (f"file '{path}': no expression matrix: X is missing (64 spots x 40 genes, layers: "
                              "['counts']). Fix: store the raw counts in X before writing the file (e.g. adata.X = "
                              "adata.layers['counts'])")


def test_a_group_whose_annotations_differ_in_type_is_joined_as_text(tmp_path):
    """One slide's truth as numbers (with a missing label), the other's as text categories: the
    group's truth column holds both as text, is written, and compares equal labels as equal."""
    import anndata as ad

    from stcore.group import join_slides
    from stcore.io import write_h5ad

    a, b = tiny_slide(seed=1), tiny_slide(seed=2)
    a.obs["domain"] = a.obs["domain"].cat.codes.astype(float)
    a.obs.iloc[0, a.obs.columns.get_loc("domain")] = np.nan
    b.obs["domain"] = pd.Categorical(b.obs["domain"].cat.codes.astype(str))
    joined, _ = join_slides({"a": a, "b": b}, {"a": "domain", "b": "domain"}, "g")
    write_h5ad(joined, tmp_path / "g.h5ad")
    back = ad.read_h5ad(tmp_path / "g.h5ad")
    assert list(back.obs["truth"].cat.categories) == ["0", "1"]
    assert back.obs["truth"].isna().sum() == 1
    expected = np.concatenate([a.obs["domain"].to_numpy()[1:], b.obs["domain"].astype(float).to_numpy()])
    assert (back.obs["truth"].dropna().astype(float).to_numpy() == expected).all()


@pytest.mark.slow
def test_a_group_of_mixed_annotation_types_and_an_h5ad_without_x_through_the_dag(tmp_path):
    """Through the DAG with --keep-going: a group whose slides store their annotation as numbers
    and as text trains and is scored as one; a slide without X fails alone with one line."""
    import anndata as ad

    a, b = tiny_slide(seed=1), tiny_slide(seed=2)
    a.obs["domain"] = a.obs["domain"].cat.codes.astype(np.int64)
    b.obs["domain"] = pd.Categorical(b.obs["domain"].cat.codes.astype(str))
    write(a, tmp_path / "a.h5ad")
    write(b, tmp_path / "b.h5ad")
    slide = tiny_slide(seed=3)
    write(ad.AnnData(obs=slide.obs, var=slide.var, obsm=dict(slide.obsm), layers={"counts": slide.X}),
          tmp_path / "nox.h5ad")
    workdir(tmp_path, {}, epochs=2)
    (tmp_path / "samples.tsv").write_text(HEADER + "\tgroup\n" + "a\ta.h5ad\th5ad\t2\tdomain\tpair\n"
                                          "b\tb.h5ad\th5ad\t2\tdomain\tpair\n" "nox\tnox.h5ad\th5ad\t2\tdomain\t\n")
    run = snakemake(tmp_path, "--cores", "2", "--keep-going", timeout=900)
    console = run.stdout + run.stderr
    assert run.returncode != 0
    assert ("FAILED logs/qc/nox.log: sample 'nox', file 'nox.h5ad': no expression matrix: X is missing (64 spots x "
            "40 genes, layers: ['counts']). Fix: store the raw counts in X") in console, console[-3000:]
    metrics = pd.read_csv(tmp_path / "results/pair/graphst/seed0/metrics.tsv", sep="\t")
    assert len(metrics) == 2 and metrics["ARI"].notna().all(), metrics      # one row per slide of the group
    assert not (tmp_path / "results/nox").exists()


def test_every_job_writes_a_log_through_run_step():
    """Every rule that runs a job has a log and a script, and every script runs its step through
    stcore.workflow.run_step: so the guarantees tested above hold for each step, including those
    the fault test does not reach (the comparison's report_figures and agreement)."""
    rules = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for name, body in re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", smk.read_text(), re.M):
            rules[name] = body
    assert {"qc", "hvg", "graph", "train", "cluster", "evaluate", "table"} <= set(rules)
    for name, body in rules.items():
        assert re.search(r"^\s+log:\n\s+\S", body, re.M), f"rule {name} has no log"
        script = re.search(r"^\s+script:\n\s+\"\.\./(scripts/\w+\.py)\"", body, re.M)
        assert script, f"rule {name} runs no script"
        assert "run_step(snakemake" in (REPO / script.group(1)).read_text(), script.group(1)


def test_the_folder_a_renamed_slide_left_is_said_to_be_that_slide_at_the_end(tmp_path):
    """A sample id changed in the sheet (d -> 0d, as a spreadsheet that drops or adds a leading zero): the slide ran
    again under the new id, and the end of the run named results/d like a slide taken out.  Now it says that
    results/d holds the same data as sample '0d' (the input stamps), and keeps it."""
    write(tiny_slide(), tmp_path / "s.h5ad")
    workdir(tmp_path, {"d": ("s.h5ad", 2, "domain")}, epochs=2)
    first = snakemake(tmp_path, "--cores", "1", timeout=600)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    sheet = (tmp_path / "samples.tsv").read_text()
    (tmp_path / "samples.tsv").write_text(sheet.replace("\nd\t", "\n0d\t"))
    renamed = snakemake(tmp_path, "--cores", "1", timeout=600)
    assert renamed.returncode == 0, (renamed.stdout + renamed.stderr)[-3000:]
    digest = json.loads((tmp_path / "results/records/input/0d.json").read_text())["input_sha256"]
    said = [line for line in renamed.stderr.splitlines() if "result folder" in line]
    assert said == ["WARNING 1 result folder not of this config's runs (left by an earlier config or sample sheet): "
                    f"results/d; results/d holds the same slide as sample '0d' (input_sha256 {digest[:12]}...) under "
                    "an earlier id: was the id changed in the sample sheet? this run made the slide's results again "
                    "under the new one. results/table.tsv lists this config's runs only. Fix: delete it if it is not "
                    "wanted (rm -r results/d)"], renamed.stderr[-3000:]
    assert (tmp_path / "results/d/graphst/seed0/domains.h5ad").is_file()             # said, never deleted


def test_result_folders_an_earlier_config_left_are_named_at_the_end(tmp_path):
    """Seeds [0, 1], then [0]: the table was right, but seed1/ and the seeds' consensus/ (the README's
    file to use) stayed from the first config without a word.  Said at the end of the run, and kept."""
    write(tiny_slide(), tmp_path / "s.h5ad")
    workdir(tmp_path, {"s": ("s.h5ad", 2, "domain")}, epochs=2)
    config = (tmp_path / "config.yaml").read_text()
    (tmp_path / "config.yaml").write_text(config.replace("seeds: [0]\n", "seeds: [0, 1]\n"))
    first = snakemake(tmp_path, "--cores", "1", timeout=600)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    assert "result folder" not in first.stderr, first.stderr[-3000:]        # every folder is a run of the config
    again = snakemake(tmp_path, "--cores", "1", timeout=600)                 # unchanged: nothing to say
    assert again.returncode == 0 and "result folder" not in again.stderr, again.stderr[-3000:]
    (tmp_path / "config.yaml").write_text(config)
    fewer = snakemake(tmp_path, "--cores", "1", timeout=600)
    assert fewer.returncode == 0, (fewer.stdout + fewer.stderr)[-3000:]
    said = [line for line in fewer.stderr.splitlines() if "result folder" in line]
    assert said == ["WARNING 2 result folders not of this config's runs (left by an earlier config or sample sheet): "
                    "results/s/graphst/consensus, results/s/graphst/seed1; results/table.tsv lists this config's "
                    "runs only. Fix: delete them if they are not wanted (rm -r results/s/graphst/consensus "
                    "results/s/graphst/seed1)"], fewer.stderr[-3000:]
    for folder in ("seed1", "consensus"):                                    # said, never deleted
        assert (tmp_path / f"results/s/graphst/{folder}/domains.h5ad").is_file()
    table = pd.read_csv(tmp_path / "results/table.tsv", sep="\t", dtype=str)
    assert list(table["seed"]) == ["0"]
    shutil.rmtree(tmp_path / "results/s/graphst/seed1")                     # the fix the line gives
    shutil.rmtree(tmp_path / "results/s/graphst/consensus")
    fixed = snakemake(tmp_path, "--cores", "1", "--forcerun", "table", timeout=600)
    assert fixed.returncode == 0 and "result folder" not in fixed.stderr, fixed.stderr[-3000:]

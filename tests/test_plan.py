"""The workflow's plan (stcore/plan) as ordinary functions: the sheet, the runs, the resources and
the failure lines, without Snakemake."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stcore.plan import PlanError
from stcore.plan.failures import failure_lines, job_sample
from stcore.plan.resources import CUDA_HOST_MB, train_mem_mb, train_runtime
from stcore.plan.runs import Plan
from stcore.plan.settings import allocator_environment, as_schema_types, renamed_keys, repeated_key, shape_fix, text_fix
from stcore.plan.stamps import settings_stamp
from stcore.plan.sheet import cell_problem, check_names, read_sheet, slides_and_groups
from stcore.registry import METHODS

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_the_plan_imports_the_standard_library_only():
    """The Snakefile loads the plan before the scientific stack."""
    code = ("import sys, stcore.plan.runs, stcore.plan.sheet, stcore.plan.resources, stcore.plan.failures, "
            "stcore.plan.settings, stcore.plan.stamps, stcore.registry, stcore.formats; "
            "print(sorted(m for m in ('numpy', 'pandas', 'yaml', 'h5py', 'scipy', 'torch', 'anndata') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _sheet(tmp_path, data: bytes, name="samples.tsv"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_a_sheet_as_spreadsheets_save_it(tmp_path):
    text = "Sample\tPath\tFormat\tN_clusters\tTruth\t\t\n s1 \ta.h5ad\tH5AD\t7.0\tlayer\t\t\n# a comment\ns2\t~/b\tvisium\tAUTO\t\t\t\n"
    for data in (text.encode("utf-8-sig"), text.encode("utf-16"), text.replace("a.h5ad", "é.h5ad").encode("cp1252"),
                 b"\xef\xbb\xbf" + text.replace("a.h5ad", "é.h5ad").encode("cp1252")):   # (was: 'sample' missing)
        rows = read_sheet(_sheet(tmp_path, data))
        assert [r["sample"] for r in rows] == ["s1", "s2"]
        assert rows[0]["format"] == "h5ad" and rows[0]["n_clusters"] == 7 and type(rows[0]["n_clusters"]) is int
        assert rows[1]["n_clusters"] == "auto" and not rows[1]["path"].startswith("~") and rows[1]["group"] == ""
        assert set(rows[0]) == {"sample", "path", "format", "n_clusters", "truth", "group"}
    # characters no one sees, copied from a web page or a document: never part of a name
    rows = read_sheet(_sheet(tmp_path, "sample\tpath\tformat\tn_clusters\ttruth\ns1\u200b\ta.h5ad\th5ad\t7\t\u200bregion\n"
                                       .encode()))
    assert rows[0]["sample"] == "s1" and rows[0]["truth"] == "region"


def test_rows_of_separators_only_are_empty_rows(tmp_path):
    """Rows of commas or semicolons only (',,,,': the empty rows a spreadsheet's CSV export leaves, pasted
    below a sheet) were read as a slide named ',,,,' and refused as 'sample id ',,,,' is not a safe file
    name'; they are now empty rows, as rows of tabs are."""
    rows = read_sheet(_sheet(tmp_path, b"sample\tpath\tformat\tn_clusters\ns1\ta.h5ad\th5ad\t7\n,,,,\n;;;;\n"
                                       b" , ,\t,\n\t\t\t\ns2\tb.h5ad\th5ad\t7\n"))
    assert [r["sample"] for r in rows] == ["s1", "s2"]


def test_an_environment_variable_in_a_path_is_read_as_a_shell_reads_it(tmp_path, monkeypatch):
    """$HOME/data/a.h5ad (or ${SCRATCH}/...), as a path is written in a script: it was taken as
    written, a folder named '$HOME', and the qc job said 'file not found' of a path that looked right."""
    monkeypatch.setenv("STCORE_DATA", "/data/slides")
    rows = read_sheet(_sheet(tmp_path, b"sample\tpath\tformat\tn_clusters\ns1\t$STCORE_DATA/a.h5ad\th5ad\t7\n"
                                       b"s2\t${STCORE_DATA}/b\tvisium\t7\ns3\tc.h5ad\th5ad\t7\n"))
    assert [r["path"] for r in rows] == ["/data/slides/a.h5ad", "/data/slides/b", "c.h5ad"]
    monkeypatch.delenv("STCORE_DATA")
    with pytest.raises(PlanError, match=r"^sample sheet '.*samples\.tsv', sample 's1': path '\$STCORE_DATA/a\.h5ad' "
                                        r"names the environment variable \$STCORE_DATA, which is not set where the "
                                        r"workflow runs\. Fix: write the path in full, or set STCORE_DATA before"):
        read_sheet(_sheet(tmp_path, b"sample\tpath\tformat\tn_clusters\ns1\t$STCORE_DATA/a.h5ad\th5ad\t7\n"))


def test_an_id_a_spreadsheet_wrote_as_a_decimal_number_is_named(tmp_path, capsys):
    """151673 saved as 151673.0 (a number format, or pandas' float column): taken as written, with a note."""
    rows = read_sheet(_sheet(tmp_path, b"sample\tpath\tformat\tn_clusters\n151673.0\ta.h5ad\th5ad\t7\n"
                                       b"151674.0\tb.h5ad\th5ad\t7\n"))
    assert [r["sample"] for r in rows] == ["151673.0", "151674.0"]
    said = capsys.readouterr().err
    assert ("2 sample ids are whole numbers written with a decimal point (first: '151673.0')" in said
            and "results/151673.0/" in said and "Fix: if the id is '151673', save the column as text" in said), said
    read_sheet(_sheet(tmp_path, b"sample\tpath\tformat\tn_clusters\n151673\ta.h5ad\th5ad\t7\nv1.0\tb\th5ad\t7\n"))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("text, message", [
    ("sample,path,format,n_clusters\ns,a,h5ad,7\n", r"is not tab-separated .* Fix: save it as tab-separated text"),
    ("sample\tpath\tformat\n", r"has no slides"),
    ("sample\tpath\tformat\ns\ta\th5ad\n", r"column 'n_clusters' is missing"),
    # a header as a spreadsheet or another tool writes it (was: "column 'sample' is missing. Fix: the columns are ...")
    ("Sample ID\tpath\tformat\tn_clusters\ns\ta\th5ad\t7\n",
     r"column 'sample' is missing; the header's 'Sample ID' looks meant as it\. Fix: rename the column 'Sample ID' to "
     r"'sample' in the header"),        # named as the header writes it (was: 'sample id', lower-cased)
    ("sample_id \tPath\tFormat\tN Clusters\ns\ta\th5ad\t7\n",
     r"column 'sample' is missing; the header's 'sample_id' looks meant as it\. Fix: rename the column 'sample_id'"),
    ("sample\tFile\tformat\tn_clusters\ns\ta\th5ad\t7\n",
     r"column 'path' is missing; the header's 'File' looks meant as it\. Fix: rename the column 'File' to 'path'"),
    ("sample\tpath\tformat\tN-Clusters\ns\ta\th5ad\t7\n",
     r"column 'n_clusters' is missing; the header's 'N-Clusters' looks meant as it\. Fix: rename the column "
     r"'N-Clusters' to 'n_clusters' in the header"),
    ("sample\tpath\tformat\tn_clusters\tTruth\ns\ta\th5ad\t7\td\tx\n",
     r"line 2: a value past the header's last column \('Truth'\): 'x'"),
    ("sample\tPath\tformat\tn_clusters\tpath\ns\ta\th5ad\t7\tb\n",
     r"column 'path' appears twice in the header \('Path' and 'path': its names are read in any case\)\. Fix: keep "
     r"one of them"),
    ("sample\tpath\tformat\tn_clusters\ns\ta\th5ad\t7\tx\n", r"line 2: a value past the header's last column"),
    ("sample\t\tpath\tformat\tn_clusters\ns\tq\ta\th5ad\t7\n", r"line 2: column 2 has no name in the header but holds 'q'"),
    ("sample\tpath\tformat\tn_clusters\na/b\tx\th5ad\t7\n", r"sample id 'a/b' is not a safe file name"),
    ("sample  path  format  n_clusters\ns1  a.h5ad  h5ad  7\n",       # an editor's columns aligned with spaces
     r"is not tab-separated \(its columns are aligned with spaces\) \(its header is 'sample  path  format  "
     r"n_clusters'\)\. Fix: save it as tab-separated text \(TSV\): one tab between cells"),
    ('sample\tpath\tformat\tn_clusters\ns1\t"a.h5ad\th5ad\t7\ns2\tb.h5ad\th5ad\t7\n',  # was: format '' on line 2
     r"line 2: a cell opens a quote \(\"\) that no cell on the line closes.*Fix: delete the quote"),
    ('"sample"\t"path"\t"format"\t"n_clusters"\n"1"\t"s1"\t"a.h5ad"\t"h5ad"\t7\n"2"\t"s2"\t"b"\t"h5ad"\tNA\n',  # R
     r"every row has one cell more than the header, before its first column \(1, 2, \.\.\. from line 2\): row "
     r"names, as R's write.table writes them\. Fix: write it with row.names = FALSE"),
    # two sheets joined one after the other (was: refused by the schema as a slide 'sample' of format 'format')
    ("sample\tpath\tformat\tn_clusters\ns1\ta\th5ad\t7\nSample\tPath\tformat\tn_clusters\ns2\tb\th5ad\t7\n",
     r"line 3: a second header line \('Sample', 'Path', 'format', 'n_clusters'\), as two sheets joined one after the "
     r"other leave it; it would be read as a slide named 'sample'\. Fix: delete line 3$"),
    ("sample\tpath\tformat\tn_clusters\ttruth\ns1\ta\th5ad\t7\t\nsample\tpath\tformat\ttruth\tn_clusters\n",
     r"line 3: a second header line .* Fix: delete line 3 and put the cells of the rows after it in line 1's column order"),
])
def test_a_sheet_it_cannot_read_is_named_with_the_fix(tmp_path, text, message):
    with pytest.raises(PlanError, match=message):
        read_sheet(_sheet(tmp_path, text.encode()))
    with pytest.raises(PlanError, match=r"missing\.tsv' not found\. Fix: set 'samples' in the config"):
        read_sheet(str(tmp_path / "missing.tsv"))


def test_a_sheet_beside_the_config_file_is_named_as_the_path_to_give(tmp_path, monkeypatch):
    """``samples: my_slides.tsv`` in project/my.yaml is read from the folder the workflow runs in; the
    sheet beside the config file was 'not found' without a word of where it had been looked for."""
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "my.yaml").write_text("samples: my_slides.tsv\n")
    (tmp_path / "project" / "my_slides.tsv").write_text("sample\tpath\tformat\tn_clusters\ns1\ta.h5ad\th5ad\t7\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PlanError, match=r"^sample sheet 'my_slides\.tsv' not found in the folder the workflow runs in "
                                        r"\(.*\); 'project/my_slides\.tsv' beside the config file exists, but a config's "
                                        r"paths are read from that folder, not the config file's\. Fix: set samples to "
                                        r"'project/my_slides\.tsv'"):
        read_sheet("my_slides.tsv", ["config.yaml", "project/my.yaml"])
    # a relative path names the folder it was looked for in (snakemake --directory moves it)
    with pytest.raises(PlanError, match=r"^sample sheet 'other\.tsv' not found in the folder the workflow runs in "
                                        r"\(" + re.escape(str(tmp_path)) + r"\)\. Fix: set 'samples'.*--directory"):
        read_sheet("other.tsv", ["config.yaml", str(tmp_path / "project" / "my.yaml")])
    assert read_sheet("project/my_slides.tsv", ["project/my.yaml"])[0]["sample"] == "s1"


def test_an_empty_values_cell_is_the_default(tmp_path):
    """The schema refused '' although a sheet without the column means counts; an empty cell now
    means the same."""
    text = "sample\tpath\tformat\tn_clusters\tvalues\ns1\ta.h5ad\th5ad\t7\tlog_normalized\ns2\tb.h5ad\th5ad\t7\t\n"
    rows = read_sheet(_sheet(tmp_path, text.encode()))
    assert [r["values"] for r in rows] == ["log_normalized", "counts"]


def test_names_that_become_paths():
    check_names("method", ["graphst", "graph-st_2"], "config")
    for bad, message in ((["a.b"], "is not a safe file name"), (["x", "x"], "appears twice"),
                         (["Slide", "slide"], "differ only in case")):
        with pytest.raises(PlanError, match=message):
            check_names("method" if bad == ["a.b"] else "sample id", bad, "here")


def test_a_sample_or_group_named_as_a_folder_of_the_run_is_refused(tmp_path):
    """A slide or group named 'records' (or 'compare', 'simulated') wrote its qc and runs into the run's
    own folders (results/records/qc.h5ad beside the stamps) without a word."""
    with pytest.raises(PlanError, match=r"sample sheet '.*': sample id 'Records' would write its results into "
                                        r"results/records/, the folder of the run's stamps and records\. Fix: rename "
                                        r"it \(e\.g\. 'Records_1'\)"):
        read_sheet(_sheet(tmp_path, b"sample\tpath\tformat\tn_clusters\ns1\ta.h5ad\th5ad\t7\n"
                                    b"Records\tb.h5ad\th5ad\t7\n"))
    with pytest.raises(PlanError, match=r"group 'compare' would write its results into results/compare/, the folder "
                                        r"of the run's comparison tables and figures"):
        slides_and_groups(_rows(s1="compare", s2="compare"), "sheet.tsv")
    check_names("sample id", ["records_1", "my_records", "simulated2"], "here")      # only the names themselves


def _rows(**groups):
    return [{"sample": s, "path": f"{s}.h5ad", "format": "h5ad", "n_clusters": 7, "truth": "layer",
             "values": "counts", "group": groups.get(s, "")} for s in ("s1", "s2", "s3")]


def test_groups_get_a_row_of_their_own(tmp_path):
    slides, groups = slides_and_groups(_rows(s1="g", s2="g"), "sheet.tsv", data_dir="/data")
    assert groups == {"g": ["s1", "s2"]} and slides["s1"]["path"] == "/data/s1.h5ad"
    assert slides["g"] == {"sample": "g", "path": "", "format": "group", "n_clusters": 7, "truth": "truth",
                           "values": "counts", "group": ""}
    with pytest.raises(PlanError, match=r"group 'g' has one slide \(s1\)"):
        slides_and_groups(_rows(s1="g"), "sheet.tsv")
    with pytest.raises(PlanError, match=r"group 'S1' is also a sample id \('s1'\)"):
        slides_and_groups(_rows(s2="S1", s3="S1"), "sheet.tsv")
    rows = _rows(s1="g", s2="g")
    rows[1]["n_clusters"] = 5
    with pytest.raises(PlanError, match=r"its slides differ in n_clusters \(s1: 7, s2: 5\)"):
        slides_and_groups(rows, "sheet.tsv")


def test_a_group_of_counts_and_normalised_values_names_a_fix_that_can_be_met():
    """Slides of a group whose values differ (one slide's file holds counts, another's normalised
    values): the fix said 'give them the same values', which each slide's qc job then refuses (the
    counts as normalised values, or the normalised values as counts); it names what meets both."""
    rows = _rows(s1="g", s2="g")
    rows[1]["values"] = "normalized"
    with pytest.raises(PlanError, match=r"its slides differ in values \(s1: counts, s2: normalized\); one model "
                                        r"needs one kind of values on every slide.*Fix: give the slides values of "
                                        r"one kind: normalise s1's counts as s2's values were .*and set its values "
                                        r"to normalized; or leave the group cell empty"):
        slides_and_groups(rows, "sheet.tsv")


def test_groups_that_differ_only_in_case_are_named():
    """'Donor1' and 'donor1' in the group column: trained as two groups without a word, whose
    results/<group>/ folders are one on macOS and Windows."""
    rows = [dict(row, sample=f"s{i}", group=group) for i, (row, group) in
            enumerate(zip(_rows() * 2, ("Donor1", "Donor1", "donor1", "donor1")), 1)]
    with pytest.raises(PlanError, match=r"^sample sheet 'sheet\.tsv': groups 'Donor1' \(s1, s2\) and 'donor1' "
                                        r"\(s3, s4\) differ only in case: they would be trained as two groups, and "
                                        r"results/Donor1/ and results/donor1/ are one folder on macOS and Windows\. "
                                        r"Fix: write the group alike in the rows of its slides"):
        slides_and_groups(rows, "sheet.tsv")
    with pytest.raises(PlanError, match=r"groups 'G' \(s1\) and 'g' \(s2\) differ only in case"):
        slides_and_groups(_rows(s1="G", s2="g"), "sheet.tsv")         # not 'has one slide'


def test_a_group_written_as_one_number_two_ways_is_named():
    """A group column a spreadsheet saved with some rows as numbers: '1' and '1.0', or '01' and '1'
    (its leading zero dropped), were two groups trained apart without a word, or, with one slide in
    one of them, refused as 'has one slide'."""
    def four(*written):
        return [dict(row, sample=f"s{i}", group=group) for i, (row, group) in enumerate(zip(_rows() * 2, written), 1)]

    with pytest.raises(PlanError, match=r"^sample sheet 'sheet\.tsv': groups '1' \(s1, s2\) and '1\.0' \(s3, s4\) are "
                                        r"one number written two ways \(a spreadsheet's number format writes 1 as 1\.0 "
                                        r"and drops the leading zero of 01, .*\): they would be trained as two groups\. "
                                        r"Fix: write the group alike in the rows of its slides \(format the column as "
                                        r"text in the spreadsheet\), or rename one, if they are two groups$"):
        slides_and_groups(four("1", "1", "1.0", "1.0"), "sheet.tsv")
    with pytest.raises(PlanError, match=r"groups '01' \(s1, s2\) and '1' \(s3\) are one number written two ways"):
        slides_and_groups(_rows(s1="01", s2="01", s3="1"), "sheet.tsv")         # not 'has one slide'
    assert slides_and_groups(four("1", "1", "2", "2"), "sheet.tsv")[1] == {"1": ["s1", "s2"], "2": ["s3", "s4"]}
    assert slides_and_groups(four("1.5", "1.5", "15", "15"), "sheet.tsv")[1] == {"1.5": ["s1", "s2"], "15": ["s3", "s4"]}


def test_a_group_column_of_zeros_and_ones_is_named():
    """A group column every cell of which is 0 or 1 (a spreadsheet's checkbox, or a yes/no column exported as
    numbers): the slides marked 0, meant to stand alone, were trained as one group named '0' without a word.
    Groups named otherwise, or 0 and 1 beside an empty cell or another group, stay as written."""
    def four(*written):
        return [dict(row, sample=f"s{i}", group=group) for i, (row, group) in enumerate(zip(_rows() * 2, written), 1)]

    with pytest.raises(PlanError, match=r"^sample sheet 'sheet\.tsv': every group cell is 0 or 1 \(0: s3, s4; 1: s1, "
                                        r"s2\), as a spreadsheet's checkbox .* Fix: leave the group cell empty for a "
                                        r"slide that stands alone, .*name them so \(e\.g\. 'g0' and 'g1'\)$"):
        slides_and_groups(four("1", "1", "0", "0"), "sheet.tsv")
    with pytest.raises(PlanError, match=r"every group cell is 0 or 1 \(0: s1, s2; 1: s3, s4\)"):
        slides_and_groups(four("0.0", "0", "1", "1"), "sheet.tsv")
    assert slides_and_groups(four("1", "1", "0", "0", ""), "sheet.tsv")[1] == {"1": ["s1", "s2"], "0": ["s3", "s4"]}
    assert slides_and_groups(four("g1", "g1", "g0", "g0"), "sheet.tsv")[1] == {"g1": ["s1", "s2"], "g0": ["s3", "s4"]}
    assert slides_and_groups(four("1", "1", "2", "2"), "sheet.tsv")[1] == {"1": ["s1", "s2"], "2": ["s3", "s4"]}


def test_a_group_written_as_an_empty_cell_is_named():
    """R's write.table writes an empty group cell as NA (pandas' astype(str) as nan): the slides that
    stand alone were trained as one group named 'NA' without a word."""
    with pytest.raises(PlanError, match=r"^sample sheet 'sheet\.tsv': group 'NA' \(s1, s2, s3\) is how R's "
                                        r"write\.table and pandas' astype\(str\) write an empty cell, so these slides "
                                        r"would be trained as one group named 'NA'\. Fix: leave the group cell empty"):
        slides_and_groups(_rows(s1="NA", s2="NA", s3="NA"), "sheet.tsv")
    for empty in ("nan", "None", "NULL"):
        with pytest.raises(PlanError, match=f"group '{empty}' \\(s1, s2\\) is how R's write.table"):
            slides_and_groups(_rows(s1=empty, s2=empty), "sheet.tsv")
    assert slides_and_groups(_rows(s1="NAc", s2="NAc"), "sheet.tsv")[1] == {"NAc": ["s1", "s2"]}


def test_a_group_column_of_true_and_false_is_named():
    """A group column a spreadsheet filled with checkboxes or TRUE/FALSE (pandas' and R's logical
    columns write True/False, TRUE/FALSE): the slides marked FALSE, meant to stand alone, were trained
    as one group named 'FALSE' without a word, and those marked TRUE as one named 'TRUE'."""
    for word in ("FALSE", "TRUE", "False", "true"):
        with pytest.raises(PlanError, match=rf"^sample sheet 'sheet\.tsv': group '{word}' \(s1, s2\) is a yes/no value, "
                                            r"as a spreadsheet's checkbox or TRUE/FALSE column .*writes it, not a group's "
                                            rf"name, so these slides would be trained as one group named '{word}'\. Fix: "
                                            r"leave the group cell empty for a slide that stands alone"):
            slides_and_groups(_rows(s1=word, s2=word), "sheet.tsv")
    with pytest.raises(PlanError, match=r"group 'FALSE' \(s3\) is a yes/no value"):     # not 'has one slide'
        slides_and_groups(_rows(s1="g", s2="g", s3="FALSE"), "sheet.tsv")
    assert slides_and_groups(_rows(s1="TRUEseq", s2="TRUEseq"), "sheet.tsv")[1] == {"TRUEseq": ["s1", "s2"]}


def _config(**methods):
    return {"methods": methods or {"graphst": {"model": "graphst"}}, "seeds": [0, 1], "consensus": True,
            "train": {"device": "auto", "epochs": 600, "n_latent": 64}, "graph": {"mode": "knn"},
            "cluster": {"algorithm": "mclust", "auto_range": [2, 15], "subset": 2000}, "compare": {}}


def _plan(config, **groups):
    slides, found = slides_and_groups(_rows(**groups), "sheet.tsv")
    return Plan(config, slides, found, METHODS)


def test_a_bad_cell_is_named_by_row_sample_and_column_with_what_it_takes():
    rows = [{"sample": "a", "n_clusters": 7}, {"sample": "b", "n_clusters": "four"}]
    takes = {"n_clusters": "number of spatial domains to find (2 or more), or auto"}
    assert cell_problem("s.tsv", rows, "n_clusters", 1, "'four' does not match '^auto$'", takes) == (
        "sample sheet 's.tsv', row 2 (sample 'b'), column n_clusters: 'four' is not valid. "
        "Fix: n_clusters: number of spatial domains to find (2 or more), or auto")
    assert cell_problem("s.tsv", rows, "n_clusters", 0, "1 is less than the minimum of 2", takes).endswith(
        "row 1 (sample 'a'), column n_clusters: 1 is less than the minimum of 2. Fix: n_clusters: number of "
        "spatial domains to find (2 or more), or auto")
    assert cell_problem("s.tsv", rows, "colour", 1, "x", takes) is None          # no description: not named here
    assert cell_problem("s.tsv", rows, "n_clusters", None, "x", takes) is None


def test_a_target_of_a_slide_or_method_the_plan_does_not_have_is_named():
    """snakemake results/c/qc.json where the sheet has no slide c (a typo, a slide left out): Snakemake
    said only 'MissingRuleException: No rule to produce results/c/qc.json'."""
    plan = _plan(_config(), s1="g", s2="g")
    gone = lambda path: False
    line = plan.unknown_target(["results/c/qc.json"], "sheet.tsv", gone)
    assert line == ("target results/c/qc.json: sample 'c' is not in the sample sheet 'sheet.tsv' (its samples: "
                    "s1, s2, s3, g), so no rule makes it. Fix: add a row for 'c' to 'sheet.tsv' (or the sheet "
                    "this config names), or ask for one of its samples")
    assert "sample 'c'" in plan.unknown_target(["all", "results/c/graphst/seed0/domains.h5ad"], "sheet.tsv", gone)
    line = plan.unknown_target(["results/s1/grapst/seed0/domains.h5ad"], "sheet.tsv", gone)
    assert line.startswith("target results/s1/grapst/seed0/domains.h5ad: method 'grapst' is not in the config "
                           "(its methods and combinations: graphst)")
    valid = ["all", "compare", "results/table.tsv", "results/summary.html", "results/compare/agreement.tsv",
             "results/compare/figures/ari_boxplot.png", "results/simulated/x.h5ad", "results/g/qc.json",
             "results/s1/qc.json", "results/s3/graphst/seed0/domains.h5ad", "results/g/graphst/consensus/labels.tsv"]
    assert plan.unknown_target(valid, "sheet.tsv", gone) is None
    assert plan.unknown_target(["results/c/qc.json"], "sheet.tsv", lambda path: True) is None   # exists: kept


def test_a_target_of_a_run_on_a_slide_its_method_does_not_run_on_is_named():
    """snakemake results/s3/graphst/seed0/domains.h5ad where graphst's samples: are [s1] (or a peer's run
    on a group): the rules made the run without a word, one the results table does not list (a peer
    trained on the group's slides joined as one, its graph joining their spots)."""
    plan = _plan(_config(graphst={"model": "graphst", "samples": ["s1"]},
                         km={"train_from": "graphst", "cluster": {"algorithm": "kmeans"}},
                         stagate={"model": "stagate"}), s1="g", s2="g")
    gone = lambda path: False
    line = plan.unknown_target(["results/s3/graphst/seed0/domains.h5ad"], "sheet.tsv", gone)
    assert line == ("target results/s3/graphst/seed0/domains.h5ad: method 'graphst' does not run on sample 's3' "
                    "(it runs on s1: methods.graphst.samples in the config), so no run of the config makes it and "
                    "results/table.tsv would not list it. Fix: add 's3' to methods.graphst.samples in the config, "
                    "or ask for one of the slides it runs on")
    assert "method 'km' does not run on sample 's3' (it runs on s1: methods.graphst.samples" in plan.unknown_target(
        ["results/s3/km/consensus/labels.tsv"], "sheet.tsv", gone)
    line = plan.unknown_target(["results/g/stagate/seed0/domains.h5ad"], "sheet.tsv", gone)
    assert line.startswith("target results/g/stagate/seed0/domains.h5ad: method 'stagate' does not run on sample "
                           "'g' (it runs on s1, s2, s3; model stagate runs on no group")
    assert line.endswith("Fix: ask for the group's slides alone (s1, s2), or for a built-in method on the group")
    assert plan.unknown_target(["results/s1/graphst/seed0/domains.h5ad", "results/s3/stagate/seed1/train.npz",
                                "results/g/qc.json", "results/s3/qc.json"], "sheet.tsv", gone) is None
    assert plan.unknown_target(["results/s3/graphst/seed0/domains.h5ad"], "sheet.tsv", lambda path: True) is None


def test_a_target_of_a_seed_or_consensus_the_config_does_not_run_is_named():
    """snakemake results/s1/graphst/consensus/domains.h5ad with one seed made a 'consensus' of seed 0's
    labels alone (with consensus: false, one the config turned off), and results/s1/graphst/seed7/...
    a run at a seed the table and the consensus do not count, without a word.  Every file the plan
    makes or reads (a train_from's training at its seeds too) passes."""
    config = _config(graphst={"model": "graphst", "seeds": [0]},
                     km={"train_from": "graphst", "cluster": {"algorithm": "kmeans"}, "seeds": [0, 1]},
                     expr={"model": "expression"}, stagate={"model": "stagate"})
    config["ensembles"] = {"rec": {"methods": ["km", "expr"]}}
    plan = _plan(config, s1="g", s2="g")
    gone = lambda path: False
    assert plan.unknown_target(["results/s1/graphst/consensus/domains.h5ad"], "sheet.tsv", gone) == (
        "target results/s1/graphst/consensus/domains.h5ad: method 'graphst' runs at one seed (0: methods.graphst.seeds "
        "in the config), and a consensus combines two seeds or more, so its 'consensus' would be seed 0's labels. "
        "Fix: give it three seeds or more (methods.graphst.seeds: [0, 1, 2]), or ask for seed0")
    assert plan.unknown_target(["results/s1/expr/seed7/labels.tsv"], "sheet.tsv", gone) == (
        "target results/s1/expr/seed7/labels.tsv: method 'expr' runs at seeds 0, 1 (seeds in the config), not 7, so "
        "no run of the config makes it and results/table.tsv (and the consensus of its seeds) would not count it. "
        "Fix: add 7 to seeds in the config, or ask for one of its seeds")
    assert "combination 'rec' runs at seeds 0, 1 (the seeds of each of its methods (km, expr) in the config), not 2" in \
        plan.unknown_target(["results/g/rec/seed2/domains.h5ad"], "sheet.tsv", gone)
    planned = (plan.run_outputs("domains.h5ad") + plan.consensus_outputs("domains.h5ad")
               + plan.ensemble_outputs("domains.h5ad") + plan.table_files("labels") + plan.table_files("metrics")
               + [plan.train_output("train.npz", s, m, seed) for m in plan.methods for s in plan.samples_of(m)
                  for seed in plan.seeds_of(m)])
    assert "results/s1/graphst/seed1/train.npz" in planned and "results/g/rec/consensus/domains.h5ad" in planned
    assert plan.unknown_target(planned, "sheet.tsv", gone) is None
    config["consensus"] = False
    line = _plan(config, s1="g", s2="g").unknown_target(["results/s1/km/consensus/labels.tsv"], "sheet.tsv", gone)
    assert line == ("target results/s1/km/consensus/labels.tsv: method 'km': the config's consensus is false, so it "
                    "makes no consensus of the seeds. Fix: set consensus: true in the config, or ask for one of its "
                    "seeds (seed<N>)")


def test_a_spatialdata_target_of_a_slide_not_read_from_a_store_is_named():
    """snakemake results/s1/graphst/seed0/domains.zarr of an h5ad slide (or a group): the export job
    opened the .h5ad as a zarr store and failed with 'GroupNotFoundError' and a traceback."""
    plan = _plan(_config(), s1="g", s2="g")
    gone = lambda path: False
    assert plan.unknown_target(["results/s1/graphst/seed0/domains.zarr"], "sheet.tsv", gone) == (
        "target results/s1/graphst/seed0/domains.zarr: domains.zarr holds the domains of a slide read from a "
        "SpatialData store (format spatialdata), annotating its shapes; sample 's1' is read as format h5ad, so no "
        "export of the config makes it. Fix: ask for results/s1/graphst/seed0/domains.h5ad, which holds "
        "its domains")
    assert "sample 'g' is a group of slides" in plan.unknown_target(["results/g/graphst/consensus/domains.zarr"],
                                                                    "sheet.tsv", gone)
    plan.slides["s3"]["format"] = "spatialdata"
    assert plan.unknown_target(["results/s3/graphst/seed0/domains.zarr"], "sheet.tsv", gone) is None
    assert plan.unknown_target(plan.spatialdata_outputs(), "sheet.tsv", gone) is None
    assert plan.spatialdata_outputs()


def test_a_training_target_of_a_method_that_trains_from_another_is_named():
    """snakemake results/s1/km/seed0/train.npz where km has train_from: graphst: the train rule trained a
    model of its own in km's folder without a word, one km's clustering never reads (it reads graphst's)."""
    plan = _plan(_config(graphst={"model": "graphst"},
                         km={"train_from": "graphst", "cluster": {"algorithm": "kmeans"}}))
    gone = lambda path: False
    assert plan.unknown_target(["results/s1/km/seed1/losses.tsv"], "sheet.tsv", gone) == (
        "target results/s1/km/seed1/losses.tsv: method 'km' clusters the training of 'graphst' (its train_from), so "
        "it trains nothing itself and its clustering never reads this file. Fix: ask for "
        "results/s1/graphst/seed1/losses.tsv, the training it clusters")
    assert "Fix: ask for results/s1/graphst/seed0/train.npz" in plan.unknown_target(
        ["results/s1/km/seed0/train.npz"], "sheet.tsv", gone)
    assert plan.unknown_target(["results/s1/km/seed0/labels.tsv", "results/s1/graphst/seed0/train.npz"],
                               "sheet.tsv", gone) is None


def test_the_targets_are_read_from_a_snakemake_command_line():
    from stcore.plan.stamps import command_line_targets

    argv = ["/venv/bin/snakemake", "--directory", "w", "-n", "results/c/qc.json", "all", "--cores", "1"]
    assert command_line_targets(argv) == ["results/c/qc.json", "all"]
    assert command_line_targets(["/venv/bin/snakemake", "-n", "--cores", "1"]) == []
    assert command_line_targets(["/venv/bin/pytest", "results/c/qc.json"]) == []     # no Snakemake command line


def test_slides_whose_files_are_missing_are_warned_of(tmp_path):
    from stcore.formats import missing_slide

    (tmp_path / "here.h5ad").write_bytes(b"x")
    (tmp_path / "folder").mkdir()
    plan = _plan(_config(), s1="g", s2="g")                       # a group: made of its slides, not warned of
    paths = {"s1": tmp_path / "here.h5ad", "s2": tmp_path / "gone.h5ad", "s3": tmp_path / "folder"}
    for sample, path in paths.items():
        plan.slides[sample]["path"], plan.slides[sample]["format"] = str(path), "h5ad"
    lines = plan.missing_slides(missing_slide)
    assert lines == [
        f"WARNING sample 's2', file '{paths['s2']}': file not found; its jobs will fail (the other slides run with "
        "--keep-going). Fix: check the path in the sample sheet",
        f"WARNING sample 's3', file '{paths['s3']}': is a folder; format h5ad reads an .h5ad file; its jobs will "
        "fail (the other slides run with --keep-going). Fix: give the .h5ad file's path (a Space Ranger folder: "
        "format visium; a .zarr store: format spatialdata)"]
    # a slide the simulate rule writes is not there before the run: not warned of
    made = _plan(_config() | {"simulate": {"s2": {"n_spots": 100}, "s3": {"n_spots": 100}}})
    for sample in ("s2", "s3"):
        made.slides[sample]["path"] = f"results/simulated/{sample}.h5ad"
    made.slides["s1"]["path"] = str(paths["s1"])
    assert made.missing_slides(missing_slide) == []


def test_slides_named_from_the_sheets_folder_are_warned_of(tmp_path, monkeypatch):
    """A sheet in project/ naming its slides from its own folder (s1.h5ad, project/s1.h5ad on disk),
    run with --config samples=project/sheet.tsv: a missing file's warning names the file beside the
    sheet and data_dir; a slide found in the working folder while the sheet's folder holds another
    file of that name (s2) was read without a word."""
    from stcore.formats import missing_slide

    monkeypatch.chdir(tmp_path)
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "s1.h5ad").write_bytes(b"x")
    (tmp_path / "project" / "s2.h5ad").write_bytes(b"the sheet's s2")
    (tmp_path / "s2.h5ad").write_bytes(b"another s2, in the working folder")
    (tmp_path / "project" / "s3.h5ad").write_bytes(b"s3")
    (tmp_path / "s3.h5ad").write_bytes(b"s3")                     # a copy of one slide: not warned of
    plan = _plan(_config() | {"samples": "project/sheet.tsv"})
    assert plan.missing_slides(missing_slide) == [
        "WARNING sample 's1', file 's1.h5ad': file not found (a relative path is read from the folder the workflow "
        f"runs in, not the sheet's: {tmp_path / 's1.h5ad'}); its jobs will fail (the other slides run with "
        "--keep-going). Fix: 'project/s1.h5ad' beside the sample sheet exists: set data_dir: project in the config "
        "(the sheet's relative paths are then read from its folder), or write the path as 'project/s1.h5ad'",
        f"WARNING sample 's2', file 's2.h5ad': read from the folder the workflow runs in ({tmp_path / 's2.h5ad'}), "
        "not the sample sheet's, whose folder holds another 'project/s2.h5ad' (its size differs): the slide read may "
        "not be the one the sheet means. Fix: if it is 'project/s2.h5ad', set data_dir: project in the config (the "
        "sheet's relative paths are then read from its folder); else rename one of them"]
    assert _plan(_config() | {"samples": "project/sheet.tsv", "data_dir": "project"}).missing_slides(
        missing_slide)[0].endswith("Fix: check the path in the sample sheet")      # data_dir set: as before


def test_the_slides_the_simulate_rule_makes_are_its_inputs_and_have_no_input_stamp(tmp_path):
    """A sheet that names a simulated slide (results/simulated/<name>.h5ad, a name of the config's
    simulate:) before it exists: its qc job's input is that file, so the simulate rule runs first, and
    it gets no input stamp (the DAG tracks it).  A slide of the sheet whose files are missing declares
    no input and no stamp (its qc job names what is missing); one whose files are there, the stamp
    of their digest, which stands for its files (their path is no input: a folder moved reruns nothing).  A path under results/simulated/ of no simulated name is a slide
    like any other."""
    from stcore.formats import slide_files
    from stcore.plan.runs import choices, simulated_file

    config = _config() | {"simulate": {"s1": {"n_spots": 100}, "sim.2": {"n_spots": 200}}}
    plan = _plan(config, s2="g", s3="g")
    plan.slides["s1"]["path"] = "./results/simulated/s1.h5ad"          # as a sheet may write it
    plan.slides["s2"]["path"] = str(tmp_path / "s2.h5ad")               # there
    plan.slides["s3"]["path"] = "results/simulated/other.h5ad"         # not a simulated name, not there
    (tmp_path / "s2.h5ad").write_bytes(b"x")
    assert plan.simulated == ["s1", "sim.2"] and simulated_file("sim.2") == "results/simulated/sim.2.h5ad"
    assert simulated_file() == "results/simulated/{name}.h5ad"
    assert [plan.made_here(s) for s in ("s1", "s2", "s3")] == [True, False, False]
    assert plan.raw_input("s1", slide_files) == ["./results/simulated/s1.h5ad"]
    assert plan.raw_input("s2", slide_files) == [str(tmp_path / "s2.h5ad")]
    assert plan.raw_input("s3", slide_files) == []
    # the qc job declares the simulated slide's file only: a slide's input stamp stands for its files
    assert [plan.qc_input(s, slide_files) for s in ("s1", "s2", "s3")] == [["./results/simulated/s1.h5ad"], [], []]
    kept, digested = {}, []

    def keep_stamp(sample, keep):                  # as RunStamps.input keeps it
        kept[sample] = keep
        return None if keep is None else keep(f"results/records/input/{sample}.json", None)

    def digest_stamp(path, fmt, stamp, scratch, report):   # as stcore.formats.digest_stamp: None where no files
        digested.append((path, fmt, stamp, scratch, report))
        return stamp if os.path.exists(path) else None

    assert plan.input_stamp("s1", keep_stamp, digest_stamp) == [] and kept["s1"] is None and digested == []
    assert plan.input_stamp("s2", keep_stamp, digest_stamp) == "results/records/input/s2.json"
    assert plan.input_stamp("s3", keep_stamp, digest_stamp) == []
    assert digested == [(str(tmp_path / "s2.h5ad"), "h5ad", "results/records/input/s2.json", None,
                         "results/s2/qc.json"),
                        ("results/simulated/other.h5ad", "h5ad", "results/records/input/s3.json", None,
                         "results/s3/qc.json")]
    # made here once its file exists too: its file, still no stamp
    (tmp_path / "results" / "simulated").mkdir(parents=True)
    plan.slides["s1"]["path"] = str(tmp_path / "results" / "simulated" / "s1.h5ad")
    assert not plan.made_here("s1")                # an absolute path is the sheet's own file
    # the digests the repeated-slides warning compares: each slide's input stamp's
    assert plan.input_digests(lambda stamp: stamp) == {s: f"results/records/input/{s}.json" for s in ("s1", "s2", "s3")}
    # the wildcards the rules constrain: exactly these names; none matches no path
    assert re.fullmatch(choices(plan.simulated), "sim.2") and not re.fullmatch(choices(plan.simulated), "simx2")
    assert choices([]) == "NONE"
    assert _plan(_config()).simulated == [] and not _plan(_config()).made_here("s1")


def test_the_comparisons_figures_and_a_methods_training_run_are_the_plans():
    """The files rules/report.smk and the rules that read a training run name (rules/common.smk,
    compare_figures and train_output): one figure of a kind per slide of the sheet (not per group),
    none where the figure is not drawn; a method with train_from reads its source's run."""
    plan = _plan(_config(graphst={"model": "graphst"}, latent={"train_from": "graphst"}), s1="g", s2="g")
    assert plan.figure_files("domains") == [(s, f"results/compare/figures/domains_{s}.png") for s in ("s1", "s2", "s3")]
    assert plan.figure_files("umap", True, ["s3"]) == [("s3", "results/compare/figures/umap_s3.png")]
    assert plan.figure_files("losses", False) == []
    assert plan.train_output("train.npz", "s1", "latent", 2) == "results/s1/graphst/seed2/train.npz"
    assert plan.train_output("train.npz", "g", "graphst", "0") == "results/g/graphst/seed0/train.npz"
    # the comparison's methods: the config's compare block, its defaults where the block is not given
    assert (plan.figure_method, plan.agreement_method, plan.compare) == ("graphst", None, {})
    plan.config["compare"] = {"figure_method": "latent", "agreement_method": "graphst"}
    assert (plan.figure_method, plan.agreement_method) == ("latent", "graphst")
    assert plan.job_settings("agreement", "all")["method"] == "graphst"


def test_slides_that_hold_the_same_data_are_warned_of():
    plan = _plan(_config())
    lines = plan.repeated_slides({"s1": "ab" * 32, "s2": "cd" * 32, "s3": "ab" * 32})
    assert lines == ["WARNING samples 's1', 's3' read the same data (input_sha256 abababababab...): their rows will be "
                     "the same slide's, counted 2 times. Fix: check their paths in the sample sheet (a folder copied "
                     "under two names?)"]
    assert plan.repeated_slides({"s1": "ab" * 32, "s2": None, "s3": None}) == []


def test_one_file_named_by_two_rows_is_named_with_its_paths(tmp_path, monkeypatch):
    """Two rows naming one file written two ways (relative, with './', absolute): the warning said
    'a folder copied under two names?' and named no path, so the rows looked like two slides."""
    monkeypatch.chdir(tmp_path)
    rows = [dict(row, path=path) for row, path in zip(_rows(), ("data/x.h5ad", "./data/x.h5ad", str(tmp_path / "data/x.h5ad")))]
    slides, found = slides_and_groups(rows, "sheet.tsv")
    plan = Plan(_config(), slides, found, METHODS)
    lines = plan.repeated_slides({"s1": "ab" * 32, "s2": "ab" * 32, "s3": "cd" * 32})
    assert lines == ["WARNING samples 's1', 's2' read the same data (input_sha256 abababababab...): one file, which the "
                     "sample sheet names 2 times ('data/x.h5ad' (s1), './data/x.h5ad' (s2)), so the slide is trained 2 "
                     "times under 2 ids and counted 2 times in results/table.tsv. Fix: keep one of the rows s1, s2 in "
                     "the sample sheet"]
    assert f"'{tmp_path / 'data/x.h5ad'}' (s3)" in plan.repeated_slides({s: "ab" * 32 for s in ("s1", "s2", "s3")})[0]
    rows[1]["n_clusters"] = 5                  # one slide at two numbers of domains, as meant
    plan = Plan(_config(), *slides_and_groups(rows, "sheet.tsv"), METHODS)
    assert plan.repeated_slides({"s1": "ab" * 32, "s2": "ab" * 32})[0].endswith(
        "Fix: nothing where they are meant as runs of one slide with other n_clusters; else keep one of the rows s1, s2 "
        "in the sample sheet")


def test_one_stereo_gem_at_two_bin_sizes_is_two_slides_not_one_named_twice():
    """Rows of one GEM at bin sizes 50 and 100 sum other DNBs into other spots: the warning called them one
    file named twice, 'so the slide is trained 2 times ... Fix: keep one of the rows'; at one bin size (an
    empty cell is 50) it still does, and their qc jobs' settings are one."""
    rows = [{"sample": s, "path": "chip.gem.gz", "format": "stereo", "n_clusters": 7, "truth": "", "values": "counts",
             "group": "", "bin_size": size} for s, size in (("b50", 50), ("b100", 100), ("again", 50), ("dflt", ""))]
    plan = Plan(dict(_config(), qc={"min_counts": 0}), *slides_and_groups(rows, "sheet.tsv"), METHODS)
    digests = {s: "ab" * 32 for s in ("b50", "b100", "again", "dflt")}
    lines = plan.repeated_slides(digests)
    assert len(lines) == 1 and lines[0].startswith("WARNING samples 'b50', 'again', 'dflt' read the same data")
    assert plan.repeated_slides({"b50": "ab" * 32, "b100": "ab" * 32}) == []
    assert plan.job_settings("qc", "dflt")["bin_size"] == plan.job_settings("qc", "b50")["bin_size"] == 50
    assert plan.job_settings("qc", "b100")["bin_size"] == 100


def test_qc_of_a_stereo_gem_asks_for_its_measured_peaks_at_each_bin_size(tmp_path):
    """A GEM's header gives no matrix, so qc asked 8 times its file's size as for any such file: 920 MB for the
    51 MiB GEM of DLPFC 151673 in bins of 1, whose reading peaked at 2,075 MB (benchmarks/results/stereo_gem.tsv),
    and the job was killed.  Now it is sized from the GEM's lines and the spots its bin size makes, at or above
    each measured peak and at most 2.5 times it."""
    from types import SimpleNamespace as Job

    from stcore.plan.resources import JobResources, qc_mem_mb, stereo_qc_mem_mb

    def gem(name, mib):                 # gzip's magic bytes, then a hole: the size, no disk
        path = tmp_path / name
        with open(path, "wb") as fh:
            fh.write(b"\x1f\x8b")
            fh.truncate(int(mib * 2**20))
        return str(path)

    small, large = gem("chip.gem.gz", 51), gem("ten.gem.gz", 508)
    for path, bin_size, peak in ((small, 50, 520), (small, 1, 2075), (large, 50, 788)):
        asked = stereo_qc_mem_mb(path, bin_size, 1)
        assert peak <= asked <= 2.5 * peak, (path, bin_size, asked)
        assert stereo_qc_mem_mb(path, bin_size, 2) >= 2 * asked - 1
    assert qc_mem_mb([small], 1) < 2075                       # what a file without a header is asked: under the peak
    rows = [{"sample": s, "path": small, "format": "stereo", "n_clusters": 7, "truth": "", "values": "counts",
             "group": "", "bin_size": size} for s, size in (("b1", 1), ("b50", ""))]
    plan = Plan(_config(), *slides_and_groups(rows, "sheet.tsv"), METHODS)
    resources = JobResources(plan)
    assert resources.qc_mem_mb(Job(sample="b1"), Job(raw=[small]), 1) == stereo_qc_mem_mb(small, 1, 1)
    assert resources.qc_mem_mb(Job(sample="b50"), Job(raw=[small]), 1) == stereo_qc_mem_mb(small, 50, 1)


def test_one_slide_given_a_row_per_group_is_named_as_such():
    """A slide meant for two groups, given a row per group (a group cell holds one group, as its
    refusal says): the warning told to check the paths for a folder copied under two names."""
    rows = [{"sample": s, "path": p, "format": "h5ad", "n_clusters": 7, "truth": "", "values": "counts", "group": g}
            for s, p, g in (("a", "a.h5ad", "g1"), ("b", "b.h5ad", "g1"), ("a_g2", "a.h5ad", "g2"),
                            ("c", "c.h5ad", "g2"))]
    slides, found = slides_and_groups(rows, "sheet.tsv")
    plan = Plan(_config(), slides, found, METHODS)
    lines = plan.repeated_slides({"a": "ab" * 32, "b": "cd" * 32, "a_g2": "ab" * 32, "c": "ef" * 32})
    assert lines == ["WARNING samples 'a', 'a_g2' read the same data (input_sha256 abababababab...): one slide in "
                     "groups g1, g2, trained with each; it also runs alone under each id, so its runs alone are "
                     "counted 2 times in results/table.tsv. Fix: nothing where the slide is meant for each group; "
                     "count its runs alone once when comparing slides"]


def test_result_folders_no_run_of_the_config_has_are_warned_of(tmp_path, monkeypatch):
    """Seeds [0, 1] then [0], or a method taken out: the earlier runs' folders (seed1/, consensus/) stayed
    beside the current ones without a word, and a user opened the old consensus as this run's answer."""
    from stcore.plan.runs import result_folders

    monkeypatch.chdir(tmp_path)
    for folder in ("s1/graphst/seed0", "s1/graphst/seed1", "s1/graphst/consensus", "s1/old/seed0", "gone/graphst/seed0",
                   "s2/graphst/seed0", "s2/graphst/seed7", "records/train", "simulated", "compare/figures"):
        (tmp_path / "results" / folder).mkdir(parents=True)
    for f in ("s1/graphst/seed0/domains.h5ad", "s1/graphst/seed1/labels.tsv", "s1/graphst/consensus/domains.h5ad",
              "s1/old/seed0/domains.h5ad", "gone/graphst/seed0/labels.tsv", "s2/graphst/seed0/domains.h5ad",
              "records/train/s1.graphst.seed0.tsv"):
        (tmp_path / "results" / f).write_text("")
    found = result_folders("results")          # s2/graphst/seed7 holds no result: a folder only
    assert found == ["results/gone/graphst/seed0", "results/s1/graphst/consensus", "results/s1/graphst/seed0",
                     "results/s1/graphst/seed1", "results/s1/old/seed0", "results/s2/graphst/seed0"]
    config = _config()
    config["seeds"] = [0]
    assert _plan(config).stale_runs(found) == [
        "WARNING 4 result folders not of this config's runs (left by an earlier config or sample sheet): "
        "results/gone, results/s1/graphst/consensus, results/s1/graphst/seed1, results/s1/old; "
        "results/table.tsv lists this config's runs only. Fix: delete them if they are not wanted (rm -r "
        "results/gone results/s1/graphst/consensus results/s1/graphst/seed1 results/s1/old)"]
    config = _config(graphst={"model": "graphst"}, old={"model": "graphst"})
    assert _plan(config).stale_runs([f for f in found if "gone" not in f]) == []     # seeds 0, 1 and consensus
    assert _plan(config).stale_runs(found) == [                                        # one folder: it
        "WARNING 1 result folder not of this config's runs (left by an earlier config or sample sheet): "
        "results/gone; results/table.tsv lists this config's runs only. Fix: delete it if it is not wanted "
        "(rm -r results/gone)"]


def test_the_folder_of_a_slide_whose_id_changed_is_said_to_be_that_slide(tmp_path, monkeypatch):
    """A sample id renamed in the sheet (a spreadsheet dropped a leading zero: 0151673 -> 151673, or d -> 0d):
    the slide ran again under the new id and the end of the run named results/<old id> among the folders not of
    the config's runs, as it names a slide taken out, with nothing to tell the two apart.  Now the input stamp
    the old id left (results/records/input/<old>.json) is compared with the sheet's slides': a folder of the same
    data is said to be that slide under an earlier id; a slide taken out (other data) is named as before."""
    from stcore.formats import stamp_digest
    from stcore.plan.stamps import INPUT_STAMP, write_stamp

    monkeypatch.chdir(tmp_path)
    config = _config()
    config["seeds"] = [0]
    plan = _plan(config)
    same, other = "ab" * 32, "cd" * 32
    for sample, digest in (("s1", same), ("d", same), ("gone", other), ("s2", "ef" * 32)):
        write_stamp(INPUT_STAMP.format(sample=sample), {"input_sha256": digest})
    found = ["results/d/graphst/seed0", "results/gone/graphst/seed0", "results/s1/graphst/seed0"]
    before = ("WARNING 2 result folders not of this config's runs (left by an earlier config or sample sheet): "
              "results/d, results/gone; ")
    after = ("results/table.tsv lists this config's runs only. Fix: delete them if they are not wanted "
             "(rm -r results/d results/gone)")
    assert plan.stale_runs(found, stamp_digest) == [
        f"{before}results/d holds the same slide as sample 's1' (input_sha256 abababababab...) under an earlier id: "
        f"was the id changed in the sample sheet? this run made the slide's results again under the new one. {after}"]
    assert plan.stale_runs(found) == [before + after]            # no stamps read: as before
    # the old id's stamp gone, or of other data: nothing said of it
    (tmp_path / INPUT_STAMP.format(sample="d")).unlink()
    assert plan.stale_runs(found, stamp_digest) == [before + after]


def test_stale_folders_name_a_method_or_slide_taken_out_as_one_folder():
    """Runs of a method the slide no longer runs are named by results/<sample>/<method>, those of a slide
    not in the sheet by results/<sample>; never a slide of the plan's folder (its qc files are current),
    nor records/, compare/ or simulated/, nor a folder that holds a slide file of the sheet."""
    from stcore.plan.runs import stale_folders

    config = _config()
    config["seeds"] = [0]
    plan = _plan(config)
    plan.slides["s3"]["path"] = "results/kept/data/s3.h5ad"           # a slide file under results/
    found = ["results/s1/graphst/seed0", "results/s1/graphst/seed1", "results/s1/graphst/consensus",
             "results/s1/old/seed0", "results/s1/old/consensus", "results/gone/graphst/seed0",
             "results/gone/graphst/consensus", "results/gone/other/seed3", "results/records/graphst/seed0",
             "results/compare/graphst/seed2", "results/kept/graphst/seed0", "results/s2/graphst/seed0",
             "results/s3/graphst/seed0", "results/s3/banksy/seed0"]
    assert stale_folders(plan, found) == [
        "results/compare/graphst", "results/gone", "results/kept/graphst", "results/records/graphst",
        "results/s1/graphst/consensus", "results/s1/graphst/seed1", "results/s1/old", "results/s3/banksy"]
    lines = plan.stale_runs(found)
    assert lines[0].startswith("WARNING 8 result folders not of this config's runs (left by an earlier config or "
                               "sample sheet): results/compare/graphst, results/gone, results/kept/graphst, "
                               "results/records/graphst, results/s1/graphst/consensus and 3 more; ")
    assert lines[0].endswith("(rm -r results/compare/graphst results/gone results/kept/graphst results/records/graphst "
                             "results/s1/graphst/consensus results/s1/graphst/seed1 results/s1/old "
                             "results/s3/banksy)")       # every folder: a command to paste (was: '... and 3 more)')
    # every folder whose domains.h5ad a job of the plan writes is kept: groups, consensus, combinations
    config = _config(graphst={"model": "graphst"}, banksy={"model": "banksy"})
    config["ensembles"] = {"both": {"methods": ["graphst", "banksy"]}}
    plan = _plan(config, s1="g", s2="g")
    planned = [f.removesuffix("/domains.h5ad") for f in plan.run_outputs("domains.h5ad")
               + plan.consensus_outputs("domains.h5ad") + plan.ensemble_outputs("domains.h5ad")]
    assert {"results/g/graphst/seed1", "results/g/graphst/consensus", "results/s1/both/consensus",
            "results/s3/both/seed0"} <= set(planned)
    assert stale_folders(plan, planned) == [] and plan.stale_runs(planned) == []
    config["consensus"] = False                                        # the seeds' consensus no longer made
    assert stale_folders(_plan(config, s1="g", s2="g"), ["results/s1/graphst/consensus", "results/s1/graphst/seed0"]
                         ) == ["results/s1/graphst/consensus"]


def test_runs_seeds_slides_and_combinations():
    config = _config(graphst={"model": "graphst"}, latent={"train_from": "graphst", "cluster": {"input": "embedding"}},
                     banksy={"model": "banksy", "seeds": [1, 2]}, spagcn={"model": "spagcn", "samples": ["s1"]})
    config["ensembles"] = {"both": {"methods": ["graphst", "banksy"]}}
    plan = _plan(config, s1="g", s2="g")
    assert plan.units == ["s1", "s2", "s3", "g"]
    assert plan.samples_of("graphst") == ["s1", "s2", "s3", "g"] and plan.samples_of("latent") == plan.units
    assert plan.samples_of("banksy") == ["s1", "s2", "s3"]            # a peer never trains a group
    assert plan.source("latent") == "graphst" and plan.seeds_of("banksy") == [1, 2]
    assert plan.ensemble_samples("both") == ["s1", "s2", "s3"] and plan.ensemble_seeds("both") == [1]
    assert plan.ensemble_outputs("domains.h5ad") == [f"results/{s}/both/seed1/domains.h5ad" for s in ("s1", "s2", "s3")]
    assert "results/g/latent/consensus/labels.tsv" in plan.consensus_outputs("labels.tsv")
    assert "results/s1/spagcn/consensus/labels.tsv" in plan.consensus_outputs("labels.tsv")
    runs = plan.table_runs()
    latent = [r for r in runs if r["method"] == "latent" and r["sample"] == "g"]
    assert [r["seed"] for r in latent] == [0, 1, "consensus"] and latent[0]["group"] == "g"
    assert latent[0]["train_record"] == "results/records/train/g.graphst.seed0.tsv"
    assert [r["trained_by"] for r in runs if r["method"] == "both"] == ["graphst+banksy"] * 3
    assert not any("/both/consensus/" in f for f in plan.consensus_outputs("labels.tsv"))   # one seed in common
    # a combination at two seeds or more: its seeds' combinations combined too, costing its members at all of them
    paired = _plan(dict(config, ensembles={"pair": {"methods": ["graphst", "latent"]}}), s1="g", s2="g")
    assert [f for f in paired.consensus_outputs("labels.tsv") if "/pair/" in f] == [
        f"results/{s}/pair/consensus/labels.tsv" for s in ("s1", "s2", "s3", "g")]
    answer = [r for r in paired.table_runs() if r["method"] == "pair" and r["seed"] == "consensus"]
    assert len(answer) == 4 and answer[0]["members"] == ["graphst", "latent"] and answer[0]["member_seeds"] == [0, 1]
    # what a model's own clustering needs: the slide's number of domains, to those that train for it, and to
    # those whose own labels a method of the config reports (BANKSY's search is skipped where none does)
    assert "n_clusters" not in plan.train_settings("graphst", "s1")
    assert plan.train_settings("spagcn", "s1")["n_clusters"] == 7
    assert not plan.own_labels_reported("banksy") and "n_clusters" not in plan.train_settings("banksy", "s1")
    reported = _plan(dict(config, methods={**config["methods"], "banksy_own": {"train_from": "banksy",
                                                                              "cluster": {"algorithm": "own"}}}))
    assert reported.own_labels_reported("banksy") and reported.train_settings("banksy", "s1")["n_clusters"] == 7
    assert plan.train_env("graphst") == "../envs/stcore.yaml" and plan.train_env("banksy") != plan.train_env("graphst")
    assert plan.train_gpus("graphst") == 0
    # a GPU given to train jobs that train on the CPU (a --config that replaced the GPU profile's device) is said
    assert "train.device is auto, not cuda" in plan.idle_gpu(1) and "Fix: add train='{device: cuda}'" in plan.idle_gpu(1)
    assert plan.idle_gpu(None) is None and plan.idle_gpu(0) is None
    # on CUDA, the published methods' train jobs are given the profile's GPU too, which they never use: said
    cuda = dict(config, train={**config["train"], "device": "cuda"})
    peers = [m for m in config["methods"] if not METHODS[config["methods"][m].get("model", "graphst")].builtin]
    idle = _plan(cuda).idle_gpu(1)
    assert idle.startswith(f"warning: train jobs are given 1 GPU each (set-resources train: gpu, as profiles/slurm-gpu "
                           f"sets), those of {', '.join(peers)} too: published methods, which train on the CPU")
    assert "Fix: delete gpu under set-resources: train: in the profile" in idle
    assert all(_plan(cuda).train_gpus(m) == 0 for m in peers) and _plan(cuda).train_gpus("graphst") == 1
    builtin = {m: spec for m, spec in config["methods"].items() if m not in peers}
    assert _plan(dict(cuda, methods=builtin, ensembles={})).idle_gpu(1) is None
    # the report's first page: the first combination's answer where it runs (one seed in common: that seed's
    # vote), elsewhere every seed's map of the figure method (the first method when it is not one)
    graphst_seeds = plan.seeds_of("graphst")
    assert [(f["sample"], f["method"], f["seed"]) for f in plan.page_figures("graphst")] == (
        [(s, "both", 1) for s in ("s1", "s2", "s3")] + [("g", "graphst", k) for k in graphst_seeds])
    assert plan.page_figures("banksy")[0]["path"] == "results/s1/both/seed1/domains.png"
    plain = _plan(dict(config, ensembles={}), s1="g", s2="g")
    assert [(f["sample"], f["method"], f["seed"]) for f in plain.page_figures("banksy")] == (
        [(s, "banksy", k) for s in ("s1", "s2", "s3") for k in (1, 2)]
        + [("g", "graphst", k) for k in graphst_seeds])     # a group, which banksy does not train: graphst's map
    assert plain.page_figures("nope")[0]["path"] == "results/s1/graphst/seed0/domains.png"
    assert [(f["sample"], f["seed"], f["path"]) for f in paired.page_figures("banksy")] == [
        (s, "consensus", f"results/{s}/pair/consensus/domains.png") for s in ("s1", "s2", "s3", "g")]
    # a slide read from a SpatialData store: its domains also go back as a store, beside each domains.h5ad
    plan.slides["s2"]["format"] = "spatialdata"
    zarrs = plan.spatialdata_outputs()
    assert zarrs and all(z.startswith("results/s2/") and z.endswith("/domains.zarr") for z in zarrs)
    assert {"results/s2/graphst/seed0/domains.zarr", "results/s2/graphst/consensus/domains.zarr",
            "results/s2/both/seed1/domains.zarr"} <= set(zarrs)


def test_a_config_a_later_step_would_refuse_is_named_now():
    bad = [({"a": {"train_from": "b"}}, r"method 'a': train_from 'b' is not a method in the config"),
           ({"a": {"model": "graphst"}, "b": {"train_from": "b"}}, r"must name a method that trains itself"),
           ({"a": {"model": "graphst", "samples": ["nope"]}}, r"samples \['nope'\] are not in the sample sheet"),
           # what a method that clusters another's training says of the training was ignored without a word
           ({"a": {"model": "graphst"}, "r": {"train_from": "a", "train": {"epochs": 50}}},
            r"method 'r': train_from 'a' clusters the training of 'a', so its own train settings \(\{'epochs': 50\}\) "
            r"would be ignored\. Fix: set them in methods\.a\.train, or drop train_from to train 'r' itself"),
           ({"a": {"model": "graphst"}, "b": {"model": "banksy", "train_from": "a"}},
            r"method 'b': train_from 'a' clusters the training of 'a' \(model graphst\), so its model banksy would be "
            r"ignored\. Fix: drop its model, or drop train_from to train model banksy")]
    for methods, message in bad:
        with pytest.raises(PlanError, match=message):
            _plan(_config(**methods)).samples_of(list(methods)[0])
    _plan(_config(a={"model": "graphst"}, r={"model": "graphst", "train_from": "a", "train": {}}))   # nothing ignored
    # a method's own train block holds only what its model reads (a peer: train.peer alone)
    with pytest.raises(PlanError, match=r"^config: method 'st' \(model stagate\) reads only train\.peer, the settings of "
                                        r"its package, so its train\.epochs, train\.lr would be ignored\. Fix: give them "
                                        r"as the package names them under methods\.st\.train\.peer \(e\.g\. \{n_epochs: 500\}"):
        _plan(_config(st={"model": "stagate", "train": {"epochs": 50, "lr": 0.01, "peer": {"n_epochs": 50}}}))
    with pytest.raises(PlanError, match=r"^config: method 'g' \(model graphst\) reads no train\.peer .* Fix: set its "
                                        r"settings as keys of methods\.g\.train \(epochs, lr, \.\.\.\)"):
        _plan(_config(g={"model": "graphst", "train": {"peer": {"epochs": 5}}}))
    _plan(_config(st={"model": "stagate", "train": {"peer": {"n_epochs": 5}}}, g={"model": "graphst", "train": {"epochs": 5}}))
    config = _config()
    config["ensembles"] = {"graphst": {"methods": ["graphst"]}}
    with pytest.raises(PlanError, match=r"ensemble 'graphst' is also a method"):
        _plan(config)
    config = _config(a={"model": "graphst", "cluster": {"algorithm": "own"}})
    with pytest.raises(PlanError, match=r"method 'a': cluster.algorithm own, but model 'graphst' has no clustering"):
        _plan(config).check_settings({})
    # n_clusters auto: a model that trains for the number, or whose own labels are reported, cannot run
    for methods, message in [({"s": {"model": "spagcn"}}, r"method 's': model 'spagcn' cannot run on s1 \(n_clusters "
                               r"auto in the sample sheet\): it trains for a given number of domains\. Fix: give"),
                              ({"b": {"model": "banksy"}, "own": {"train_from": "b", "cluster": {"algorithm": "own"}}},
                               r"method 'own': model 'banksy' cannot run on s1 .*its own clustering \(cluster\."
                               r"algorithm own\) searches for a given number.*cluster its embedding with the shared")]:
        plan = _plan(_config(**methods))
        plan.slides["s1"]["n_clusters"] = "auto"
        with pytest.raises(PlanError, match=message):
            plan.check_settings({})
    # auto is chosen with mclust's mixture: another algorithm failed in the cluster job, after training
    plan = _plan(_config(g={"model": "graphst"}, k={"train_from": "g", "cluster": {"algorithm": "leiden"}}))
    plan.config["methods"]["k"]["cluster"] = dict(plan.config["cluster"], algorithm="leiden")
    plan.slides["s1"]["n_clusters"] = "auto"
    with pytest.raises(PlanError, match=r"^config: method 'k': n_clusters auto \(the sample sheet's s1\) is chosen with "
                                        r"mclust's mixture; cluster\.algorithm leiden has none\. Fix: use cluster\.algorithm "
                                        r"mclust for it, or give the number in the sample sheet's n_clusters$"):
        plan.check_settings({})
    # harmony corrects the slides of a group; on a method without a group it changed nothing, without a word
    config = _config(g={"model": "graphst", "cluster": {"correct": "harmony"}})
    with pytest.raises(PlanError, match=r"^config: method 'g': cluster\.correct harmony removes slide effects within a "
                                        r"group of slides .* but method 'g' runs on no group, so it would change nothing\. "
                                        r"Fix: give the slides to cluster together one group in the sample sheet, or set "
                                        r"cluster\.correct none$"):
        _plan(config).check_settings({})
    _plan(config, s1="G", s2="G").check_settings({})           # a group: corrected there
    config = _config(g={"model": "graphst"}, b={"model": "banksy"})
    config["cluster"]["correct"] = "harmony"                   # the config's, for every method
    with pytest.raises(PlanError, match=r"^config: cluster\.correct harmony .* but no method runs on a group"):
        _plan(config).check_settings({})
    _plan(config, s1="G", s2="G").check_settings({})           # graphst's group is corrected; banksy runs on none
    plan = _plan(_config(b={"model": "banksy"}, c={"model": "cellcharter"}, g={"model": "graphst"}))
    plan.slides["s1"]["n_clusters"] = "auto"
    plan.check_settings({})            # their embeddings, clustered by the shared step, can choose the number
    assert "n_clusters" not in plan.train_settings("b", "s1") and "n_clusters" not in plan.train_settings("b", "s2")
    config = _config()
    config["graph"]["radius"] = 150.0                          # knn: the radius was ignored without a word
    with pytest.raises(PlanError, match=r"^config: graph\.radius 150 is set, but graph\.mode is knn, which joins each spot "
                                        r"to its graph\.n_neighbors nearest: the radius would be ignored\. Fix: set "
                                        r"graph\.mode radius to join the spots within it, or delete graph\.radius$"):
        _plan(config).check_settings({})
    config["graph"]["mode"] = "radius"
    _plan(config).check_settings({})
    config = _config()
    config["cluster"]["subset"] = 7
    with pytest.raises(PlanError, match=r"cluster.subset 7 must exceed the largest number of domains asked for \(7\)"):
        _plan(config).check_settings({})
    with pytest.raises(PlanError, match=r"compare.baseline 'x' is not a method"):
        plan = _plan(_config())
        plan.config["compare"] = {"baseline": "x"}
        plan.check_settings({"baseline": "x"})


def test_a_combination_whose_methods_share_no_seed_or_slide_is_named():
    """An ensemble runs on the seeds and slides its methods share; where they share none it was left
    out without a word (no job, no row of the table)."""
    config = _config(a={"model": "graphst", "seeds": [0]}, b={"model": "expression", "seeds": [1]})
    config["ensembles"] = {"e": {"methods": ["a", "b"]}}
    with pytest.raises(PlanError, match=r"^config: ensemble 'e' combines .* share no seed \(a: \[0\]; b: \[1\]\), "
                                        r"so it would run nowhere\. Fix: give its methods a seed in common"):
        _plan(config)
    config = _config(a={"model": "graphst", "samples": ["s1"]}, b={"model": "expression", "samples": ["s2"]})
    config["ensembles"] = {"e": {"methods": ["a", "b"]}}
    with pytest.raises(PlanError, match=r"share no slide \(a: \['s1'\]; b: \['s2'\]\), so it would run nowhere\. "
                                        r"Fix: give its methods a slide in common \(their samples:\)"):
        _plan(config)
    config["methods"]["b"]["samples"] = ["s2", "s1"]            # one slide in common: runs there
    assert _plan(config).ensemble_outputs("labels.tsv") == ["results/s1/e/seed0/labels.tsv", "results/s1/e/seed1/labels.tsv"]


def test_a_method_named_as_another_model_without_its_model_is_named():
    """``banksy: {}`` or ``expression: {cluster: ...}`` (as ``--config methods=...`` writes it, replacing the
    config's methods) gave no model: each trained graphst, the default, reported as banksy or expression."""
    for name in ("banksy", "expression", "Banksy"):
        with pytest.raises(PlanError, match=rf"^config: method '{name}' gives no model, so it would train the default "
                                            rf"model, graphst, reported under the name of model '{name.lower()}'\. "
                                            rf"Fix: write {name}: \{{model: {name.lower()}\}}"):
            _plan(_config(graphst={}, **{name: {"cluster": {"n_pcs": 10}}}))
    plan = _plan(_config(graphst={}, banksy={"model": "banksy"}, mine={},
                         banksy_own={"train_from": "banksy", "cluster": {"algorithm": "own"}}))
    assert [plan.model_of(m) for m in plan.methods] == ["graphst", "banksy", "graphst", "graphst"]
    assert _plan(_config(expression={"model": "graphst"})).model_of("expression") == "graphst"   # as written


def test_memory_follows_the_registry_facts(tmp_path):
    """A model that holds dense spots x spots matrices gets them budgeted; the built-in model
    grows linearly with the spots (an unknown model is refused, never taken for a peer)."""
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "slide.h5ad"
    with h5py.File(path, "w") as fh:
        fh.create_dataset("X", data=[[0.0] * 50] * 4000)
    graph = tmp_path / "graph.npz"
    graph.write_bytes(b"0" * 1024)
    settings = {"epochs": 600, "n_latent": 64}
    own = train_mem_mb(METHODS["graphst"], settings, path, graph, 1)
    dense = train_mem_mb(METHODS["spagcn"], settings, path, graph, 1)
    from stcore.plan.resources import TRAIN_BASE_MB

    assert METHODS["spagcn"].dense_spots and TRAIN_BASE_MB < own < TRAIN_BASE_MB + 76
    assert abs(dense - train_mem_mb(METHODS["cellcharter"], settings, path, graph, 1) - 8 * 8 * 4000**2 / 2**20) < 1
    assert abs(train_mem_mb(METHODS["graphst"], settings, path, graph, 2) - 2 * own) <= 2
    big = tmp_path / "big.npz"
    big.write_bytes(b"0" * 2**20)                                         # given no graph, none is budgeted
    assert train_mem_mb(METHODS["spagcn"], settings, path, str(big), 1) - train_mem_mb(METHODS["spagcn"], settings,
                                                                                     path, [], 1) == 4
    assert train_runtime(METHODS["graphst"], settings, path, 1) == int(15 + 600 * 4000 * 5e-5 / 60)
    with pytest.raises(PlanError, match=r"model 'nope', which is not a method of the registry"):
        _plan(_config(a={"model": "nope"}))


def test_a_banksy_train_job_asks_for_the_memory_of_its_max_m(tmp_path):
    """BANKSY's matrix holds max_m + 2 blocks of the genes (stcore.peers.banksy_memory_mb, what its train job
    checks against the memory free): the job asks for it at the run's max_m.  It asked for the default's
    (max_m 1) at every max_m: with max_m 2 on 50,000 spots x 2,000 genes, 11,514 MB for a matrix of 13,733 MB, so
    under SLURM the job refused itself inside its job, with a fix that said a cluster job asks for more."""
    h5py = pytest.importorskip("h5py")
    from stcore.peers import banksy_memory_mb

    path = tmp_path / "slide.h5ad"
    n, genes = 50_000, 2_000
    with h5py.File(path, "w") as fh:
        fh.create_dataset("X", shape=(n, genes), dtype="float32")        # never written: its shape is what counts
    asked = {m: train_mem_mb(METHODS["banksy"], {"peer": {"max_m": m}}, path, [], 1) for m in (1, 2, 5)}
    for m, mb in asked.items():
        assert mb >= banksy_memory_mb(n, genes, m), (m, mb, banksy_memory_mb(n, genes, m))
    assert train_mem_mb(METHODS["banksy"], {}, path, [], 1) == asked[1]           # the default max_m: as before
    assert train_mem_mb(METHODS["cellcharter"], {"peer": {}}, path, [], 1) < asked[1]


def test_the_rules_resources_as_snakemake_asks_for_them(tmp_path):
    """JobResources, what the rules name (mem_mb=RESOURCES.train_mem_mb, ...): Snakemake passes the
    job's wildcards, input and attempt by name; a train job is budgeted with its method's own train
    settings on top of the config's (input_pcs), a group as qc of its slides' files together, and a
    retry asks for attempt times as much."""
    import inspect
    from types import SimpleNamespace as Job

    from stcore.plan.resources import QC_BASE_MB, JobResources, qc_mem_mb

    h5py = pytest.importorskip("h5py")
    h5ad = tmp_path / "hvg.h5ad"
    with h5py.File(h5ad, "w") as fh:
        fh.create_dataset("X", data=[[1.0] * 400] * 3000)
    graph = tmp_path / "graph.npz"
    graph.write_bytes(b"0" * 1024)
    plan = _plan(_config(graphst={"model": "graphst"}, pcs={"model": "graphst", "train": {"input_pcs": 30}},
                         spagcn={"model": "spagcn"}))
    resources = JobResources(plan)
    for name in ("qc_mem_mb", "qc_runtime", "group_mem_mb", "hvg_mem_mb", "hvg_runtime", "train_mem_mb",
                 "train_runtime", "simulate_mem_mb", "simulate_runtime"):
        assert list(inspect.signature(getattr(resources, name)).parameters) == ["wildcards", "input", "attempt"]
    files = Job(h5ad=str(h5ad), graph=str(graph))
    own, pcs, peer = (resources.train_mem_mb(Job(sample="s1", method=m, seed="0"), files, 1)
                      for m in ("graphst", "pcs", "spagcn"))
    assert own == train_mem_mb(METHODS["graphst"], plan.merged("train", "graphst"), h5ad, graph, 1)
    assert pcs == train_mem_mb(METHODS["graphst"], dict(plan.merged("train", "graphst"), input_pcs=30), h5ad, graph, 1)
    assert pcs != own and peer == train_mem_mb(METHODS["spagcn"], plan.merged("train", "spagcn"), h5ad, graph, 1)
    assert abs(resources.train_mem_mb(Job(method="graphst"), files, 2) - 2 * own) <= 2
    # a train on CUDA holds torch's CUDA libraries and context in host memory beside the CPU run's peak; the
    # published methods train on the CPU there too
    cuda = JobResources(_plan(dict(plan.config, train={**plan.config["train"], "device": "cuda"})))
    assert cuda.train_mem_mb(Job(sample="s1", method="graphst", seed="0"), files, 1) == own + CUDA_HOST_MB
    assert cuda.train_mem_mb(Job(sample="s1", method="spagcn", seed="0"), files, 1) == peer
    assert resources.train_runtime(Job(method="spagcn"), files, 1) > resources.train_runtime(Job(method="graphst"),
                                                                                                 files, 1)
    slides = [tmp_path / "a.h5ad", tmp_path / "b.h5ad"]
    for path in slides:
        path.write_bytes(b"0" * 2**22)
    group = resources.group_mem_mb(Job(sample="g"), Job(slides=[str(p) for p in slides]), 1)
    assert group == qc_mem_mb([str(p) for p in slides], 1) == int(QC_BASE_MB + 8 * 8)     # no header: 8 x the files
    plan.slides["s1"]["path"] = str(slides[0])          # qc is sized from the slide's files, which it does not declare
    assert resources.qc_mem_mb(Job(sample="s1"), Job(), 3) == 3 * (QC_BASE_MB + 8 * 4)
    rules = Path(__file__).resolve().parents[1] / "rules"
    for rule, names in (("qc", ("qc_mem_mb", "qc_runtime")), ("group", ("group_mem_mb",)),
                        ("hvg", ("hvg_mem_mb", "hvg_runtime")), ("train", ("train_mem_mb", "train_runtime"))):
        text = (rules / f"{rule}.smk").read_text()
        for name in names:
            assert f"=RESOURCES.{name}," in text, (rule, name)


def test_hvg_is_sized_from_the_slide_before_qc_wrote_its_file(tmp_path, monkeypatch):
    """A SLURM profile's prep job (qc, hvg and graph as one job) is sized when it is submitted, before
    qc wrote qc.h5ad: hvg's memory and time were not known then and were left out of the job's (qc's
    estimate, from the compressed file's size, can be far below hvg's from the matrix's spots x genes).
    Now hvg is sized from the slide's matrix until its qc.h5ad exists."""
    from types import SimpleNamespace as Job

    from stcore.plan.resources import HVG_BASE_MB, HVG_PER_MATRIX, JobResources, hvg_mem_mb, hvg_runtime

    h5py = pytest.importorskip("h5py")
    monkeypatch.chdir(tmp_path)
    slide = tmp_path / "a.h5ad"
    with h5py.File(slide, "w") as fh:
        fh.create_dataset("X", data=[[1.0] * 400] * 3000)
    plan = _plan(_config(graphst={"model": "graphst"}))
    plan.slides["s1"] = dict(plan.slides["s1"], path=str(slide), format="h5ad")
    resources = JobResources(plan)
    qc = Job(h5ad="results/s1/qc.h5ad")
    assert resources.hvg_mem_mb(Job(sample="s1"), qc, 1) == hvg_mem_mb(str(slide), 1) > HVG_BASE_MB + HVG_PER_MATRIX * 4
    assert resources.hvg_runtime(Job(sample="s1"), qc, 2) == hvg_runtime(str(slide), 2)
    (tmp_path / "results/s1").mkdir(parents=True)
    with h5py.File(tmp_path / "results/s1/qc.h5ad", "w") as fh:        # once qc wrote it: its own size
        fh.create_dataset("X", data=[[1.0] * 100] * 3000)
    assert resources.hvg_mem_mb(Job(sample="s1"), qc, 1) == hvg_mem_mb("results/s1/qc.h5ad", 1) < hvg_mem_mb(
        str(slide), 1)


def _sparse_h5ad(path, spots, genes, nnz):
    """An .h5ad whose header says a CSR X of ``spots`` x ``genes`` with ``nnz`` stored entries."""
    import h5py

    with h5py.File(path, "w") as fh:
        x = fh.create_group("X")
        x.attrs["shape"] = (spots, genes)
        x.create_dataset("data", data=[0.0] * nnz, dtype="float32")


def test_train_is_sized_from_the_slide_before_hvg_wrote_its_file(tmp_path, monkeypatch):
    """train's memory and time were read from hvg.h5ad and graph.npz, which no job has written when the run
    starts: the start-of-run check (check_slurm) saw no train job, the largest of a run, and one whose runtime
    was over its partition's MaxTime waited PENDING (PartitionTimeLimit) without end.  Now, before hvg.h5ad
    exists, train is sized from the slide's matrix as hvg.h5ad will hold it at most (its spots, hvg.n_top_genes
    of its genes, its stored entries) and a knn graph.npz of 2 x n_neighbors entries a spot; once hvg.h5ad
    exists, from the files as before."""
    from types import SimpleNamespace as Job

    from stcore.plan.resources import JobResources, slurm_partitions, unschedulable

    pytest.importorskip("h5py")
    monkeypatch.chdir(tmp_path)
    slide = tmp_path / "a.h5ad"
    _sparse_h5ad(slide, 3000, 5000, 600_000)
    config = dict(_config(graphst={"model": "graphst", "train": {"epochs": 20000}}, spagcn={"model": "spagcn"}),
                  hvg={"n_top_genes": 2000}, graph={"mode": "knn", "n_neighbors": 3})
    plan = _plan(config)
    plan.slides["s1"] = dict(plan.slides["s1"], path=str(slide), format="h5ad")
    resources = JobResources(plan)
    job, files = Job(sample="s1", method="graphst", seed="0"), Job(h5ad="results/s1/hvg.h5ad",
                                                                  graph=["results/s1/graph.npz"])
    start = [(resources.train_mem_mb(job, files, a), resources.train_runtime(job, files, a)) for a in (1, 2)]
    peer = resources.train_mem_mb(Job(sample="s1", method="spagcn", seed="0"), Job(h5ad=files.h5ad, graph=[]), 1)
    # the same as from files of that size: hvg.h5ad of 3000 spots x 2000 genes, 600,000 entries; the graph
    # uncompressed (8 bytes an entry, 4 a row)
    (tmp_path / "max").mkdir()
    _sparse_h5ad(tmp_path / "max/hvg.h5ad", 3000, 2000, 600_000)
    (tmp_path / "max/graph.npz").write_bytes(b"0" * (8 * 2 * 3 * 3000 + 4 * 3001))
    settings = plan.merged("train", "graphst")
    assert start == [(train_mem_mb(METHODS["graphst"], settings, "max/hvg.h5ad", ["max/graph.npz"], a),
                      train_runtime(METHODS["graphst"], settings, "max/hvg.h5ad", a)) for a in (1, 2)]
    assert peer == train_mem_mb(METHODS["spagcn"], plan.merged("train", "spagcn"), "max/hvg.h5ad", [], 1)
    # the start-of-run check now sees it: 20,000 epochs of 3000 spots are over partition short's MaxTime
    asks = {"cpus": 2, "mem_mb": start[0][0], "runtime": start[0][1], "slurm_partition": "short"}
    line, = unschedulable([("train", "s1", asks)], slurm_partitions(SINFO_ANSWER))
    assert line.startswith(f"sample 's1', step 'train' asks SLURM for {start[0][1]} minutes (runtime), but partition "
                           "'short' allows at most 60 minutes (its MaxTime") and "PartitionTimeLimit" in line, line
    # a slide of fewer genes than n_top_genes: all of them
    _sparse_h5ad(slide, 3000, 1500, 600_000)
    _sparse_h5ad(tmp_path / "max/hvg.h5ad", 3000, 1500, 600_000)
    assert resources.train_mem_mb(job, files, 1) == train_mem_mb(METHODS["graphst"], settings, "max/hvg.h5ad",
                                                                  ["max/graph.npz"], 1)
    # once hvg wrote hvg.h5ad (qc dropped spots), and graph its graph.npz: their own sizes, as before
    (tmp_path / "results/s1").mkdir(parents=True)
    _sparse_h5ad(tmp_path / "results/s1/hvg.h5ad", 2500, 1500, 400_000)
    with pytest.raises(FileNotFoundError):                 # graph.npz not written yet: not known (<TBD>)
        resources.train_mem_mb(job, files, 1)
    (tmp_path / "results/s1/graph.npz").write_bytes(b"0" * 5000)
    assert resources.train_mem_mb(job, files, 1) == train_mem_mb(METHODS["graphst"], settings, "results/s1/hvg.h5ad",
                                                                  ["results/s1/graph.npz"], 1) < start[0][0]
    assert resources.train_runtime(job, files, 1) == train_runtime(METHODS["graphst"], settings,
                                                                   "results/s1/hvg.h5ad", 1)
    # a radius graph of a slide whose .h5ad stores no coordinates (obsm['spatial']): not known (<TBD>), as before
    (tmp_path / "results/s1/hvg.h5ad").unlink()
    (tmp_path / "results/s1/graph.npz").unlink()
    plan.config["graph"] = {"mode": "radius", "radius": 50}
    with pytest.raises(FileNotFoundError):
        resources.train_mem_mb(job, files, 1)



def test_train_of_a_simulated_slide_and_of_a_group_is_sized_before_any_job_ran(tmp_path, monkeypatch):
    """train of a slide the simulate rule makes, and a group's (slides trained as one), were not known when the
    run started (<TBD>): neither has a matrix file then, so the start-of-run check (check_slurm) left them out,
    and one over its partition's MaxTime waited PENDING (PartitionTimeLimit) without end (the demo config: none
    of its 6 train jobs checked; studies/compare_group.yaml: 20 of its 30, the group's 10 not).  Now a simulated
    slide is sized from its config's simulate entry (spots of its layout, n_genes) and a group from its slides
    (their spots together, on the fewest genes of one), as the files of that size would size it."""
    from types import SimpleNamespace as Job

    from stcore.plan.resources import JobResources, slurm_partitions, unschedulable
    from stcore.plan.runs import simulated_entries, simulated_file

    pytest.importorskip("h5py")
    monkeypatch.chdir(tmp_path)
    config = dict(_config(graphst={"model": "graphst", "train": {"epochs": 30000}}), hvg={"n_top_genes": 2000},
                  graph={"mode": "knn", "n_neighbors": 3},
                  simulate={"big": {"n_spots": 3000, "layout": "scatter", "n_genes": 2500}, "grid": {"n_spots": 2000}})
    plan = _plan(config, s2="g", s3="g")
    plan.slides["s1"] = dict(plan.slides["s1"], path=simulated_file("big"))
    _sparse_h5ad(tmp_path / "s2.h5ad", 1000, 5000, 300_000)
    _sparse_h5ad(tmp_path / "s3.h5ad", 1500, 1800, 900_000)
    resources = JobResources(plan)
    files = Job(h5ad="results/x/hvg.h5ad", graph=["results/x/graph.npz"])
    start = {s: [(resources.train_mem_mb(Job(sample=s, method="graphst", seed="0"), files, a),
                  resources.train_runtime(Job(sample=s, method="graphst", seed="0"), files, a)) for a in (1, 2)]
             for s in ("s1", "g")}
    # the same as files of the most they hold: s1 3000 spots x 2000 of its 2500 genes, the most entries its simulate
    # entry stores (simulated_entries); the group 2500 spots x the 1800 genes s3 has, s2's 300,000 entries and s3's
    # 900,000 (at most 1500 x 1800)
    (tmp_path / "max").mkdir()
    settings = plan.merged("train", "graphst")
    most = min(simulated_entries(config["simulate"]["big"]), 3000 * 2000)
    for sample, (spots, genes, nnz) in {"s1": (3000, 2000, most), "g": (2500, 1800, 1_200_000)}.items():
        _sparse_h5ad(tmp_path / "max/hvg.h5ad", spots, genes, nnz)
        (tmp_path / "max/graph.npz").write_bytes(b"0" * (8 * 2 * 3 * spots + 4 * (spots + 1)))
        assert start[sample] == [(train_mem_mb(METHODS["graphst"], settings, "max/hvg.h5ad", ["max/graph.npz"], a),
                                  train_runtime(METHODS["graphst"], settings, "max/hvg.h5ad", a)) for a in (1, 2)]
    # the start-of-run check sees them: 30,000 epochs of 3000 or 2500 spots are over partition short's MaxTime
    line, = unschedulable([("train", s, {"cpus": 2, "mem_mb": start[s][0][0], "runtime": start[s][0][1],
                                         "slurm_partition": "short"}) for s in ("g", "s1")],
                          slurm_partitions(SINFO_ANSWER))
    assert line.startswith("sample 'g', step 'train' (and 1 more of its jobs) asks SLURM for "
                           f"{start['g'][0][1]} minutes (runtime), but partition 'short' allows at most 60") and \
        "PartitionTimeLimit" in line, line
    # a hex layout: a square grid of round(sqrt(n_spots)) a side (2000: 45 x 45), as the simulate rule makes it
    plan.slides["s1"] = dict(plan.slides["s1"], path=simulated_file("grid"))
    assert resources.planned_matrix("s1")[:3] == (2025, 3000, simulated_entries({"n_spots": 2000}))
    # a slide of the group missing (its qc job names it): the group not known (<TBD>), as before
    (tmp_path / "s3.h5ad").unlink()
    assert resources.planned_matrix("g") is None
    with pytest.raises(FileNotFoundError):
        resources.train_mem_mb(Job(sample="g", method="graphst", seed="0"), files, 1)



def test_qc_hvg_and_the_group_job_of_simulated_slides_and_groups_are_sized_before_any_job_ran(tmp_path, monkeypatch):
    """qc and hvg of a slide the simulate rule makes, and a group's group job (sheet column group), were not known
    when the run started (<TBD>: no file of theirs is there then), so the start-of-run check (check_slurm) left them
    out, and a SLURM profile's prep job of a simulated slide (simulate, qc, hvg and graph as one job, submitted before
    simulate ran) asked for simulate and graph alone (measured on the test cluster, the demo's sim_layers: 60 minutes,
    80 with qc's and hvg's).  Now they are sized, with the jobs' own formulas, from what the files will hold at most:
    a simulated slide's spots and genes its simulate entry gives, its most stored entries (simulated_entries; an
    uncompressed CSR of them on disk); a group from its slides' matrices."""
    from types import SimpleNamespace as Job

    from stcore.plan.resources import (QC_BASE_MB, QC_PER_MATRIX, JobResources, file_mb, hvg_mem_mb, matrix_mb,
                                       qc_mem_mb, qc_runtime, slurm_partitions, unschedulable)
    from stcore.plan.runs import simulated_entries, simulated_file

    h5py = pytest.importorskip("h5py")
    monkeypatch.chdir(tmp_path)
    config = dict(_config(graphst={"model": "graphst"}), hvg={"n_top_genes": 2000}, graph={"mode": "knn", "n_neighbors": 3},
                  simulate={"big": {"n_spots": 3000, "layout": "scatter", "n_genes": 2500, "depth": 400}})
    plan = _plan(config, s2="g", s3="g")
    plan.slides["s1"] = dict(plan.slides["s1"], path=simulated_file("big"))
    _sparse_h5ad(tmp_path / "s2.h5ad", 1000, 5000, 300_000)
    _sparse_h5ad(tmp_path / "s3.h5ad", 1500, 1800, 900_000)
    resources = JobResources(plan)
    s1, g = Job(sample="s1"), Job(sample="g")
    # the same as from files of the most they hold: the simulated slide 3000 spots x 2500 genes, its most stored
    # entries (simulated_entries), for qc that matrix (a gzip-written file of it); the group's qc.h5ad its slides
    entries = simulated_entries(plan.config["simulate"]["big"])
    (tmp_path / "max").mkdir()
    with h5py.File(tmp_path / "max/big.h5ad", "w") as fh:
        fh.create_group("X").attrs["shape"] = (3000, 2500)
        fh["X"].create_dataset("data", shape=(entries,), dtype="float32", compression="gzip")
    _sparse_h5ad(tmp_path / "max/qc.h5ad", 3000, 2500, entries)
    raw = Job(raw=[simulated_file("big")])
    assert [resources.qc_mem_mb(s1, raw, a) for a in (1, 2)] == [qc_mem_mb(["max/big.h5ad"], a) for a in (1, 2)]
    assert [resources.qc_runtime(s1, raw, a) for a in (1, 2)] == [qc_runtime(["max/big.h5ad"], a) for a in (1, 2)]
    qc = Job(h5ad="results/s1/qc.h5ad")
    assert resources.hvg_mem_mb(s1, qc, 1) == hvg_mem_mb("max/qc.h5ad", 1)
    assert resources.hvg_runtime(s1, qc, 1) >= 10
    slides = Job(slides=plan.group_inputs("g"))
    assert resources.group_mem_mb(g, slides, 2) == int(2 * (QC_BASE_MB + QC_PER_MATRIX * (matrix_mb("s2.h5ad") +
                                                                                       matrix_mb("s3.h5ad"))))
    _sparse_h5ad(tmp_path / "max/qc.h5ad", 2500, 1800, 300_000 + 900_000)     # the group: s3's 1800 genes
    assert resources.hvg_mem_mb(g, Job(h5ad="results/g/qc.h5ad"), 1) == hvg_mem_mb("max/qc.h5ad", 1)
    # the start-of-run check sees them: qc of a simulated slide of 1,000,000 spots x 5,000 genes is over every node
    # of partition short
    plan.config["simulate"]["big"] = {"n_spots": 1_000_000, "layout": "scatter", "n_genes": 5000, "depth": 400}
    asks = {"cpus": 1, "mem_mb": resources.qc_mem_mb(s1, raw, 1), "runtime": resources.qc_runtime(s1, raw, 1),
            "slurm_partition": "short"}
    line, = unschedulable([("qc", "s1", asks)], slurm_partitions(SINFO_ANSWER))
    assert line.startswith(f"sample 's1', step 'qc' asks SLURM for {asks['mem_mb']} MB of memory (mem_mb), but the "
                           "largest node of partition 'short' has 4 CPUs and 8000 MB"), line
    # once the files are there: their own sizes, as before; a group's slide qc wrote, its qc.h5ad
    (tmp_path / "results/simulated").mkdir(parents=True)
    (tmp_path / simulated_file("big")).write_bytes(b"0" * 2**20)
    assert resources.qc_mem_mb(s1, raw, 1) == qc_mem_mb([simulated_file("big")], 1)
    (tmp_path / "results/s2").mkdir(parents=True)
    (tmp_path / "results/s2/qc.h5ad").write_bytes(b"0" * 2**21)
    assert resources.group_mem_mb(g, slides, 1) == int(QC_BASE_MB + 8 * file_mb("results/s2/qc.h5ad") +
                                                       QC_PER_MATRIX * matrix_mb("s3.h5ad"))
    # a slide of the group missing (its qc job names it): not known (<TBD>), as before
    (tmp_path / "s3.h5ad").unlink()
    with pytest.raises(FileNotFoundError):
        resources.group_mem_mb(g, slides, 1)
    with pytest.raises(FileNotFoundError):
        resources.hvg_mem_mb(g, Job(h5ad="results/g/qc.h5ad"), 1)


def test_simulate_is_sized_from_its_simulate_entry_and_grows_with_the_attempt(tmp_path, monkeypatch):
    """The simulate rule had no memory or time of its own: on SLURM it got the profile's default-resources (2000 MB,
    30 minutes) whatever the slide's size, the same on every retry, and the start-of-run check (check_slurm) judged
    that.  Measured (2-vCPU AMD EPYC, /usr/bin/time -v): 300,304 spots x 3,000 genes peaked at 3.44 GiB, so a
    large slide was killed for memory on every attempt.  Now it is sized from its config's simulate entry, as qc
    of that slide is (the same planned matrix), grows with attempt, and the start-of-run check sees it, named by
    the slide's name (a job alone was named sample 'all': simulate has no sample wildcard)."""
    from types import SimpleNamespace as Job

    from stcore.plan.resources import JobResources, slurm_asks, slurm_partitions, unschedulable
    from stcore.plan.runs import simulated_file

    monkeypatch.chdir(tmp_path)
    config = dict(_config(), simulate={"demo": {"n_spots": 2000},
                                       "big": {"n_spots": 300_000, "layout": "scatter", "n_genes": 3000}})
    plan = _plan(config)
    plan.slides["s1"] = dict(plan.slides["s1"], path=simulated_file("big"))
    resources = JobResources(plan)
    big, demo = Job(name="big"), Job(name="demo")
    assert resources.simulated_matrix("big") == resources.planned_matrix("s1")      # qc's slide, as simulate makes it
    mem = [resources.simulate_mem_mb(big, None, a) for a in (1, 2, 3)]
    minutes = [resources.simulate_runtime(big, None, a) for a in (1, 2, 3)]
    assert all(abs(mem[a - 1] - a * mem[0]) <= a for a in (2, 3)), mem                # attempt times the first
    assert all(abs(minutes[a - 1] - a * minutes[0]) <= a for a in (2, 3)), minutes
    assert 1.2 * 3.44 * 1024 < mem[0] < 1.6 * 3.44 * 1024 and minutes[0] > 116 / 60   # the measured peak and time
    assert resources.simulate_mem_mb(demo, None, 1) < 2000 and resources.simulate_runtime(demo, None, 1) >= 10
    # the start-of-run check sees it, by the slide's name: 300,000 spots are over every node of a 4000-MB partition
    class Simulate(Job):        # a Snakemake job evaluates its resources at its attempt (a retry: again)
        @property
        def resources(self):
            return {"mem_mb": resources.simulate_mem_mb(big, None, self.attempt),
                    "runtime": resources.simulate_runtime(big, None, self.attempt), "slurm_partition": "small"}

    job = Simulate(rule=Job(name="simulate"), wildcards_dict={"name": "big"}, is_local=False, attempt=1,
                   restart_times=1, threads=1)
    (step, sample, asks), = slurm_asks(Job(dag=Job(needrun_jobs=lambda: [job], get_job_group=lambda j: None)))
    assert (step, sample) == ("simulate", "big") and [a["mem_mb"] for a in asks["attempts"]] == mem[:2]
    line, = unschedulable([(step, sample, asks)],
                          slurm_partitions("small|s1|4|4000|1:00:00|up\n"))
    assert line.startswith(f"sample 'big', step 'simulate' asks SLURM for {mem[0]} MB of memory (mem_mb), but the "
                           "largest node of partition 'small' has 4 CPUs and 4000 MB"), line
    text = (Path(__file__).resolve().parents[1] / "rules" / "simulate.smk").read_text()
    assert "mem_mb=RESOURCES.simulate_mem_mb," in text and "runtime=RESOURCES.simulate_runtime," in text


def test_train_with_a_radius_graph_is_sized_from_the_slide_s_coordinates(tmp_path, monkeypatch):
    """train with a radius graph (graph: {mode: radius}) was not known when the run started (<TBD>: the graph's
    degree is known once built), so the start-of-run check left it out (a DLPFC 151673 config of radius 150:
    graphst's train not checked, the expression baseline's, which reads no graph, checked).  Now its graph is
    sized from the pairs of spots within the radius among the slide's own coordinates (obsm['spatial'] of an
    .h5ad, read alone; a group's slide by slide): a bound, as qc only drops spots.  Other formats, and a radius
    the graph step refuses (over 200 neighbours a spot), stay not known."""
    from types import SimpleNamespace as Job

    import h5py

    from stcore.plan.resources import JobResources

    monkeypatch.chdir(tmp_path)

    def grid(path, side, genes=300, nnz=20_000):          # side x side spots 10 apart, and a CSR X
        _sparse_h5ad(path, side * side, genes, nnz)
        with h5py.File(path, "a") as fh:
            fh.create_dataset("obsm/spatial", data=[[10.0 * i, 10.0 * j] for i in range(side) for j in range(side)])

    grid(tmp_path / "s1.h5ad", 40)
    grid(tmp_path / "s2.h5ad", 30)
    grid(tmp_path / "s3.h5ad", 20)
    config = dict(_config(graphst={"model": "graphst"}), hvg={"n_top_genes": 200},
                  graph={"mode": "radius", "radius": 15})
    plan = _plan(config, s2="g", s3="g")
    resources = JobResources(plan)
    files = Job(h5ad="results/x/hvg.h5ad", graph=["results/x/graph.npz"])
    settings = plan.merged("train", "graphst")
    (tmp_path / "max").mkdir()
    for sample, spots, pairs in (("s1", 1600, 2 * 40 * 39 + 2 * 39 * 39),
                                 ("g", 900 + 400, 2 * 30 * 29 + 2 * 29 * 29 + 2 * 20 * 19 + 2 * 19 * 19)):
        job = Job(sample=sample, method="graphst", seed="0")
        start = [(resources.train_mem_mb(job, files, a), resources.train_runtime(job, files, a)) for a in (1, 2)]
        # as the files of the most they hold: hvg.h5ad of those spots x 200 genes, graph.npz of twice the pairs
        _sparse_h5ad(tmp_path / "max/hvg.h5ad", spots, 200, 20_000 if sample == "s1" else 40_000)
        (tmp_path / "max/graph.npz").write_bytes(b"0" * (8 * 2 * pairs + 4 * (spots + 1)))
        assert start == [(train_mem_mb(METHODS["graphst"], settings, "max/hvg.h5ad", ["max/graph.npz"], a),
                          train_runtime(METHODS["graphst"], settings, "max/hvg.h5ad", a)) for a in (1, 2)], sample
    assert resources.planned_edges("g", 1300) == 2 * (2 * 30 * 29 + 2 * 29 * 29 + 2 * 20 * 19 + 2 * 19 * 19)
    # a square grid: within 10, each spot's 4 neighbours (2 x side x (side - 1) pairs); within 15, 8
    from stcore.plan.resources import radius_pairs

    assert radius_pairs(tmp_path / "s1.h5ad", 10) == 2 * 40 * 39
    assert radius_pairs(tmp_path / "s1.h5ad", 15) == 2 * 40 * 39 + 2 * 39 * 39
    # not known (<TBD>), as before: a radius over 200 neighbours a spot (the graph step refuses it), a slide whose
    # .h5ad stores no obsm['spatial'] array, a slide of another format (its reader makes the coordinates)
    plan.config["graph"] = {"mode": "radius", "radius": 120}                    # 330 neighbours a spot in s1
    assert resources.planned_edges("s1", 1600) is None
    plan.config["graph"] = {"mode": "radius", "radius": 15}
    _sparse_h5ad(tmp_path / "s3.h5ad", 400, 300, 20_000)
    assert resources.planned_edges("g", 1300) is None
    with pytest.raises(FileNotFoundError):
        resources.train_mem_mb(Job(sample="g", method="graphst", seed="0"), files, 1)
    plan.slides["s1"] = dict(plan.slides["s1"], format="visium")
    assert resources.planned_edges("s1", 1600) is None

def test_a_simulated_slide_has_the_shape_its_settings_give():
    """The shape the start-of-run sizes take for a simulated slide (stcore.plan.runs.simulated_shape) is the one
    stcore.simulate makes."""
    from stcore.plan.runs import SIMULATED_SIZE, simulated_entries, simulated_shape
    from stcore.simulate import SimParams, simulate_slide

    for settings in ({"n_spots": 50, "n_genes": 20}, {"n_spots": 61, "layout": "scatter", "n_genes": 15},
                     {"n_spots": 30, "layout": "hex", "n_genes": 10}, {"n_spots": 12, "n_genes": 10},
                     {"n_spots": 400, "layout": "scatter", "n_genes": 3000, "depth": 200},
                     {"n_spots": 10, "n_genes": 3000, "depth": 50}):
        made = simulate_slide(SimParams(**settings, markers_per_domain=2, field_genes=2, n_layers=2, n_regions=0))
        assert simulated_shape(settings) == made.shape, settings
        # its stored entries at most those the start-of-run sizes take (a spot stores only genes it has counts of)
        assert made.X.nnz <= simulated_entries(settings) <= made.shape[0] * made.shape[1], settings
    assert SimParams().depth == SIMULATED_SIZE["depth"]

def test_a_resource_given_on_the_command_line_is_read_as_written():
    """The GPUs a profile's set-resources gives train (said when train runs on the CPU): Snakemake
    keeps a value it was given wrapped, with the text in ``.raw``."""
    from types import SimpleNamespace

    from stcore.plan.resources import given

    assert given({"train": {"gpu": SimpleNamespace(raw="1")}}, "train", "gpu") == "1"
    assert given({"train": {"gpu": 2}}, "train", "gpu") == 2
    assert given({"train": {"mem_mb": 5}}, "train", "gpu") is None and given({}, "train", "gpu") is None
    assert given(None, "train", "gpu") is None


def _measured_peaks(table):
    """{(rule, job): the step's own peak memory in MB} of a benchmark's record (benchmarks/results/*_peaks.tsv)."""
    import pandas as pd

    rows = pd.read_csv(Path(__file__).resolve().parents[1] / "benchmarks" / "results" / table, sep="\t", comment="#")
    return {(r.rule, r.job): float(r.peak_mb) for r in rows.itertuples() if r.rule != "total"}


def _measured_seconds(table):
    """{(rule, job): the step's seconds} of a benchmark's record (benchmarks/results/*_peaks.tsv)."""
    import pandas as pd

    rows = pd.read_csv(Path(__file__).resolve().parents[1] / "benchmarks" / "results" / table, sep="\t", comment="#")
    return {(r.rule, r.job): float(r.s) for r in rows.itertuples() if r.rule != "total"}


def test_a_large_simulated_slide_is_asked_near_its_measured_peaks_and_fits_a_16_gb_node(tmp_path, monkeypatch):
    """benchmarks/dag_hd's sim1m (1,000,000 spots, depth 200) was sized at the start at qc 25,468 MB, hvg 19,334 MB,
    train 14,871 MB and simulate 8,500 MB against measured peaks of 4,789, 6,243, 7,538 and 3,670 MB: qc's 8 MB a
    MiB of file was taken of the planned matrix counted uncompressed, and the slide's stored entries were bounded
    at twice its depth a spot (it holds 0.93 x).  A partition of 16 GB nodes was refused at the start though the
    run fits.  Now each step's ask at the start is at least its measured peak and at most 2 times it, and the
    16 GB partition runs it."""
    import yaml
    from types import SimpleNamespace as Job

    from stcore.plan.resources import JobResources, slurm_partitions, unschedulable
    from stcore.plan.runs import simulated_file

    root = Path(__file__).resolve().parents[1]
    bench = yaml.safe_load((root / "benchmarks" / "dag_hd" / "config.yaml").read_text())
    peaks = _measured_peaks("dag_hd_peaks.tsv")
    monkeypatch.chdir(tmp_path)
    config = dict(_config(**bench["methods"]), **{k: bench[k] for k in ("simulate", "hvg", "graph", "train")})
    method, = bench["methods"]
    for name in ("sim200k", "sim1m"):
        plan = _plan(config)
        plan.slides["s1"] = dict(plan.slides["s1"], path=simulated_file(name))
        resources, s1 = JobResources(plan), Job(sample="s1")
        asks = {"simulate": resources.simulate_mem_mb(Job(name=name), None, 1),
                "qc": resources.qc_mem_mb(s1, Job(raw=[simulated_file(name)]), 1),
                "hvg": resources.hvg_mem_mb(s1, Job(h5ad="results/s1/qc.h5ad"), 1),
                "train": resources.train_mem_mb(Job(sample="s1", method=method, seed="0"),
                                                Job(h5ad="results/s1/hvg.h5ad", graph=["results/s1/graph.npz"]), 1)}
        for step, mb in asks.items():
            peak = peaks[(step, f"{name}.{method}.seed0" if step == "train" else name)]
            assert peak <= mb <= 2 * peak, (name, step, mb, peak)
    jobs = [(step, "s1", {"cpus": 1, "mem_mb": mb, "runtime": 60, "slurm_partition": None}) for step, mb in asks.items()]
    assert unschedulable(jobs, slurm_partitions("hd*|n1|16|16000|infinite|up\n")) == []
    assert unschedulable(jobs, slurm_partitions("hd*|n1|16|8000|infinite|up\n"))      # 8 GB nodes: refused


def test_graph_cluster_evaluate_and_export_ask_at_least_their_measured_peaks(tmp_path, monkeypatch):
    """graph, cluster, evaluate and export had no memory of their own: a SLURM profile's default-resources
    (profiles/slurm: 2,000 MB, the same on every retry; the post job of cluster + evaluate + export the same), under
    their peaks at 1,000,000 spots (benchmarks/results/sizing_peaks.tsv: cluster 3,716, export 4,518 MB), so SLURM
    killed them on every attempt.  Now each is sized from the slide's matrix and spots (at the start from what
    hvg.h5ad and qc.h5ad will hold at most; test_each_step_asks_slurm_for_1_2_to_1_6_times_its_measured_peak holds
    them to their peaks), and a retry asks attempt times as much."""
    import pandas as pd
    from types import SimpleNamespace as Job

    peaks = pd.read_csv(SIZING_PEAKS, sep="\t", comment="#")
    monkeypatch.chdir(tmp_path)
    resources, _ = _sizing_jobs(tmp_path, "dag_hd")
    job = Job(sample="sim1m", method=resources.plan.methods[0], seed="0")
    files = Job(h5ad="results/sim1m/hvg.h5ad", qc="results/sim1m/qc.h5ad")
    for step in ("graph", "cluster", "evaluate", "export"):
        asks = [getattr(resources, f"{step}_mem_mb")(job, files, a) for a in (1, 2)]
        peak, = peaks[(peaks["run"] == "dag_hd") & (peaks["step"] == step)]["peak_mb"]
        assert peak < asks[0] and abs(asks[1] - 2 * asks[0]) <= 2, (step, asks, peak)
    root = Path(__file__).resolve().parents[1]
    rules = root / "rules"
    for rule, names in (("graph", ["graph"]), ("cluster", ["cluster"]), ("evaluate", ["evaluate"]),
                        ("export", ["export", "export_consensus", "export_ensemble", "export_ensemble_consensus"])):
        text = (rules / f"{rule}.smk").read_text()
        for name in names:
            block = text.split(f"rule {name}:", 1)[1].split("\nrule ", 1)[0]
            assert f"mem_mb=RESOURCES.{rule}_mem_mb," in block, name


def test_the_prep_job_of_a_large_simulated_slide_fits_a_two_hour_partition(tmp_path, monkeypatch):
    """qc's and hvg's time was 50 MiB of file a minute, and a simulated slide not made yet is counted as an
    uncompressed CSR: benchmarks/dag_hd's sim1m (1,000,000 spots) was asked 42 minutes of qc and of hvg at the start
    (measured 49 s and 109 s, benchmarks/results/dag_hd_peaks.tsv), and profiles/slurm's prep job (simulate + qc +
    hvg + graph, the sum of their times) 162 minutes, refused at the start on a partition of MaxTime 2 hours though
    it runs in 8 minutes.  Now they are 200 MB of the matrix in memory a minute (measured 1,700 and 780), on top of
    10 minutes: 18 each, and prep fits."""
    import yaml
    from types import SimpleNamespace as Job

    from stcore.plan.resources import JobResources, slurm_partitions, unschedulable
    from stcore.plan.runs import simulated_file

    root = Path(__file__).resolve().parents[1]
    bench = yaml.safe_load((root / "benchmarks" / "dag_hd" / "config.yaml").read_text())
    profile = yaml.safe_load((root / "profiles" / "slurm" / "config.yaml").read_text())
    seconds = {rule: s for (rule, job), s in _measured_seconds("dag_hd_peaks.tsv").items() if job == "sim1m"}
    monkeypatch.chdir(tmp_path)
    plan = _plan(dict(_config(**bench["methods"]), **{k: bench[k] for k in ("simulate", "hvg", "graph", "train")}))
    plan.slides["s1"] = dict(plan.slides["s1"], path=simulated_file("sim1m"))
    resources, s1 = JobResources(plan), Job(sample="s1")
    minutes = {"simulate": resources.simulate_runtime(Job(name="sim1m"), None, 1),
               "qc": resources.qc_runtime(s1, Job(raw=[simulated_file("sim1m")]), 1),
               "hvg": resources.hvg_runtime(s1, Job(h5ad="results/s1/qc.h5ad"), 1),
               "graph": profile["default-resources"]["runtime"]}
    for step, asked in minutes.items():
        assert asked * 60 >= 5 * seconds[step], (step, asked, seconds[step])
    steps = sorted(step for step, group in profile["groups"].items() if group == "prep")
    assert steps == sorted(minutes)
    prep = {"cpus": 1, "mem_mb": 1000, "runtime": sum(minutes.values()), "slurm_partition": None, "steps": steps}
    assert unschedulable([("prep", "s1", prep)], slurm_partitions("two*|n1|16|64000|2:00:00|up\n")) == []
    assert unschedulable([("prep", "s1", prep)], slurm_partitions("one*|n1|16|64000|1:00:00|up\n"))


def test_qc_of_a_compressed_slide_asks_for_more_than_its_matrix_takes(tmp_path):
    """qc asked 1024 MB and 8 times the size of its file, but an .h5ad written gzip-compressed is about 0.27 times
    its matrix in memory (simulated 100,000 spots x 3,000 genes: 41.3 MiB on disk, 141 MB held; 136 MiB, 517 MB),
    and qc's measured peak is about 0.3 GB and 3.2 times that matrix (705 and 1,817 MB): a slide of 1,000,000 spots
    asked less than its peak and was killed.  Now qc asks 4 times the matrix its header gives (entries x 8 bytes),
    or 8 times the file where that is more; a file with no such header as before."""
    from stcore.plan.resources import file_mb, matrix_mb, qc_mem_mb

    h5py = pytest.importorskip("h5py")

    path = tmp_path / "packed.h5ad"
    with h5py.File(path, "w") as fh:        # 200 million entries (1,526 MB in memory), none written: a few kB on disk
        x = fh.create_group("X")
        x.attrs["shape"] = (1_000_000, 3000)
        x.create_dataset("data", shape=(200_000_000,), dtype="float32", compression="gzip")
    held = matrix_mb(str(path))
    assert file_mb(str(path)) < 1 and held > 1500
    assert qc_mem_mb([str(path)], 1) >= 300 + 3.2 * held and qc_mem_mb([str(path)], 2) >= 2 * (300 + 3.2 * held)
    # a 10x .h5: its matrix from its header, as an .h5ad's
    tenx = tmp_path / "filtered_feature_bc_matrix.h5"
    with h5py.File(tenx, "w") as fh:
        m = fh.create_group("matrix")
        m.create_dataset("shape", data=[3000, 1_000_000])
        m.create_dataset("data", shape=(200_000_000,), dtype="int32", compression="gzip")
    assert qc_mem_mb([str(tenx)], 1) == qc_mem_mb([str(path)], 1)
    # a file of another kind (text, images): 8 times its size, as before
    (tmp_path / "counts.csv").write_bytes(b"0" * 2**22)
    (tmp_path / "empty.csv").write_bytes(b"")
    assert qc_mem_mb([str(tmp_path / "counts.csv")], 1) - qc_mem_mb([str(tmp_path / "empty.csv")], 1) == 8 * 4


def test_the_banksy_job_asks_for_the_memory_it_was_measured_to_take():
    """The train job's request for BANKSY (the registry's bytes_per_value for every spot and gene
    given) covers every peak of benchmarks/results/banksy_scale.tsv, up to 50,000 spots."""
    from stcore.plan.resources import BASE_MB

    per_value = METHODS["banksy"].bytes_per_value
    measured = (Path(__file__).resolve().parents[1] / "benchmarks/results/banksy_scale.tsv").read_text().splitlines()
    header = measured[0].split("\t")
    rows = [dict(zip(header, line.split("\t"))) for line in measured[1:]]
    assert max(int(r["spots"]) for r in rows) >= 50000
    for r in rows:
        asked = BASE_MB + per_value * int(r["spots"]) * int(r["genes_given"]) / 2**20
        assert asked >= float(r["peak_mb"]), r


def test_settings_as_the_schema_means_them():
    schema = {"type": "object", "properties": {"epochs": {"type": "integer"}, "lr": {"type": "number"},
                                               "range": {"type": "array", "items": {"type": "integer"}}}}
    out = as_schema_types({"epochs": 20.0, "lr": 1.0, "range": [2.0, 15.0]}, schema, schema)
    assert out == {"epochs": 20, "lr": 1.0, "range": [2, 15]} and type(out["lr"]) is float
    assert type(out["epochs"]) is int
    # snakemake reads --config train='{epochs: 20, lr: 0.01}' as text: read as the schema means it
    schema["properties"] |= {"on": {"type": "boolean"}, "name": {"type": "string"}, "k": {"type": ["integer", "string"]}}
    out = as_schema_types({"epochs": "20", "lr": "1e-3", "range": ["2", "15.0"], "on": "True", "name": "20", "k": "7"},
                          schema, schema)
    assert out == {"epochs": 20, "lr": 0.001, "range": [2, 15], "on": True, "name": "20", "k": 7}
    assert type(out["epochs"]) is int and type(out["range"][1]) is int
    # yes/no/on/off as a config file's YAML reads them (--config consensus=no was refused: 'no' is not a boolean)
    assert [as_schema_types({"on": w}, schema, schema)["on"] for w in ("no", "Off", "yes", "ON", "false")] == [
        False, False, True, True, False]
    assert as_schema_types({"on": "nope"}, schema, schema) == {"on": "nope"}
    bad = as_schema_types({"epochs": "many", "lr": "nan", "range": ["2.5"]}, schema, schema)
    assert bad == {"epochs": "many", "lr": "nan", "range": [2.5]}          # left for the schema to refuse, by name
    env = allocator_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert env == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"}
    assert allocator_environment({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}) == {}
    with pytest.raises(PlanError, match=r"STCORE_MALLOC=/no/such.so: no tcmalloc library found"):
        allocator_environment({"STCORE_MALLOC": "/no/such.so"})


def test_a_key_given_twice_in_a_config_file_is_named(tmp_path):
    """YAML keeps the second of two equal keys without a word (a second train: block dropped the
    first's epochs; a method named twice ran once): each is named with its lines and the fix."""
    cases = {
        "train:\n  epochs: 50\nhvg: {n_top_genes: 30}\ntrain:\n  lr: 0.01\n":
            r"/c\.yaml': train is given twice \(lines 1 and 4\);.*Fix: merge the two train blocks into one$",
        "methods:\n  graphst: {model: graphst}\n  graphst: {model: expression}\n":
            r"methods\.graphst is given twice \(lines 2 and 3\);.*, or rename one$",
        "train: {epochs: 5, lr: 0.1, epochs: 7}\n": r"train\.epochs is given twice \(line 1\);.*Fix: delete one of the two train\.epochs$",
        "ensembles:\n  e: {methods: [a, b]}\ncompare:\n  claim: {text: t, text: u}\n": r"compare\.claim\.text is given twice",
    }
    for text, message in cases.items():
        (tmp_path / "c.yaml").write_text(text)
        assert re.search(message, repeated_key(str(tmp_path / "c.yaml"))), text
    (tmp_path / "c.yaml").write_text("train: {epochs: 5}\nmethods:\n  a: {train: {epochs: 5}}\n  b: {train: {epochs: 5}}\n")
    assert repeated_key(str(tmp_path / "c.yaml")) is None            # the same key in different blocks
    (tmp_path / "c.yaml").write_text("train: [\n")
    assert repeated_key(str(tmp_path / "c.yaml")) is None            # not YAML: Snakemake names it


def test_a_number_or_boolean_where_text_is_needed_is_named_with_the_quotes():
    assert "Fix: quote it as the sample sheet or config writes it (e.g. '151673')" in text_fix(151673, "type", "string")
    assert text_fix(7, "type", ["string", "null"]).startswith("7 is a number, where text is needed: YAML reads unquoted")
    assert text_fix(False, "type", "string").startswith("False is a boolean, where text is needed: YAML reads an unquoted")
    assert text_fix("many", "type", "integer") is None and text_fix(3, "type", "array") is None
    assert text_fix(3, "minimum", 5) is None


def test_a_set_of_names_in_another_shape_is_named_with_the_mapping_to_write():
    models = tuple(METHODS)
    assert shape_fix(["graphst", "banksy", "mine"], "type", "object", ["methods"], models).endswith(
        "Fix: write methods: {graphst: {model: graphst}, banksy: {model: banksy}, mine: {model: graphst}}")
    assert shape_fix(["a", "b"], "type", "object", ["ensembles"], models).endswith(
        "Fix: write ensembles: {combined: {methods: [a, b]}}")
    assert shape_fix(["a", "b"], "type", "object", ["ensembles", "e"], models).endswith("Fix: write e: {methods: [a, b]}")
    assert shape_fix(None, "type", "object", ["methods", "banksy"], models).endswith("e.g. banksy: {model: banksy}")
    assert shape_fix(None, "type", "object", ["train"], models) is None
    assert shape_fix([1], "type", "object", ["methods"], models) is None
    assert renamed_keys({"methods": ["graphst"], "cluster": {}}) is None      # left to the schema, not a traceback


def test_a_failed_run_says_the_table_is_an_earlier_runs(tmp_path, monkeypatch):
    """A run that failed before its table step (a slide's qc with --keep-going, after a change of
    epochs) left results/table.tsv and the summaries of the run before, beside result files it
    rewrote, without a word; the end of the run says so."""
    import os

    from stcore.plan.failures import earlier_table_line

    monkeypatch.chdir(tmp_path)
    assert earlier_table_line(1e9) is None                                  # no table yet
    (tmp_path / "results").mkdir()
    for name in ("table.tsv", "summary.md", "summary.html"):
        (tmp_path / "results" / name).write_text("x")
        os.utime(tmp_path / "results" / name, (1e9, 1e9))
    line = earlier_table_line(2e9)
    assert line.startswith("WARNING results/table.tsv, results/summary.md, results/summary.html are an earlier "
                           "run's (written 2001-09-")
    assert "not this run's: its table step did not run or failed" in line and "Fix: correct the failures" in line
    assert earlier_table_line(1e9 - 1) is None                              # this run wrote them


def test_a_failed_first_run_says_where_its_finished_runs_are(tmp_path, monkeypatch):
    """A first run with --keep-going where one member failed alone (banksy's train at every seed) made every
    other run's metrics.tsv and domains.h5ad but no results table (its step gathers every run), and its end
    named the failures only: nothing said where the finished runs' scores were.  It now says so; nothing where
    no run finished, and the earlier table's warning where a table is there."""
    import os

    from stcore.plan.failures import end_of_run_lines

    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs" / "train").mkdir(parents=True)
    (tmp_path / "logs" / "train" / "s.banksy.seed0.log").write_text(
        "2026-01-01 00:00:00 ERROR stcore: sample 's': banksy failed. Fix: ...\n")
    assert end_of_run_lines(0) == ["FAILED logs/train/s.banksy.seed0.log: sample 's': banksy failed. Fix: ..."]
    for seed in (0, 1):
        run = tmp_path / "results" / "s" / "graphst" / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "metrics.tsv").write_text("x")
    old = tmp_path / "results" / "s" / "cellcharter" / "seed0"
    old.mkdir(parents=True)
    (old / "metrics.tsv").write_text("x")
    os.utime(old / "metrics.tsv", (1e9, 1e9))                              # an earlier run's: not counted
    lines = end_of_run_lines(1.5e9)
    assert lines[1] == ("NOTE results/table.tsv and the summaries were not made: the table step gathers every run of "
                        "the config, and not all finished. 2 run(s) did, each with its scores in its metrics.tsv and "
                        "its domains in domains.h5ad beside it (results/<sample>/<method>/<seed>/; first: "
                        "results/s/graphst/seed0/metrics.tsv). Fix: correct the failures above (or take the failing "
                        "slide or method out of the config) and run again: the finished runs are kept and the table "
                        "is made"), lines
    (tmp_path / "results" / "table.tsv").write_text("x")
    os.utime(tmp_path / "results" / "table.tsv", (1e9, 1e9))
    assert "are an earlier run's" in end_of_run_lines(1.5e9)[1]


def test_the_failure_lines(tmp_path):
    logs = tmp_path / "logs"
    (logs / "train").mkdir(parents=True)
    (logs / "train" / "s1.graphst.seed0.log").write_text(
        "2026-01-01 00:00:00 INFO stcore: start\n2026-01-01 00:00:01 ERROR stcore: sample 's1': X is empty. Fix: ...\n")
    (logs / "qc").mkdir()
    (logs / "qc" / "s2.log").write_text("")
    sm_log = tmp_path / "snakemake.log"
    sm_log.write_text(f"Error in rule qc:\n    jobid: 3\n    log: {logs / 'qc' / 's2.log'} (check log file(s) for error details)\n")
    lines = failure_lines(0, log_dir=str(logs), snakemake_logs=[str(sm_log)])
    assert lines[0].endswith("s1.graphst.seed0.log: sample 's1': X is empty. Fix: ...")
    assert lines[1].endswith("sample 's2', step 'qc': the job ended with an empty log (killed, or out of memory?); "
                             "its error is in the console output above")
    assert "ERROR stcore: sample 's2', step 'qc'" in (logs / "qc" / "s2.log").read_text()
    assert job_sample("train", "logs/train/s.1.graphst.seed0.log") == "s.1"
    assert job_sample("table", "logs/table.log") == "all"


def test_a_failed_spatialdata_export_is_named_by_its_slide():
    """The export_spatialdata job's log (rules/export.smk: logs/export/<sample>.<label>.<which>.zarr.log), of a job
    that ended without an ERROR line (killed, stopped by SLURM): its FAILED line named sample 'st.graphst.seed0'."""
    assert job_sample("export_spatialdata", "logs/export/st.graphst.seed0.zarr.log") == "st"
    assert job_sample("export_spatialdata", "logs/export/st.1.both.consensus.zarr.log") == "st.1"
    assert job_sample("export", "logs/export/st.graphst.seed0.log") == "st"


def test_a_run_stopped_with_ctrl_c_says_so_and_to_run_it_again(tmp_path, monkeypatch):
    """Ctrl-C during a run (measured: epochs changed, stopped while a train job ran): its running job was
    listed as 'FAILED ...: the job ended with an empty log (killed, or out of memory?)' and the earlier
    table's warning said 'Fix: correct the failures above and run again'; each now says the run was
    stopped and to run the same command again.  Snakemake's log says 'Terminating processes on user
    request' where the user stopped it."""
    import os

    from stcore.plan.failures import end_of_run_lines

    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs" / "train").mkdir(parents=True)
    (tmp_path / "logs" / "train" / "b.graphst.seed1.log").write_text("")
    (tmp_path / "results").mkdir()
    for name in ("table.tsv", "summary.md", "summary.html"):
        (tmp_path / "results" / name).write_text("x")
        os.utime(tmp_path / "results" / name, (1e9, 1e9))
    block = ("Error in rule train:\n    message: None\n    jobid: 23\n"
             "    log: logs/train/b.graphst.seed1.log (check log file(s) for error details)\n")
    died = ("Command 'set -euo pipefail;  python train.py' died with <Signals.SIGINT: 2>.\n")
    (tmp_path / "sm.log").write_text("Select jobs to execute...\nTerminating processes on user request, this might "
                                     "take some time.\nRuleException:\n" + died + block)
    lines = end_of_run_lines(2e9, snakemake_logs=["sm.log"])
    assert lines[0] == ("FAILED logs/train/b.graphst.seed1.log: sample 'b', step 'train': the run was stopped (Ctrl-C) "
                        "while this job ran, so it did not finish and none of its outputs was kept. Fix: run the same "
                        "command again: the finished jobs are kept and this one runs again")
    assert "its table step did not run (the run was stopped)" in lines[1] and "Fix: run the same command again" in lines[1]
    assert "out of memory" not in "\n".join(lines)
    (tmp_path / "logs" / "train" / "b.graphst.seed1.log").write_text("")
    (tmp_path / "sm2.log").write_text("RuleException:\n" + block)             # a job killed, no Ctrl-C: as before
    lines = end_of_run_lines(2e9, snakemake_logs=["sm2.log"])
    assert "the job ended with an empty log (killed, or out of memory?)" in lines[0]
    assert "Fix: correct the failures above and run again" in lines[1]


SEP = "=" * 80


def _slurm_rule_block(jobid, mem, runtime, log):
    return (f"[Sun Dec  6 09:59:04 2026]\nrule train:\n    input: results/s/hvg.h5ad\n    log: {log}\n"
            f"    jobid: {jobid}\n    threads: 2\n    resources: tmpdir=<TBD>, mem_mb={mem}, mem=1 GB, "
            f"disk_mb=1000, runtime={runtime}, gpu=0\n")


def _slurm_error_block(step, jobid, slurm_id, status, log, slurm_log):
    return (f"[Sun Dec  6 10:00:12 2026]\nError in rule {step}:\n    message: SLURM-job '{slurm_id}' failed, "
            f"SLURM status is: '{status}'. Detailed failure reason unavailable (status command is not 'sacct')."
            f"For further error details see the cluster/cloud log and the log files of the involved rule(s).\n"
            f"    jobid: {jobid}\n    output: results/s/graphst/seed0/train.npz\n"
            f"    log: {log}, {slurm_log} (check log file(s) for error details)\n    external_jobid: {slurm_id}\n")


def test_a_job_slurm_stopped_is_named_with_its_limit_and_the_fix(tmp_path, monkeypatch):
    """A job SLURM stopped (time limit, memory, scancel) ends in one line naming the SLURM job, the limit it
    had and the fix, not 'the job ended without an error message' beside the step's last INFO line."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs" / "train").mkdir(parents=True)
    (tmp_path / "slurm").mkdir()
    log = "logs/train/s.graphst.seed0.log"
    (tmp_path / log).write_text("2026-12-06 09:59:12,291 INFO stcore.train: epoch 1/40000 loss 121.6\n")
    for job, words in (("350", "CANCELLED AT 2026-12-06T10:00:09 DUE TO TIME LIMIT"),
                       ("351", "CANCELLED AT 2026-12-06T10:01:40 DUE TO TIME LIMIT")):
        (tmp_path / "slurm" / f"{job}.log").write_text(f"slurmstepd-vm: error: *** JOB {job} ON vm {words} ***\n")
    # Snakemake's log of the run as the slurm executor writes it: two attempts at one fixed runtime, each
    # failed job's SLURM log copied in (show-failed-logs), holding the job's own Snakemake's blocks.
    inner = (f"Logfile slurm/350.log:\n{SEP}\n" + _slurm_rule_block(0, 1027, 1, log).replace("rule", "localrule")
             + f"Error in rule train:\n    message: None\n    jobid: 0\n    log: {log} (check log file(s))\n{SEP}\n")
    text = (_slurm_rule_block(4, 1027, 1, log) + "Job 4 has been submitted with SLURM jobid 350 (log: slurm/350.log).\n"
            + _slurm_error_block("train", 4, 350, "TIMEOUT", log, "slurm/350.log") + inner
            + "Trying to restart job 4.\n" + _slurm_rule_block(4, 2054, 1, log)
            + _slurm_error_block("train", 4, 351, "TIMEOUT", log, "slurm/351.log")
            + inner.replace("350", "351") + "Exiting because a job execution failed.\n")
    (tmp_path / "sm.log").write_text(text)
    lines = failure_lines(0, snakemake_logs=["sm.log"])
    assert lines == [f"{log}: sample 's', step 'train': SLURM stopped job 351 at its time limit, runtime=1 minutes, "
                     "the same on each of its 2 attempts (a number given in the profile or with --set-resources / "
                     "--default-resources is not multiplied by the attempt) (TIMEOUT). Fix: give train more time, e.g. "
                     "--set-resources 'train:runtime=2*attempt' on the command line (or under set-resources: in "
                     "the profile), and run the same command again; its SLURM log: slurm/351.log"], lines
    assert "ERROR stcore: sample 's', step 'train': SLURM stopped job 351" in (tmp_path / log).read_text()
    # Out of memory (the executor's status; a cgroup's oom-kill in the SLURM log says the same), the
    # memory growing with the attempt as the profile's estimate asks.
    (tmp_path / log).write_text("2026-12-06 09:59:12,291 INFO stcore.train: epoch 1/600\n")
    (tmp_path / "slurm" / "351.log").write_text("slurmstepd: error: Detected 1 oom-kill event(s) in StepId=351.batch. "
                                                 "Some of your processes may have been killed by the cgroup "
                                                 "out-of-memory handler.\n")
    (tmp_path / "sm.log").write_text(text.replace("runtime=1,", "runtime=15,").replace("'TIMEOUT'", "'FAILED'"))
    line = failure_lines(0, snakemake_logs=["sm.log"])[0]
    assert line.endswith("SLURM stopped job 351 at its memory, mem_mb=2054 MB (OUT_OF_MEMORY). Fix: give train "
                         "more memory, e.g. --set-resources 'train:mem_mb=4108*attempt' on the command line (or "
                         "under set-resources: in the profile), and run the same command again; its SLURM log: "
                         "slurm/351.log"), line
    # A group job cancelled: the executor says 'Error in group prep' and nothing of SLURM's status; the
    # step that ran is named from the job's own Snakemake, SLURM's words from its log.
    (tmp_path / "logs" / "qc").mkdir()
    (tmp_path / "logs" / "qc" / "g.log").write_text("")
    (tmp_path / "slurm" / "358.log").write_text("slurmstepd-vm: error: *** JOB 358 ON vm CANCELLED AT 2026-12-06T10:06:07 ***\n")
    (tmp_path / "sm.log").write_text(
        "Job 0cbf has been submitted with SLURM jobid 358 (log: slurm/358.log).\n[Sun Dec  6 10:06:19 2026]\n"
        "    message: Error in group prep\n    log: slurm/358.log (check log file(s) for error details)\n    jobs:\n"
        "        rule qc:\n            jobid: 6\n            output: results/g/qc.h5ad\n"
        "            log: logs/qc/g.log (check log file(s) for error details)\n"
        "        rule hvg:\n            jobid: 5\n            log: logs/hvg/g.log (check log file(s) for error details)\n"
        f"Logfile slurm/358.log:\n{SEP}\nslurmstepd-vm: error: *** JOB 358 ON vm CANCELLED AT 2026-12-06T10:06:07 ***\n"
        "Error in rule qc:\n    message: None\n    jobid: 6\n    log: logs/qc/g.log (check log file(s) for error details)\n"
        f"{SEP}\nExiting because a job execution failed.\n")
    lines = failure_lines(time.time() + 60, snakemake_logs=["sm.log"])
    assert lines == ["logs/qc/g.log: sample 'g', step 'qc': SLURM ended job 358 (group job 'prep') with status "
                     "CANCELLED (cancelled with scancel, by you or the cluster's administrators), not for an error "
                     "of the step. Fix: run the same command again; its SLURM log: slurm/358.log"], lines
    # A step that failed by itself inside a SLURM job is named by its own ERROR line, as with --cores.
    (tmp_path / "logs" / "qc" / "g.log").write_text("2026-12-06 10:06:07 ERROR stcore: sample 'g': no counts. Fix: x\n")
    (tmp_path / "slurm" / "358.log").write_text("srun: error: vm: task 0: Exited with exit code 1\n")
    os.utime(tmp_path / log, (1, 1))                                  # an earlier run's
    assert failure_lines(2, snakemake_logs=["sm.log"]) == ["logs/qc/g.log: sample 'g': no counts. Fix: x"]


def test_a_job_sbatch_refused_is_named_with_its_reason_and_the_fix(tmp_path, monkeypatch):
    """A partition the cluster does not have (--set-resources train:slurm_partition=gpuq): sbatch refuses the
    job; the run ends on a line saying so, not on nothing (sbatch's lines broke Snakemake's block)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sm.log").write_text(
        "[Sun Dec  6 10:10:05 2026]\nError in rule train:\n    message: SLURM sbatch failed. The error message "
        "was 'sbatch: error: invalid partition specified: gpuq\nsbatch: error: Batch job submission failed: Invalid "
        "partition name specified'.\n    sbatch call:\n        sbatch --parsable -p gpuq -t 15 --mem 1027\nFor "
        "further error details see the cluster/cloud log and the log files of the involved rule(s).\n    jobid: 4\n"
        "    output: results/s/graphst/seed0/train.npz\n"
        "    log: logs/train/s.graphst.seed0.log (check log file(s) for error details)\n"
        "Logfile logs/train/s.graphst.seed0.log not found.\nExiting because a job execution failed.\n")
    assert failure_lines(0, snakemake_logs=["sm.log"]) == [
        "logs/train/s.graphst.seed0.log: sample 's', step 'train': sbatch refused to queue the job (invalid partition "
        "specified: gpuq), so it never ran. Fix: give slurm_partition one of the cluster's partitions (sinfo -s "
        "lists them) in the profile's default-resources / set-resources, or in --default-resources / "
        "--set-resources on the command line; the sbatch call is in the console output above"]


# sinfo -h -N -o '%P|%N|%c|%m|%l|%a' of a cluster of three partitions: the default one of 2-CPU nodes without a
# time limit, one of larger nodes for a week, one of 4-CPU nodes for an hour.
SINFO_ANSWER = ("debug*|n1|2|23081|infinite|up\ndebug*|n2|2|16000|infinite|up\nlong|big1|16|128000|7-00:00:00|up\n"
                "short|s1|4|8000|1:00:00|up\n")


def test_a_job_no_node_or_partition_can_ever_run_is_refused_before_any_is_submitted():
    """--set-threads train=8 on a cluster of 2-CPU nodes (likewise memory over every node's, a runtime over
    the partition's MaxTime): SLURM keeps such a job queued without end (PartitionConfig, PartitionTimeLimit)
    and Snakemake waited with it without a word.  One line per step names the sample, what it asks for, what
    the cluster offers and the fix, from what sinfo says."""
    from stcore.plan.resources import slurm_partitions, unschedulable

    cluster = slurm_partitions(SINFO_ANSWER)
    assert cluster["debug"]["default"] and not cluster["long"]["default"]
    assert (cluster["long"]["minutes"], cluster["short"]["minutes"], cluster["debug"]["minutes"]) == (10080, 60, None)
    train = [("train", s, {"cpus": 8, "mem_mb": "<TBD>", "runtime": "<TBD>", "slurm_partition": None})
             for s in ("a", "b", "c")]
    prep = [("qc", s, {"cpus": 1, "mem_mb": 1100, "runtime": 10, "slurm_partition": None}) for s in ("a", "b", "c")]
    assert unschedulable(prep + train, cluster) == [
        "sample 'a', step 'train' (and 2 more of its jobs) asks SLURM for 8 CPUs (--cpus-per-task, the step's "
        "threads), but the largest node of partition 'debug' has 2 CPUs and 23081 MB (sinfo -N -p debug -o "
        "'%N %c %m'): SLURM could never start it (it would wait in the queue without end, squeue's reason "
        "PartitionConfig), so nothing was submitted. Fix: --set-threads train=2 on the command line (or "
        "set-threads: {train: 2} in the profile), or a partition with larger nodes (set-resources: train: "
        "slurm_partition: in the profile)"]
    # memory over every node's; a runtime over the partition's MaxTime; more CPUs and memory together than a node has
    line, = unschedulable([("hvg", "a", {"cpus": 1, "mem_mb": 30000, "runtime": 20, "slurm_partition": "debug"})],
                          cluster)
    assert "asks SLURM for 30000 MB of memory (mem_mb), but the largest node of partition 'debug' has 2 CPUs and " \
           "23081 MB" in line and "Fix: ask for at most what a node has, --set-resources 'hvg:mem_mb=23081'" \
           in line and "squeue" not in line, line
    line, = unschedulable([("train", "b", {"cpus": 2, "mem_mb": 2000, "runtime": 90, "slurm_partition": "short"})],
                          cluster)
    assert line.startswith("sample 'b', step 'train' asks SLURM for 90 minutes (runtime), but partition 'short' "
                           "allows at most 60 minutes (its MaxTime; ") and "squeue's reason PartitionTimeLimit" in line \
        and "Fix: --set-resources 'train:runtime=60'" in line, line
    line, = unschedulable([("train", "c", {"cpus": 2, "mem_mb": 20000, "slurm_partition": None})],
                          slurm_partitions("debug*|n1|2|8000|infinite|up\ndebug*|n2|1|23081|infinite|up\n"))
    assert "asks SLURM for 2 CPUs and 20000 MB together" in line and "none both" in line, line
    # A group job (the profiles' post: cluster + evaluate + export, 30 minutes each by default) asks for the
    # sum of its steps' runtimes: 90 minutes over a 1-hour partition, though each step fits.
    post = [("post", s, {"cpus": 1, "mem_mb": 2000, "runtime": 90, "slurm_partition": "short",
                         "steps": ["cluster", "evaluate", "export"]}) for s in ("a", "b")]
    line, = unschedulable(post, cluster)
    assert line.startswith("sample 'a', group job 'post' of steps cluster, evaluate, export (and 1 more of its jobs) "
                           "asks SLURM for 90 minutes (runtime), but partition 'short' allows at most 60 minutes") \
        and "squeue's reason PartitionTimeLimit" in line and "with cluster + evaluate + export at most 60" in line \
        and "delete their lines under groups: in the profile" in line, line
    # What fits, a size not known yet, a partition sinfo does not name (sbatch refuses it, and that is named
    # when it does) and a cluster that did not answer: nothing said, the run goes on.
    assert unschedulable([("train", "a", {"cpus": 8, "mem_mb": 100000, "runtime": 9000, "slurm_partition": "long"}),
                          ("train", "b", {"cpus": 2, "mem_mb": "<TBD>", "runtime": None, "slurm_partition": None}),
                          ("train", "c", {"cpus": 64, "slurm_partition": "gpuq"})], cluster) == []
    assert slurm_partitions(None) == {} and slurm_partitions("sinfo: error: cannot connect\n") == {}
    assert unschedulable(train, slurm_partitions(None)) == []


def test_a_retry_that_asks_more_than_the_partition_gives_is_warned_of_when_the_run_starts():
    """A retry asks again, more where the size grows with the attempt (the rules' `attempt` times the first, a
    given --set-resources 'train:runtime=40*attempt'): past the partition's MaxTime sbatch accepted it and SLURM
    kept it PENDING (PartitionTimeLimit) without end; past the largest node's memory sbatch refused it only at
    that attempt.  The start-of-run check read attempt 1 only and said nothing; it now reads every attempt the
    profile's retries allow and warns, naming the step, the attempt, what each attempt asks and the fix.  A
    warning, not a refusal: attempt 1 fits, and only a job that fails reaches the retry (a 25-minute train on a
    60-minute partition, 75 minutes at attempt 3 of the profiles' retries: 2, runs)."""
    from types import SimpleNamespace

    from stcore.plan.resources import _attempts_of, slurm_partitions, unschedulable

    cluster = slurm_partitions(SINFO_ANSWER)
    train = [("train", s, {"cpus": 2, "mem_mb": 2000, "runtime": 40, "slurm_partition": "short",
                           "attempts": [{"cpus": 2, "mem_mb": 2000, "runtime": 40 * a, "slurm_partition": "short"}
                                        for a in (1, 2, 3)]}) for s in ("a", "b")]
    assert unschedulable(train, cluster) == []                   # attempt 1 fits: nothing refused
    line, = unschedulable(train, cluster, retries=True)
    assert line.startswith("warning: sample 'a', step 'train' (and 1 more of its jobs) asks SLURM at attempt 2 of 3 "
                           "(the run's retries: 2; runtime 40, 80, 120 minutes on its 3 attempts: ") \
        and "for 80 minutes (runtime), but partition 'short' allows at most 60 minutes (its MaxTime; " in line \
        and "squeue's reason PartitionTimeLimit" in line and "the run goes on (attempt 1 fits), but a job of it " \
        "that fails once reaches that retry. Fix: --set-resources 'train:runtime=60'" in line \
        and line.endswith("or fewer retries, --retries 0 on the command line (retries: in the profile), so that "
                          "attempt 1, the last, fits"), line
    # memory growing past the largest node's at the last attempt (sbatch refused attempt 3 after two ran)
    qc = [("qc", "a", {"cpus": 1, "mem_mb": 9000, "runtime": 10, "slurm_partition": None,
                       "attempts": [{"cpus": 1, "mem_mb": 9000 * a, "runtime": 10 * a} for a in (1, 2, 3)]})]
    line, = unschedulable(qc, cluster, retries=True)
    assert "asks SLURM at attempt 3 of 3 (the run's retries: 2; mem_mb 9000, 18000, 27000 MB on its 3 " \
           "attempts" in line and "for 27000 MB of memory (mem_mb), but the largest node of partition 'debug' has " \
           "2 CPUs and 23081 MB" in line and "--retries 1 on the command line" in line and \
           "attempt 2, the last, fits" in line, line
    # every attempt fits, or a later attempt's size is not known yet (<TBD>): nothing said
    fits = [("qc", "a", {"cpus": 1, "mem_mb": 9000, "runtime": 10,
                         "attempts": [{"cpus": 1, "mem_mb": 7000 * a} for a in (1, 2, 3)]}),
            ("train", "a", {"cpus": 2, "mem_mb": 2000, "runtime": 40, "slurm_partition": "short",
                            "attempts": [{"cpus": 2, "runtime": 40}, {"cpus": 2, "runtime": "<TBD>"}]})]
    assert unschedulable(fits, cluster) == [] and unschedulable(fits, cluster, retries=True) == []
    # attempt 1 over the partition's: refused, and not warned of a second time for its retries
    over = [("train", "a", {"cpus": 2, "mem_mb": 2000, "runtime": 90, "slurm_partition": "short",
                            "attempts": [{"cpus": 2, "mem_mb": 2000, "runtime": 90 * a, "slurm_partition": "short"}
                                         for a in (1, 2, 3)]})]
    line, = unschedulable(over, cluster)
    assert "asks SLURM for 90 minutes (runtime)" in line and "so nothing was submitted" in line, line
    assert unschedulable(over, cluster, retries=True) == []

    # What each attempt asks, read as Snakemake reads a retry's: the job's attempt set (its resources evaluated
    # again), from 1 to restart_times + 1, and set back after.
    class Job:
        restart_times, attempt = 2, 1

        def resources(self):
            return {"mem_mb": 1000 * self.attempt, "runtime": 40 * self.attempt, "slurm_partition": "short"}

    job = Job()
    asks = _attempts_of(job, job.resources, lambda res: 2)
    assert [(a["mem_mb"], a["runtime"], a["cpus"]) for a in asks["attempts"]] == [(1000, 40, 2), (2000, 80, 2),
                                                                                 (3000, 120, 2)]
    assert (asks["mem_mb"], asks["runtime"], job.attempt) == (1000, 40, 1)
    job.restart_times = 0
    assert len(_attempts_of(job, job.resources, lambda res: 2)["attempts"]) == 1
    assert _attempts_of(SimpleNamespace(attempt=1, restart_times=2), lambda: 1 / 0, lambda res: 1) is None


# scontrol show partition --oneliner of SINFO_ANSWER's cluster (fields cut): debug gives a job at most 1 CPU and
# 4000 MB of a node, long at most 4000 MB per CPU, short has no limits of its own.
SCONTROL_ANSWER = (
    "PartitionName=debug AllowGroups=ALL Default=YES MaxNodes=UNLIMITED MaxTime=UNLIMITED MinNodes=0 LLN=NO "
    "MaxCPUsPerNode=1 Nodes=n[1-2] State=UP TotalCPUs=4 JobDefaults=(null) DefMemPerNode=UNLIMITED MaxMemPerNode=4000 "
    "TRES=cpu=4,mem=39081M,node=2,billing=4\n"
    "PartitionName=long AllowGroups=ALL MaxTime=7-00:00:00 MaxCPUsPerNode=UNLIMITED Nodes=big1 State=UP "
    "DefMemPerCPU=1000 MaxMemPerCPU=4000\n"
    "PartitionName=short AllowGroups=ALL MaxTime=01:00:00 MaxCPUsPerNode=UNLIMITED Nodes=s1 State=UP "
    "DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED\n")


def test_a_job_over_what_its_partition_gives_a_job_of_a_node_is_refused_when_the_run_starts():
    """A partition's own limits on one job (scontrol: MaxCPUsPerNode, MaxMemPerNode, MaxMemPerCPU) were not
    read: a job within its nodes' CPUs and memory but over MaxCPUsPerNode or MaxMemPerNode was accepted by sbatch
    and left PENDING without end (measured on the test cluster: PartitionConfig, MaxMemPerLimit); one over
    MaxMemPerCPU that needs more CPUs than a node has was refused by sbatch when submitted ("CPU count per node
    can not be satisfied"), after the jobs before it ran.  Now each is refused when the run starts."""
    from stcore.plan.resources import partition_limits, slurm_partitions, unschedulable

    assert partition_limits(SCONTROL_ANSWER) == {
        "debug": {"max_cpus": 1, "max_mem": 4000, "max_mem_per_cpu": None},
        "long": {"max_cpus": None, "max_mem": None, "max_mem_per_cpu": 4000},
        "short": {"max_cpus": None, "max_mem": None, "max_mem_per_cpu": None}}
    cluster = slurm_partitions(SINFO_ANSWER, SCONTROL_ANSWER)
    line, = unschedulable([("train", s, {"cpus": 2, "mem_mb": 2000, "runtime": 30, "slurm_partition": None})
                           for s in ("a", "b")], cluster)
    assert line == (
        "sample 'a', step 'train' (and 1 more of its jobs) asks SLURM for 2 CPUs (--cpus-per-task, the step's "
        "threads), but partition 'debug' gives a job at most 1 CPUs of a node (its MaxCPUsPerNode; scontrol show "
        "partition debug): SLURM could never start it (it would wait in the queue without end, squeue's reason "
        "PartitionConfig), so nothing was submitted. Fix: --set-threads train=1 on the command line (or set-threads: "
        "{train: 1} in the profile), or a partition with larger nodes (set-resources: train: slurm_partition: in the "
        "profile)")
    line, = unschedulable([("hvg", "a", {"cpus": 1, "mem_mb": 6000, "runtime": 20, "slurm_partition": "debug"})],
                          cluster)
    assert "asks SLURM for 6000 MB of memory (mem_mb), but partition 'debug' gives a job at most 4000 MB of a node " \
           "(its MaxMemPerNode; scontrol show partition debug)" in line and "squeue's reason MaxMemPerLimit" in line \
        and "Fix: ask for at most what the partition allows a job, --set-resources 'hvg:mem_mb=4000'" in line, line
    # MaxMemPerCPU: 100000 MB on 8 CPUs needs 25 CPUs at 4000 MB each, more than big1's 16; 60000 MB needs 15: fits
    line, = unschedulable([("train", "a", {"cpus": 8, "mem_mb": 100000, "runtime": 30, "slurm_partition": "long"})],
                          cluster)
    assert "asks SLURM for 100000 MB of memory (mem_mb) on 8 CPUs, but partition 'long' allows at most 4000 MB per " \
           "CPU (its MaxMemPerCPU; scontrol show partition long), so SLURM would raise the job to 25 CPUs, more than " \
           "a node of it gives a job (16), and sbatch refuses it" in line and "squeue" not in line \
        and "--set-resources 'train:mem_mb=64000'" in line, line
    # within every limit; the same jobs where scontrol did not answer (the nodes' sizes only): nothing said
    fits = [("train", "a", {"cpus": 8, "mem_mb": 60000, "runtime": 30, "slurm_partition": "long"}),
            ("qc", "a", {"cpus": 1, "mem_mb": 4000, "runtime": 30, "slurm_partition": None})]
    assert unschedulable(fits, cluster) == []
    assert unschedulable([("train", "a", {"cpus": 2, "mem_mb": 6000, "runtime": 30, "slurm_partition": None})],
                         slurm_partitions(SINFO_ANSWER, None)) == []
    assert slurm_partitions(SINFO_ANSWER, "scontrol: error: cannot connect\n") == slurm_partitions(SINFO_ANSWER)



def test_mem_mb_per_cpu_given_to_a_job_is_what_the_run_start_checks():
    """A profile's or --set-resources' mem_mb_per_cpu was not read by the start-of-run check: the slurm executor
    submits it (--mem-per-cpu) in place of the job's mem_mb, so a train job of 2 CPUs given mem_mb_per_cpu=16000
    asks a node for 32000 MB; the check read the rule's mem_mb and said nothing, and the job waited PENDING
    without end on a cluster of 23081-MB nodes (over a partition's MaxMemPerNode: MaxMemPerLimit).  Now the
    memory checked is mem_mb_per_cpu x the job's CPUs, and the fix names mem_mb_per_cpu."""
    from types import SimpleNamespace

    from stcore.plan.resources import _asks_of, slurm_partitions, unschedulable

    given = {"mem_mb": 2000, "runtime": 30, "slurm_partition": None, "mem_mb_per_cpu": 16000}
    asks = _asks_of(lambda: given, lambda res: 2)
    line, = unschedulable([("train", "a", asks)], slurm_partitions(SINFO_ANSWER))
    assert (asks["mem_mb"], asks["mem_mb_per_cpu"], asks["cpus"]) == (32000, 16000, 2)
    assert line.startswith("sample 'a', step 'train' asks SLURM for 32000 MB of memory (mem_mb_per_cpu 16000 MB x "
                           "its 2 CPUs: the slurm executor asks for mem_mb_per_cpu, where it is given, in place of "
                           "mem_mb), but the largest node of partition 'debug' has 2 CPUs and 23081 MB") \
        and "Fix: ask for at most what a node has, --set-resources 'train:mem_mb_per_cpu=11540' on the command " \
            "line" in line, line
    # over the partition's MaxMemPerNode (4000 MB a job on debug) though within its nodes: the same, for that limit
    asks = _asks_of(lambda: dict(given, mem_mb_per_cpu=6000), lambda res: 1)
    line, = unschedulable([("qc", "a", asks)], slurm_partitions(SINFO_ANSWER, SCONTROL_ANSWER))
    assert "asks SLURM for 6000 MB of memory (mem_mb_per_cpu 6000 MB x its 1 CPUs" in line \
        and "partition 'debug' gives a job at most 4000 MB of a node (its MaxMemPerNode" in line \
        and "--set-resources 'qc:mem_mb_per_cpu=4000'" in line, line
    asks = _asks_of(lambda: dict(given, mem_mb_per_cpu=2500, cpus_per_task=2), lambda res: 1)
    line, = unschedulable([("post", "a", dict(asks, steps=["cluster", "evaluate"]))],
                          slurm_partitions("debug*|n1|2|23081|infinite|up\n", "PartitionName=debug MaxMemPerNode=4000"))
    assert "asks SLURM for 5000 MB of memory (mem_mb_per_cpu 2500 MB x its 2 CPUs" in line \
        and "its MaxMemPerNode" in line and "lower its steps' mem_mb_per_cpu (--set-resources " \
        "'<step>:mem_mb_per_cpu=2000' for each of its steps)" in line, line
    # within the node: nothing said, though the rule's mem_mb alone is more; a mem_mb_per_cpu not known yet: unknown
    assert unschedulable([("train", "a", _asks_of(lambda: dict(given, mem_mb=90000, mem_mb_per_cpu=8000),
                                                  lambda res: 2))], slurm_partitions(SINFO_ANSWER)) == []
    assert _asks_of(lambda: dict(given, mem_mb_per_cpu="<TBD>"), lambda res: 2)["mem_mb"] is None
    assert _asks_of(lambda: given, lambda res: 2)["mem_mb"] == 32000 != _asks_of(
        lambda: dict(given, mem_mb_per_cpu=None), lambda res: 2)["mem_mb"] == 2000
    # as the pinned slurm executor submits such a job: --mem-per-cpu in place of --mem, on the job's threads
    submit = pytest.importorskip("snakemake_executor_plugin_slurm.submit_string")

    class Resources(dict):
        __getattr__ = dict.__getitem__

    job = SimpleNamespace(resources=Resources(given), threads=2, is_group=lambda: False)
    call = submit.get_submit_command(job, {"run_uuid": "u", "slurm_logfile": "log", "comment_str": "c", "account": "",
                                           "partition": "", "workdir": ""}).split()
    assert "--mem" not in call and call[call.index("--mem-per-cpu") + 1] == "16000" \
        and "--cpus-per-task=2" in call, call


def test_a_group_job_is_named_by_its_slide_when_its_first_step_is_simulate():
    """The start-of-run line of a group job named the slide of the job the DAG listed first, by its 'sample'
    wildcard: a prep job of a simulated slide (simulate + qc + hvg + graph) whose first step was simulate,
    whose wildcard is 'name', was named sample 'all' (the demo config on a partition of MaxTime 1 minute:
    "sample 'all', group job 'prep' of steps graph, hvg, qc, simulate (and 2 more of its jobs)").  Now its
    steps' sample, or the simulated slide's name where no step has one."""
    from types import SimpleNamespace as NS

    from stcore.plan.resources import slurm_asks

    def job(rule, **wildcards):
        return NS(rule=NS(name=rule), wildcards_dict=wildcards, is_local=False, attempt=1, restart_times=0,
                  resources={"mem_mb": 2000, "runtime": 30}, threads=1)

    prep = [job("simulate", name="sim_a"), job("qc", sample="a"), job("hvg", sample="a")]
    alone = [job("simulate", name="sim_b")]
    groups = {id(j): g for g, jobs in (("prep", prep), ("solo", alone)) for j in jobs}
    class Group(NS):            # Snakemake's group jobs are dictionary keys
        __hash__, __eq__ = object.__hash__, object.__eq__

    made = {name: Group(groupid=name, jobs=jobs, attempt=1, restart_times=0,
                        resources={"mem_mb": 2000, "runtime": 90, "_cores": 1}) for name, jobs in
            (("prep", prep), ("solo", alone))}
    workflow = NS(dag=NS(needrun_jobs=lambda: prep + alone + [job("table")],
                         get_job_group=lambda j: made.get(groups.get(id(j)))))
    named = {step: sample for step, sample, asks in slurm_asks(workflow)}
    assert named == {"prep": "a", "solo": "sim_b", "table": "all"}, named

def test_a_partition_that_is_down_is_warned_of():
    """A partition that exists but is down (scontrol update PartitionName=debug State=DOWN): SLURM holds its
    jobs (PartitionDown) and the run waited without a word; now a warning names it when the run starts."""
    from stcore.plan.resources import down_partitions, slurm_partitions

    cluster = slurm_partitions(SINFO_ANSWER.replace("short|s1|4|8000|1:00:00|up", "short|s1|4|8000|1:00:00|down"))
    jobs = [("qc", "a", {"slurm_partition": None}), ("train", "a", {"slurm_partition": "short"}),
            ("train", "b", {"slurm_partition": "short"})]
    assert down_partitions(jobs, cluster) == [
        "warning: partition 'short' is not up (sinfo -p short -o %a), so SLURM holds the jobs sent to it (train) in "
        "the queue until it is, and this run waits for them. Fix: stop the run (Ctrl-C) and give "
        "another partition (slurm_partition in the profile's default-resources / set-resources), or ask the "
        "cluster's administrators when 'short' comes back"]
    assert down_partitions(jobs, slurm_partitions(SINFO_ANSWER)) == [] and down_partitions(jobs, {}) == []


def test_the_cluster_is_asked_and_a_query_that_fails_is_no_answer(tmp_path):
    from stcore.plan.resources import ask_slurm

    assert ask_slurm((sys.executable, "-c", "print('debug*|n1|2|100|infinite|up')")) == "debug*|n1|2|100|infinite|up\n"
    assert ask_slurm((str(tmp_path / "no-sinfo"),)) is None                       # not installed
    assert ask_slurm((sys.executable, "-c", "import sys; sys.exit(1)")) is None   # controller down
    assert ask_slurm((sys.executable, "-c", "import time; time.sleep(5)"), timeout=0.5) is None


def _sbatch_refused_block(jobid, mem, log):
    return (f"[Sun Dec  6 12:35:32 2026]\nError in rule train:\n    message: SLURM sbatch failed. The error message "
            "was 'sbatch: error: Memory specification can not be satisfied\nsbatch: error: Batch job submission "
            f"failed: Requested node configuration is not available'.\n    sbatch call:\n        sbatch --parsable "
            f"-p debug -t 30 --mem {mem} --ntasks=1 --cpus-per-task=2\nFor further error details see the cluster/cloud "
            f"log and the log files of the involved rule(s).\n    jobid: {jobid}\n    output: results/s/graphst/seed0/"
            f"train.npz\n    log: {log} (check log file(s) for error details)\nLogfile {log}: empty file\n")


def test_a_retry_sbatch_refused_for_memory_names_what_each_attempt_asked_and_the_largest_node(tmp_path, monkeypatch):
    """A train job whose first attempt fails (out of memory, cancelled) is submitted again with `attempt` times
    its memory; past the largest node's, sbatch refuses it.  The run ended on 'sbatch refused to queue the job
    (Memory specification can not be satisfied), so it never ran. Fix: correct what the job asks SLURM for ...',
    though its first attempt ran; the line now names the attempt, the memory each asked for, what sinfo says
    the largest node has, and a number that fits."""
    from stcore.plan.failures import end_of_run_lines
    from stcore.plan.resources import slurm_partitions

    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs" / "train").mkdir(parents=True)
    log = "logs/train/s.graphst.seed0.log"
    (tmp_path / log).write_text("")
    (tmp_path / "slurm").mkdir()
    (tmp_path / "slurm" / "23.log").write_text("slurmstepd-vm: error: *** JOB 23 ON vm CANCELLED AT 2026-12-06T12:35:31 ***\n")
    (tmp_path / "sm.log").write_text(
        _slurm_rule_block(4, 12000, 15, log) + "Job 4 has been submitted with SLURM jobid 23 (log: slurm/23.log).\n"
        + _slurm_error_block("train", 4, 23, "CANCELLED", log, "slurm/23.log") + "Trying to restart job 4.\n"
        + _slurm_rule_block(4, 24000, 30, log) + _sbatch_refused_block(4, 24000, log) + "Trying to restart job 4.\n"
        + _slurm_rule_block(4, 36000, 45, log) + _sbatch_refused_block(4, 36000, log)
        + "Exiting because a job execution failed. Look above for error messages\n")
    asked = []
    lines = end_of_run_lines(0, snakemake_logs=["sm.log"],
                             cluster=lambda: asked.append(1) or slurm_partitions(SINFO_ANSWER))
    assert lines == [
        f"FAILED {log}: sample 's', step 'train': sbatch refused to queue attempt 3 of the job (Memory specification "
        "can not be satisfied): it asks for mem_mb=36000 MB (mem_mb 12000, 24000, 36000 MB on its 3 attempts: a retry "
        "asks `attempt` times the first), more than the largest node of partition 'debug' has (23081 MB), so that "
        "attempt never ran. Fix: give train at most what a node has on every attempt, e.g. --set-resources "
        "'train:mem_mb=23081' (the same on each attempt) on the command line (or under set-resources: in the "
        "profile), or a partition with larger nodes (set-resources: train: slurm_partition: in the profile); the "
        "sbatch call is in the console output above"], lines
    assert asked == [1]                                   # the cluster asked once, where sbatch refused a job
    # Where sinfo does not answer, the same line without the node's memory.
    (tmp_path / log).write_text("")
    line, = end_of_run_lines(0, snakemake_logs=["sm.log"], cluster=dict)
    assert "so that attempt never ran" in line and "largest node" not in line.split(" Fix:")[0] \
        and "'train:mem_mb=<MB of the largest node: sinfo -N -o %m>'" in line, line
    # A job SLURM stopped asks nothing of the cluster.
    (tmp_path / "sm.log").write_text(_slurm_rule_block(4, 12000, 15, log)
                                     + _slurm_error_block("train", 4, 23, "CANCELLED", log, "slurm/23.log"))
    (tmp_path / log).write_text("")
    assert "SLURM ended job 23" in end_of_run_lines(0, snakemake_logs=["sm.log"], cluster=lambda: asked.append(2))[0]
    assert asked == [1]


def test_a_job_sbatch_refused_for_memory_is_told_the_partitions_own_limit(tmp_path, monkeypatch):
    """sbatch refused a job for its memory, on a partition whose MaxMemPerNode (or MaxMemPerCPU times the CPUs it
    gives a job) is below its largest node's memory: the end-of-run line said 'more than the largest node has
    (23081 MB)' and suggested --set-resources 'train:mem_mb=23081', a job SLURM keeps PENDING without end
    (MaxMemPerLimit).  It now names the limit the start-of-run check uses (resources.memory_limit) and
    suggests a size the partition gives."""
    from stcore.plan.failures import end_of_run_lines
    from stcore.plan.resources import memory_limit, slurm_partitions, unschedulable

    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs" / "train").mkdir(parents=True)
    log = "logs/train/s.graphst.seed0.log"
    cluster = slurm_partitions(SINFO_ANSWER, SCONTROL_ANSWER)
    for partition, most, words in (
            ("debug", 4000, "partition 'debug' gives a job of a node (4000 MB, its MaxMemPerNode; scontrol show "
                            "partition debug)"),
            ("long", 64000, "partition 'long' gives a job of a node (64000 MB: its MaxMemPerCPU 4000 MB times the 16 "
                            "CPUs it gives a job; scontrol show partition long)"),
            ("short", 8000, "the largest node of partition 'short' has (8000 MB)")):
        assert memory_limit(partition, cluster[partition]) == (most, words)
        (tmp_path / log).write_text("")
        (tmp_path / "sm.log").write_text(_slurm_rule_block(4, 200000, 15, log).replace(
            "mem_mb=200000", f"mem_mb=200000, slurm_partition={partition}") + _sbatch_refused_block(4, 200000, log))
        line, = end_of_run_lines(0, snakemake_logs=["sm.log"], cluster=lambda: cluster)
        assert f"it asks for mem_mb=200000 MB, more than {words}, so it never ran" in line, line
        assert f"--set-resources 'train:mem_mb={most}'" in line, line
    # the start-of-run check of memory over every node's suggests the same limit
    line, = unschedulable([("train", "s", {"cpus": 1, "mem_mb": 30000, "runtime": 10})], cluster)
    assert "has 2 CPUs and 23081 MB (sinfo -N -p debug -o '%N %c %m'), and a job gets at most what partition " \
           "'debug' gives a job of a node (4000 MB, its MaxMemPerNode; scontrol show partition debug)" in line \
           and "--set-resources 'train:mem_mb=4000'" in line, line


def test_a_failed_run_ends_with_a_failed_line_per_job_then_the_tables_warning(tmp_path, monkeypatch):
    """What the workflow's onerror prints, in order: FAILED and the line of each failed job, then the
    warning that the results table is an earlier run's."""
    import os

    from stcore.plan.failures import end_of_run_lines

    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs" / "qc").mkdir(parents=True)
    (tmp_path / "logs" / "qc" / "s1.log").write_text("2026-01-01 00:00:00 ERROR stcore: sample 's1': no counts. Fix: x\n")
    assert end_of_run_lines(0) == ["FAILED logs/qc/s1.log: sample 's1': no counts. Fix: x"]
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table.tsv").write_text("x")
    os.utime(tmp_path / "results" / "table.tsv", (1e9, 1e9))
    lines = end_of_run_lines(2e9)                       # the log is older than this run: not this run's failure
    assert len(lines) == 1 and lines[0].startswith("WARNING results/table.tsv are an earlier run's")
    lines = end_of_run_lines(1e9 + 1, log_dir="logs")
    assert lines[0].startswith("FAILED logs/qc/s1.log") and lines[1].startswith("WARNING results/table.tsv")


def test_one_cause_failing_at_several_seeds_and_slides_is_said_once_after_the_failed_lines(tmp_path, monkeypatch):
    """banksy not installed, or refused for its memory, at 3 seeds of 2 slides: the end of the run printed six
    FAILED lines with one cause, one per job, and nothing said they were one thing to fix.  The FAILED lines are
    as they were; after them, one line per cause that two failed jobs or more share: how many, the cause once
    (their line without the slide and file), and the jobs (step, method, seeds, slides); where its numbers differ
    between the jobs (the memory free when each ran), whose it shows.  A cause of one job alone has none."""
    from stcore import methods, peers, workflow
    from stcore.errors import InputError
    from stcore.plan.failures import end_of_run_lines

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "banksy", None)                # as if not installed: each train job's refusal
    with pytest.raises(InputError) as missing:
        methods.method("banksy").check_installed("banksy")
    refusals, free = [], iter([2048, 2048, 2048, 3072, 3072, 3072])
    monkeypatch.setattr(workflow, "available_memory_mb", lambda: next(free))
    for n_spots in (30_000, 30_000, 30_000, 40_000, 40_000, 40_000):
        with pytest.raises(InputError) as refused:
            peers._check_banksy_memory(n_spots, 3_000, 1)
        refusals.append(refused.value)
    (tmp_path / "logs" / "train").mkdir(parents=True)
    (tmp_path / "logs" / "qc").mkdir()
    jobs = [(s, seed) for s in ("a", "b") for seed in (0, 1, 2)]
    for (sample, seed), refusal in zip(jobs, refusals):
        (tmp_path / "logs" / "train" / f"{sample}.banksy.seed{seed}.log").write_text(
            f"2026-01-01 00:00:00 ERROR stcore: {missing.value.located(sample=sample)}\n")
        (tmp_path / "logs" / "train" / f"{sample}.big.seed{seed}.log").write_text(
            f"2026-01-01 00:00:00 ERROR stcore: {refusal.located(sample=sample)}\n")
    (tmp_path / "logs" / "qc" / "c.log").write_text("2026-01-01 00:00:00 ERROR stcore: sample 'c': no counts. Fix: x\n")
    lines = end_of_run_lines(0)
    assert lines[:13] == [f"FAILED {line}" for line in failure_lines(0)] and len(lines) == 15
    assert [line.startswith("FAILED ") for line in lines] == [True] * 13 + [False] * 2
    assert lines[13] == (f"6 of the failures above give one reason: {missing.value} "
                         "(train: banksy, seeds 0-2 of slides a, b)")
    assert lines[14] == (f"6 of the failures above give one reason: {refusals[0]} (train: big, seeds 0-2 of slides a, "
                         "b; its numbers differ between them: those of logs/train/a.big.seed0.log)")
    assert str(refusals[0]) != str(refusals[3])                      # the spots and the memory free: each job's own
    (tmp_path / "logs" / "train" / "b.banksy.seed2.log").write_text(
        "2026-01-01 00:00:00 ERROR stcore: sample 'b': loss diverged at epoch 7. Fix: y\n")
    for job in jobs[1:5]:
        (tmp_path / "logs" / "train" / "{}.banksy.seed{}.log".format(*job)).unlink()
        (tmp_path / "logs" / "train" / "{}.big.seed{}.log".format(*job)).unlink()
    lines = end_of_run_lines(0)                                      # banksy's causes: one job each, no line
    assert [line.startswith("FAILED ") for line in lines] == [True] * 5 + [False], lines
    assert lines[5] == (f"2 of the failures above give one reason: {refusals[0]} (train: big, seed 0 of slide a; big, "
                        "seed 2 of slide b; its numbers differ between them: those of logs/train/a.big.seed0.log)")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table.tsv").write_text("x")
    os.utime(tmp_path / "results" / "table.tsv", (1e9, 1e9))
    assert end_of_run_lines(1e9 + 1)[5:6] == lines[5:] and end_of_run_lines(1e9 + 1)[6].startswith(
        "WARNING results/table.tsv are an earlier run's")               # after the FAILED lines and the causes


def test_a_users_config_replaces_the_named_sets_and_merges_the_settings():
    from stcore.plan.settings import given_sets_replace

    demo = {"methods": {"graphst": {}, "expression": {}}, "ensembles": {}, "simulate": {"sim": {"seed": 1}},
            "train": {"epochs": 600, "lr": 0.001}, "samples": "samples.tsv"}
    merged = {"methods": {"graphst": {}, "expression": {}, "banksy": {}}, "ensembles": {}, "simulate": {"sim": {"seed": 1}},
              "train": {"epochs": 7, "lr": 0.001}, "samples": "mine.tsv"}     # snakemake's merge of the two
    given = {"methods": {"graphst": {}, "banksy": {}}, "train": {"epochs": 7}, "samples": "mine.tsv"}
    out = given_sets_replace(merged, given)
    assert out["methods"] == {"graphst": {}, "banksy": {}}                # the user's methods alone
    assert out["train"] == {"epochs": 7, "lr": 0.001} and out["samples"] == "mine.tsv"   # settings merged
    assert out["simulate"] == demo["simulate"]                            # a set the user did not give: kept
    assert given_sets_replace(merged, {}) == merged
    # --config methods=... beside a --configfile that lists methods: Snakemake merges the two key by key
    merged = {**merged, "methods": {"graphst": {}, "banksy": {}, "expression": {"model": "expression"}}}
    given = {**given, "methods": {"graphst": {}, "banksy": {}, "expression": {"model": "expression"}}}
    out = given_sets_replace(merged, given, {"methods": {"expression": {"model": "expression"}}})
    assert out["methods"] == {"expression": {"model": "expression"}}      # the command line's methods alone
    assert given_sets_replace(merged, given, {"train": {"epochs": 3}})["methods"] == given["methods"]


@pytest.mark.parametrize("path", sorted(str(p.relative_to(REPO_ROOT)) for p in
                                        [*(REPO_ROOT / "studies").glob("*.yaml"), *(REPO_ROOT / "config").glob("*.yaml")]))
def test_every_shipped_config_passes_the_checks_a_run_makes(path):
    """Each study config and the recommended config, merged onto config.yaml as `--configfile` merges
    it, uses no renamed key, passes the config schema and names a sample sheet that is in the
    repository (a config left behind by a rename fails here, not in a user's run)."""
    import jsonschema
    import yaml

    from stcore.plan.settings import renamed_keys
    from stcore.validate import config_schema

    from snakemake.utils import update_config

    from stcore.plan.settings import given_sets_replace

    config, given = yaml.safe_load((REPO_ROOT / "config.yaml").read_text()), yaml.safe_load((REPO_ROOT / path).read_text())
    update_config(config, given)
    config = given_sets_replace(config, given)
    assert renamed_keys(config) is None
    jsonschema.validate(config, config_schema())
    assert config["methods"] and (REPO_ROOT / config["samples"]).is_file()


def test_a_settings_stamp_changes_only_with_the_settings(tmp_path):
    """A job's settings stamp (an input of the job) is dated 1970 when first written, so it reruns
    nothing by itself; the same settings leave it untouched; other settings rewrite it with a fresh
    modification time, so the job reruns without Snakemake's records (a copied results/ folder)."""
    import os

    path = settings_stamp("train", "s.graphst", {"model": "graphst", "train": {"epochs": 2}}, root=str(tmp_path))
    assert path == "results/records/settings/train/s.graphst.json"
    stamp = tmp_path / path
    assert os.stat(stamp).st_mtime == 0
    settings_stamp("train", "s.graphst", {"train": {"epochs": 2}, "model": "graphst"}, root=str(tmp_path))
    assert os.stat(stamp).st_mtime == 0                                       # same settings, any key order
    settings_stamp("train", "s.graphst", {"model": "graphst", "train": {"epochs": 3}}, root=str(tmp_path))
    assert os.stat(stamp).st_mtime > 1e9 and '"epochs": 3' in stamp.read_text()
    plan = Plan({"qc": {"min_counts": 0}, "hvg": {"n_top_genes": 30}, "graph": {"n_neighbors": 3},
                 "train": {"epochs": 2}, "cluster": {"algorithm": "mclust"}, "seeds": [0],
                 "methods": {"graphst": {"model": "graphst", "train": {"epochs": 5}}}},
                {"s": {"sample": "s", "path": "s.h5ad", "format": "h5ad", "n_clusters": 2, "truth": "domain",
                       "values": "counts", "group": ""}}, {}, METHODS)
    assert plan.job_settings("train", "s", "graphst") == {"model": "graphst", "train": {"epochs": 5}}
    assert plan.job_settings("qc", "s") == {"qc": {"min_counts": 0}, "values": "counts",
                                            "format": "h5ad"}       # the truth column: the steps that read it;
    # the path: the input stamp (a folder moved elsewhere, the content the same, reruns nothing)
    assert plan.job_settings("cluster", "s", "graphst") == {"cluster": {"algorithm": "mclust"}, "n_clusters": 2}
    assert plan.job_settings("annotation", "s", "graphst") == {"truth": "domain", "annotation": {}}   # evaluate's, export's


def test_a_train_job_reruns_for_the_settings_its_model_reads_only(tmp_path):
    """The baseline's train stamp held the whole train block, so train.epochs (which only the graph
    model reads) reran the baseline's jobs and every step after them.  Each method's train settings,
    its stamp and its params, are the keys its model reads (the registry's train_keys): the baseline's
    pca_comps, the graph model's TrainParams, a peer's train.peer; a setting a model reads still
    reruns it."""
    import os

    methods = {"graphst": {"model": "graphst"}, "expression": {"model": "expression"},
               "st": {"model": "stagate"}, "sp": {"model": "spagcn", "train": {"peer": {"max_epochs": 10}}},
               "fewer": {"model": "graphst", "train": {"epochs": 5}}, "latent": {"train_from": "graphst"}}
    train = {"epochs": 600, "lr": 0.001, "weight_decay": 0.0, "n_latent": 64, "recon_weight": 10.0,
             "contrast_weight": 1.0, "tied_decoder": False, "device": "auto", "log_every": 50, "pca_comps": 50,
             "input_pcs": None, "peer": {"n_epochs": 20}}

    def stamps(**changed):
        plan = Plan({"qc": {}, "hvg": {}, "graph": {"n_neighbors": 3}, "train": dict(train, **changed),
                     "cluster": {"algorithm": "mclust"}, "seeds": [0], "methods": methods},
                    {"s": {"sample": "s", "path": "s.h5ad", "format": "h5ad", "n_clusters": 2, "truth": "",
                           "values": "counts", "group": ""}}, {}, METHODS)
        return {m: plan.job_settings("train", "s", m) for m in methods if m != "latent"}, plan

    before, plan = stamps()
    assert before["expression"] == {"model": "expression", "train": {"pca_comps": 50}}
    assert before["st"] == {"model": "stagate", "train": {"peer": {"n_epochs": 20}}}
    assert before["sp"] == {"model": "spagcn", "train": {"peer": {"max_epochs": 10}, "n_clusters": 2}}
    assert before["graphst"]["train"] == {k: v for k, v in train.items() if k not in ("pca_comps", "peer", "log_every")}
    assert before["fewer"]["train"]["epochs"] == 5
    assert plan.train_settings("expression", "s") == {"pca_comps": 50}              # what its train job is given
    # the record and the row's config_sha256 hold what the training read, its train_from's for a method without one
    assert plan.trained_with("latent") == {"model": "graphst", "settings": before["graphst"]["train"]}
    assert plan.run_settings("expression", "s")["train"] == {"pca_comps": 50}
    # the graph: an input of the graph model's train job alone (the baseline reads none; a peer builds its own)
    assert plan.train_graph("graphst", "s") == plan.train_graph("fewer", "s") == ["results/s/graph.npz"]
    assert plan.train_graph("expression", "s") == plan.train_graph("st", "s") == []

    def rerun(**changed):
        after, _ = stamps(**changed)
        return sorted(m for m in after if after[m] != before[m])
    assert rerun(epochs=50) == ["graphst"]                       # not the baseline, a peer, nor an own epochs
    assert rerun(log_every=1) == []                              # its log lines only: no training reruns
    assert rerun(lr=0.01) == rerun(device="cpu") == rerun(input_pcs=100) == ["fewer", "graphst"]
    assert rerun(pca_comps=30) == ["expression"]
    assert rerun(peer={"n_epochs": 40}) == ["st"]                # sp has its own peer block
    # through the stamps: written once, then a setting the baseline does not read leaves its stamp as it was
    root = str(tmp_path)
    for changed in ({}, {"epochs": 50}, {"pca_comps": 30}):
        for method, settings in stamps(**changed)[0].items():
            settings_stamp("train", f"s.{method}", settings, root=root)
        times = {m: os.stat(tmp_path / f"results/records/settings/train/s.{m}.json").st_mtime for m in before}
        if changed == {"epochs": 50}:
            assert times["expression"] == 0 and times["st"] == 0 and times["graphst"] > 1e9
        elif changed:
            assert times["expression"] > 1e9


def test_a_peers_settings_given_with_config_are_typed_as_its_packages_defaults():
    """snakemake reads --config methods='{st: {model: stagate, train: {peer: {n_epochs: 5}}}}' as text
    ('5'): the schema cannot type a peer's keys, so STAGATE was given '5' (its log lines failed,
    '%d format: a real number is required, not str'), and its train job's settings differed from the
    same value in a config file (a rerun for nothing).  They are typed as the package's defaults."""
    from stcore.plan.settings import peer_types
    from stcore.registry import PEER_SETTINGS

    given = {"train": {"epochs": 5, "peer": {"n_epochs": "7", "lr": "0.01"}},
             "methods": {"st": {"model": "stagate", "train": {"peer": {"n_epochs": "5", "hidden_dims": ["64", "8"],
                                                                       "rad_cutoff": "150", "weight_decay": "1e-4"}}},
                         "b": {"model": "banksy", "train": {"peer": {"log1p": "true", "lambda": "null",
                                                                     "kind": "spots", "own_clustering": "none"}}},
                         "g": {"model": "graphst"}, "odd": {"model": "stagate", "train": {"peer": {"n_epoch": "5"}}}}}
    typed = peer_types(given, PEER_SETTINGS)
    assert typed["methods"]["st"]["train"]["peer"] == {"n_epochs": 5, "hidden_dims": [64, 8], "rad_cutoff": 150,
                                                       "weight_decay": 1e-4}
    assert typed["methods"]["b"]["train"]["peer"] == {"log1p": True, "lambda": None, "kind": "spots",
                                                      "own_clustering": "none"}
    assert typed["train"] == {"epochs": 5, "peer": {"n_epochs": 7, "lr": 0.01}}
    assert typed["methods"]["g"] == {"model": "graphst"} and typed["methods"]["odd"]["train"]["peer"] == {"n_epoch": "5"}
    assert given["methods"]["st"]["train"]["peer"]["n_epochs"] == "5"          # the config given is left as it was
    assert peer_types({"methods": {"st": {"model": "stagate", "train": {"peer": {"n_epochs": 5}}}}},
                      PEER_SETTINGS)["methods"]["st"]["train"]["peer"] == {"n_epochs": 5}


def test_a_cluster_job_reruns_for_the_settings_its_algorithm_reads_only():
    """The cluster job's settings (its stamp and params) held the whole cluster block: n_init, read by
    k-means and gmm_tied only, reran every mclust clustering; auto_repeats every slide of a given
    number.  They are what its algorithm reads at the slide's n_clusters; a setting it reads still
    reruns it, and clustering with the settings left out (at ClusterParams' defaults) gives the same
    labels as with them."""
    from dataclasses import fields

    import numpy as np

    from stcore.cluster import ClusterParams, run_cluster
    from stcore.plan.runs import CLUSTER_ALGORITHM, CLUSTER_AUTO, CLUSTER_FEATURES, cluster_settings_read
    from stcore.validate import config_schema

    named = {"algorithm", "refine", "refine_neighbors", *CLUSTER_FEATURES, *CLUSTER_AUTO,
             *(k for keys in CLUSTER_ALGORITHM.values() for k in keys)}
    assert named == {f.name for f in fields(ClusterParams)} - {"seed"}
    assert set(CLUSTER_ALGORITHM) == set(config_schema()["$defs"]["cluster"]["properties"]["algorithm"]["enum"])
    block = {"algorithm": "mclust", "input": "embedding", "n_pcs": 3, "n_init": 10, "n_neighbors": 15,
             "refine": False, "refine_neighbors": 50, "subset": 2000, "auto": "stability", "auto_range": [2, 4],
             "auto_measure": "ari", "auto_repeats": 5, "correct": "none"}

    def rerun(n_clusters=2, **changed):
        base = dict(block, **{k: v for k, v in changed.items() if k == "algorithm"})
        return cluster_settings_read(base, n_clusters) != cluster_settings_read(dict(base, **changed), n_clusters)
    assert not rerun(n_init=3) and not rerun(n_neighbors=5) and not rerun(refine_neighbors=10)
    assert not rerun(auto_repeats=3) and rerun("auto", auto_repeats=3) and rerun("auto", auto_range=[2, 5])
    assert rerun(subset=500) and rerun(n_pcs=5) and rerun(input="reconstruction") and rerun(refine=True)
    assert rerun(algorithm="kmeans", n_init=3) and not rerun(algorithm="kmeans", subset=500)
    assert rerun(algorithm="leiden", n_neighbors=5) and not rerun(algorithm="own", n_pcs=5)
    assert cluster_settings_read(dict(block, refine=True), 2)["refine_neighbors"] == 50

    # the settings left out are not read: the labels are those of the whole block, unread keys changed
    rng = np.random.default_rng(0)
    features = np.vstack([rng.normal(c, 0.3, (30, 3)) for c in (0, 3)])
    coords = rng.random((60, 2))
    odd = {"n_init": 3, "n_neighbors": 7, "refine_neighbors": 9, "subset": 40, "auto_repeats": 2,
           "auto_measure": "fmi", "auto": "bic", "auto_range": [3, 3], "input": "reconstruction", "n_pcs": 2}
    for algorithm in ("mclust", "kmeans", "gmm_tied"):
        whole = dict(block, algorithm=algorithm)
        read = cluster_settings_read(whole, 2)
        unread = {k: v for k, v in odd.items() if k not in read}
        a = run_cluster(features, coords, 2, ClusterParams(**read, seed=0))
        b = run_cluster(features, coords, 2, ClusterParams(**dict(whole, **unread), seed=0))
        assert np.array_equal(a, b), algorithm


def test_a_runs_row_and_record_change_with_the_settings_it_reads_only():
    """A run's config_sha256 (the evaluate, consensus and export jobs' params) held the whole cluster
    block and the graph settings: n_init under mclust, which reruns no clustering, reran evaluate and
    export and gave the same labels another config_sha256; a graph setting did so for the baseline,
    which reads no graph.  They hold what the run reads; what it reads still changes them."""
    def settings(n_clusters=2, graph=None, **cluster):
        plan = Plan({"qc": {"min_counts": 0}, "hvg": {"n_top_genes": 30}, "graph": dict({"n_neighbors": 3}, **(graph or {})),
                     "train": {"epochs": 2, "pca_comps": 5}, "seeds": [0],
                     "cluster": dict({"algorithm": "mclust", "n_pcs": 20, "n_init": 10, "auto_repeats": 5}, **cluster),
                     "methods": {"graphst": {"model": "graphst"}, "expression": {"model": "expression"},
                                 "latent": {"train_from": "graphst"}, "st": {"model": "stagate"}}},
                    {"s": {"sample": "s", "path": "s.h5ad", "format": "h5ad", "n_clusters": n_clusters,
                           "truth": "domain", "values": "counts", "group": ""}}, {}, METHODS)
        return {m: plan.run_settings(m, "s") for m in plan.methods}, plan

    base, plan = settings()
    assert "graph" not in base["expression"] and "graph" not in base["st"] and base["latent"]["graph"] == {"n_neighbors": 3}
    assert base["graphst"]["cluster"] == plan.cluster_settings("graphst", "s")
    assert settings(n_init=3)[0] == base and settings(auto_repeats=2)[0] == base        # read by none of them
    graph = settings(graph={"n_neighbors": 5})[0]
    assert sorted(m for m in base if graph[m] != base[m]) == ["graphst", "latent"]
    assert all(settings(n_pcs=10)[0][m] != base[m] for m in base)
    assert all(settings("auto", auto_repeats=2)[0][m] != settings("auto")[0][m] for m in base)


def test_the_agreement_steps_stamp_holds_what_it_compares():
    """The agreement step (R mclust against the R-free clusterings of compare.agreement_method) had no
    settings stamp: in a results/ folder without Snakemake's records, the method's cluster settings,
    a slide's n_clusters or compare.r_mclust changed left agreement.tsv the earlier settings' (its
    inputs, the training and hvg files, were unchanged)."""
    def settings(cluster=None, n_clusters=2, **compare):
        plan = Plan({"qc": {}, "hvg": {}, "graph": {}, "train": {"epochs": 2},
                     "cluster": dict({"algorithm": "mclust", "n_pcs": 20}, **(cluster or {})), "seeds": [0],
                     "methods": {"graphst": {"model": "graphst"}, "other": {"model": "graphst",
                                                                          "cluster": {"n_pcs": 5}}},
                     "compare": dict({"agreement_method": "graphst"}, **compare)},
                    {"s": {"sample": "s", "path": "s.h5ad", "format": "h5ad", "n_clusters": n_clusters,
                           "truth": "domain", "values": "counts", "group": ""}}, {}, METHODS)
        return plan.job_settings("agreement", "all")

    base = settings()
    assert base["method"] == "graphst" and base["cluster"]["n_pcs"] == 20 and base["runs"][0]["n_clusters"] == 2
    assert settings(cluster={"n_pcs": 10}) != base and settings(n_clusters=3) != base
    assert settings(r_mclust=False) != base and settings(agreement_method="other") != base
    assert settings(cluster={"n_pcs": 20}) == base


def test_the_registry_names_the_train_settings_each_model_reads():
    """train_keys (stcore/registry.py) are the train settings each fit reads: the graph model's
    TrainParams less what the run gives (seed, threads); the baseline's pca_comps; every key of the
    config schema's train block read by some model."""
    from dataclasses import fields

    import numpy as np

    from stcore.methods import REGISTRY
    import scipy.sparse as sp

    from stcore.registry import GRAPH_MODEL_LOG_KEYS, GRAPH_MODEL_TRAIN_KEYS
    from stcore.train import TrainParams
    from stcore.validate import config_schema

    assert set(GRAPH_MODEL_TRAIN_KEYS) | set(GRAPH_MODEL_LOG_KEYS) == {f.name for f in fields(TrainParams)} - {"seed", "threads"}
    assert not set(GRAPH_MODEL_TRAIN_KEYS) & set(GRAPH_MODEL_LOG_KEYS)
    assert METHODS["graphst"].log_keys == GRAPH_MODEL_LOG_KEYS and all(not f.log_keys for m, f in METHODS.items() if m != "graphst")
    assert METHODS["graphst"].train_keys == GRAPH_MODEL_TRAIN_KEYS and METHODS["expression"].train_keys == ("pca_comps",)
    assert all(f.train_keys == ("peer",) for f in METHODS.values() if not f.builtin)
    assert [m for m, f in METHODS.items() if f.reads_graph] == ["graphst"]       # the others are given none
    read = set().union(*(f.train_keys + f.log_keys for f in METHODS.values()))
    assert read == set(config_schema()["$defs"]["train"]["properties"])
    # a log key changes what the fit logs, not its result: the same bits with log lines every epoch or none
    rng = np.random.default_rng(0)
    x = rng.poisson(2.0, (40, 12)).astype(np.float32)
    adj = sp.csr_matrix(sp.diags([np.ones(39), np.ones(39)], [-1, 1]))
    fits = [REGISTRY["graphst"].fit(x, adj, None, {"epochs": 5, "n_latent": 4, "device": "cpu", "threads": 1, key: value}, 0)
            for key in GRAPH_MODEL_LOG_KEYS for value in (1, 0)]
    assert all(np.array_equal(fits[0].embedding, f.embedding) and np.array_equal(fits[0].decoded, f.decoded)
               and fits[0].losses.equals(f.losses) for f in fits[1:])

    class Watched(dict):
        seen = set()

        def get(self, key, default=None):
            self.seen.add(key)
            return super().get(key, default)

        def __getitem__(self, key):
            self.seen.add(key)
            return super().__getitem__(key)

        def items(self):
            self.seen.update(self)
            return super().items()

    params = Watched(epochs=3, lr=0.1, pca_comps=3)
    REGISTRY["expression"].fit(np.random.default_rng(0).random((20, 6)), None, None, params, 0)
    assert Watched.seen == {"pca_comps"}


def test_a_table_that_lists_a_run_whose_files_are_gone_is_made_again(tmp_path):
    """rm -r results/s1/graphst/seed0 (to make the run again), then snakemake results/table.tsv (or
    compare): "Nothing to be done" (Snakemake keeps an output newer than the inputs that remain), and
    the table kept the deleted run's row.  The table's stamp names the file gone, with the time, so its
    content differs from the one the table was made from (Snakemake's checksum of an input) and the
    table, with the run, is made again; the stamp's settings digest stays, and nothing else changes."""
    import json
    import os

    from stcore.plan.stamps import RunStamps

    plan = _plan(_config(), s1="g", s2="g")
    there = {"results/table.tsv", *plan.table_files("labels"), *plan.table_files("metrics")}
    assert plan.stale_output("table", there.__contains__) is None
    gone = there - {"results/s1/graphst/seed0/labels.tsv"}
    assert plan.stale_output("table", gone.__contains__) == "results/s1/graphst/seed0/labels.tsv"
    assert plan.stale_output("table", (gone - {"results/table.tsv"}).__contains__) is None   # no table yet
    assert plan.stale_output("train", gone.__contains__) is None

    path = settings_stamp("table", "all", {"runs": 1}, root=str(tmp_path))
    stamp = tmp_path / path
    digest = json.loads(stamp.read_text())["settings_sha256"]
    settings_stamp("table", "all", {"runs": 1}, root=str(tmp_path), stale="results/s1/graphst/seed0/labels.tsv")
    first = stamp.read_text()
    assert os.stat(stamp).st_mtime > 1e9 and json.loads(first)["settings_sha256"] == digest
    assert json.loads(first)["made_again"]["missing"] == "results/s1/graphst/seed0/labels.tsv"
    settings_stamp("table", "all", {"runs": 1}, root=str(tmp_path), stale="results/s1/graphst/seed0/labels.tsv")
    assert stamp.read_text() != first                          # deleted again later: made again again
    kept = stamp.read_text(), os.stat(stamp).st_mtime_ns
    settings_stamp("table", "all", {"runs": 1}, root=str(tmp_path))
    assert (stamp.read_text(), os.stat(stamp).st_mtime_ns) == kept    # the run's files back: kept as it is
    report = RunStamps(lambda: False, report_only=True, root=str(tmp_path), refuse=lambda line: 1 / 0)
    assert report.settings("table", "all", {"runs": 1}, stale="results/s1/x") == path   # the report makes nothing


def test_a_run_that_executes_no_job_writes_no_settings_stamp(tmp_path):
    """A dry run (snakemake -n, --dag, --report) passes a scratch folder: a stamp that would be
    written or rewritten goes there, with the modification time a run would give it, so the dry run
    shows the jobs to rerun, and results/ is left as it is (was: every stamp written by -n)."""
    import os

    root, scratch = tmp_path / "project", tmp_path / "scratch"
    new = settings_stamp("train", "s.graphst", {"model": "graphst"}, root=str(root), scratch=str(scratch))
    assert not (root / "results").exists()
    assert new == str(scratch / "results/records/settings/train/s.graphst.json") and os.stat(new).st_mtime == 0
    path = settings_stamp("train", "s.graphst", {"model": "graphst"}, root=str(root))      # a real run
    before = (root / path).read_bytes(), os.stat(root / path).st_mtime_ns
    assert settings_stamp("train", "s.graphst", {"model": "graphst"}, root=str(root), scratch=str(scratch)) == path
    changed = settings_stamp("train", "s.graphst", {"model": "graphst", "train": {"epochs": 3}}, root=str(root),
                             scratch=str(scratch))
    assert changed.startswith(str(scratch)) and os.stat(changed).st_mtime > 1e9 and '"epochs": 3' in open(changed).read()
    assert ((root / path).read_bytes(), os.stat(root / path).st_mtime_ns) == before


def test_a_runs_stamps_go_to_scratch_where_it_executes_no_job_and_a_report_refuses_a_changed_one(tmp_path):
    """RunStamps (what rules/common.smk asks for): where jobs run, the stamps are kept under the
    run's folder; in a run that executes none, under a temporary folder, results/ untouched; a run
    that only draws the report is refused where a stamp the config would change is not what it holds
    (one written for the first time is no change); an input stamp is kept once per slide."""
    import os

    from stcore.plan.stamps import RunStamps

    root = str(tmp_path)
    real = RunStamps(lambda: True, root=root)
    assert real.scratch() is None
    path = real.settings("cluster", "s.graphst", {"n_clusters": 2})
    assert path == "results/records/settings/cluster/s.graphst.json" and (tmp_path / path).is_file()

    said = []
    dry = RunStamps(lambda: False, root=root, refuse=said.append)
    scratch = dry.scratch()
    assert scratch == dry.scratch() and os.path.isdir(scratch) and not scratch.startswith(root)
    assert dry.settings("cluster", "s.graphst", {"n_clusters": 2}) == path       # unchanged: the kept stamp
    changed = dry.settings("cluster", "s.graphst", {"n_clusters": 3})
    assert changed.startswith(scratch) and '"n_clusters": 3' not in (tmp_path / path).read_text()
    assert said == []                                                            # not a report: nothing said

    class Refused(Exception):
        pass

    def refuse(line):
        said.append(line)
        raise Refused

    report = RunStamps(lambda: False, report_only=True, root=root, refuse=refuse,
                       config="--configfile other.yaml --config seeds=[0,1]")
    report.settings("train", "s.graphst", {"epochs": 2})                         # a first stamp: no change
    assert said == [] and not (tmp_path / "results/records/settings/train").exists()
    assert report.settings("cluster", "s.graphst", {"n_clusters": 2}) == path     # unchanged: drawn
    # a report drawn with another run's config: it showed those results under this config's settings
    # (the rules' params) with a warning, exit 0; now refused, naming the config, the folder and the fix
    with pytest.raises(Refused):
        report.settings("cluster", "s.graphst", {"n_clusters": 3})
    assert len(said) == 1 and said[0].startswith(
        f"snakemake --report refused: the results in {os.path.join(root, 'results')} were not made with this "
        "config (--configfile other.yaml --config seeds=[0,1])"), said[0]
    assert "results/records/settings/cluster/s.graphst.json does not hold" in said[0]
    assert "No report was written. Fix: give --report the --configfile / --config of the run that made these " \
        "results" in said[0] and "or run this config first (snakemake --cores all" in said[0]

    calls = []

    def keep(stamp, scratch):
        calls.append((stamp, scratch))
        return stamp
    assert real.input("s", keep) == "results/records/input/s.json" == real.input("s", keep) and len(calls) == 1
    assert calls == [("results/records/input/s.json", None)]
    assert real.input("made", None) is None and dry.input("s", keep) == "results/records/input/s.json"
    assert calls[-1] == ("results/records/input/s.json", scratch)


def test_a_report_alone_is_known_from_the_command_line(capsys):
    """--report without --report-after-run draws the files as they are (checked before any run); the
    config it reads is named as the user gave it; a refusal is its one line and exit status 1."""
    from stcore.plan.stamps import config_named, refuse_report, report_only

    with pytest.raises(SystemExit) as stopped:
        refuse_report("snakemake --report refused: x")
    assert stopped.value.code == 1 and capsys.readouterr().err == "snakemake --report refused: x\n"

    assert config_named([], None) == "config.yaml (the Snakefile's)"
    assert config_named(["a.yaml", "b.yaml"], ["seeds=[0]", "train={'epochs': 5}"]) == \
        "--configfile a.yaml --configfile b.yaml --config seeds=[0] train={'epochs': 5}"

    assert report_only(["snakemake", "--report", "r.html"]) and report_only(["snakemake", "--report=r.zip"])
    assert report_only(["snakemake", "--cores", "1", "--report"])
    assert not report_only(["snakemake", "--cores", "1", "--report", "r.html", "--report-after-run"])
    assert not report_only(["snakemake", "--cores", "1", "--report-stylesheet", "a.css"])
    assert not report_only(["snakemake", "-n"])


def test_a_report_of_a_run_whose_folder_was_deleted_names_the_run(tmp_path, monkeypatch):
    """--report after a run whose folder was deleted (rm -r results/a/graphst/seed0): refused before
    the DAG is built, naming the run and the fix, not Snakemake's 'marked for report but does not exist'."""
    from stcore.plan.stamps import report_before_run

    monkeypatch.chdir(tmp_path)
    runs = ["results/a/graphst/seed0/domains.png", "results/a/graphst/seed1/domains.png"]
    assert report_before_run(runs=runs) is not None              # no table yet: no run finished
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table.tsv").write_text("x\n")
    for run in runs:
        (tmp_path / run).parent.mkdir(parents=True)
        (tmp_path / run).write_text("")
    assert report_before_run(runs=runs) is None
    (tmp_path / runs[0]).unlink()
    line = report_before_run(runs=runs)
    assert "results/a/graphst/seed0/domains.png does not exist" in line
    assert "run results/a/graphst/seed0 " in line and "Fix: run the workflow first" in line
    assert "\n" not in line


def test_a_report_whose_consensus_folder_was_deleted_names_it(tmp_path, monkeypatch):
    """--report after rm -r results/a/graphst/consensus (or a combination's folder): Snakemake's 'File
    results/a/graphst/consensus/domains.png marked for report but does not exist', where a run's folder
    deleted was named with the fix: every map the report draws is checked."""
    from stcore.plan.stamps import report_before_run

    config = _config(graphst={"model": "graphst"}, expr={"model": "expression"})
    config["ensembles"] = {"rec": {"methods": ["graphst", "expr"]}}
    plan = _plan(config)
    maps = plan.result_files("domains.png")
    assert {"results/s1/graphst/consensus/domains.png", "results/s1/rec/seed1/domains.png",
            "results/s1/rec/consensus/domains.png", "results/s1/expr/seed0/domains.png"} <= set(maps)
    assert 'report_before_run(runs=PLAN.result_files("domains.png"))' in (REPO_ROOT / "rules" / "common.smk").read_text()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table.tsv").write_text("x\n")
    for path in maps:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    assert report_before_run(runs=maps) is None
    (tmp_path / "results/s1/graphst/consensus/domains.png").unlink()
    assert "the files of run results/s1/graphst/consensus are missing" in report_before_run(runs=maps)


def test_a_settings_stamp_is_named_by_the_jobs_wildcards():
    """The stamp's slide, method and name from the job's wildcards, as rules/common.smk asks for them:
    a run's by its slide and method (or combination), a slide's own steps by the slide, a simulated
    slide by its name, the table (no wildcards) 'all'."""
    from types import SimpleNamespace as Wildcards

    from stcore.plan.stamps import stamp_job

    assert stamp_job(Wildcards(sample="s.1", method="graphst", seed="0")) == ("s.1", "graphst", "s.1.graphst")
    assert stamp_job(Wildcards(sample="s", ensemble="recommended")) == ("s", "recommended", "s.recommended")
    assert stamp_job(Wildcards(sample="g")) == ("g", None, "g")
    assert stamp_job(Wildcards(name="sim_layers")) == ("sim_layers", None, "sim_layers")
    assert stamp_job(Wildcards()) == ("all", None, "all")
    common = (REPO_ROOT / "rules" / "common.smk").read_text()
    assert "_stamps.stamp_job(wildcards)" in common


def test_a_groups_stamp_holds_its_slides(tmp_path):
    """A slide taken out of a group (or another one put in its place): the group's job had no
    settings stamp, so a results/ folder copied without Snakemake's records kept the group joined
    of its former slides, and trained and scored them as this sheet's group."""
    import os

    row = {"format": "h5ad", "n_clusters": 2, "truth": "domain", "values": "counts", "group": "g"}
    slides = {s: dict(row, sample=s, path=f"{s}.h5ad") for s in "abc"}
    plan = Plan({"qc": {}, "seeds": [0], "methods": {"graphst": {"model": "graphst"}}}, slides,
                {"g": ["a", "b", "c"]}, METHODS)
    settings = plan.job_settings("group", "g")
    assert settings == {"slides": ["a", "b", "c"]}       # not their truth columns: the steps that read them
    assert plan.annotation("g") == {"a": "domain", "b": "domain", "c": "domain"} and plan.annotation("a") == {}
    assert plan.annotation_inputs("g") == ["results/a/qc.h5ad", "results/b/qc.h5ad", "results/c/qc.h5ad"]
    stamp = tmp_path / settings_stamp("group", "g", settings, root=str(tmp_path))
    plan.groups["g"] = ["a", "b"]
    settings_stamp("group", "g", plan.job_settings("group", "g"), root=str(tmp_path))
    assert os.stat(stamp).st_mtime > 1e9 and '"c"' not in stamp.read_text()
    rule = open(os.path.join(os.path.dirname(__file__), "..", "rules", "group.smk")).read()
    assert 'settings=settings_stamp("group")' in rule


def test_a_cluster_stamp_holds_the_training_it_clusters(tmp_path):
    """A method's train_from changed (graphst made g2) in a results/ folder without Snakemake's
    records: the cluster job's stamp held its cluster settings alone, so only the table reran, its
    row naming g2 as the training beside labels and scores clustered from graphst's output.  The
    stamp of a method that clusters another's training holds that method; a method's own does not
    change (its runs do not recluster)."""
    import os

    def plan(source):
        config = {"qc": {}, "seeds": [0], "cluster": {"algorithm": "mclust"},
                  "methods": {"graphst": {"model": "graphst"}, "g2": {"model": "graphst", "train": {"epochs": 3}},
                              "emb": {"train_from": source, "cluster": {"input": "embedding"}}}}
        row = {"sample": "s", "path": "s.h5ad", "format": "h5ad", "n_clusters": 2, "truth": "domain",
               "values": "counts", "group": ""}
        return Plan(config, {"s": row}, {}, METHODS)

    before, after = plan("graphst"), plan("g2")
    assert before.job_settings("cluster", "s", "graphst") == {"cluster": {"algorithm": "mclust"}, "n_clusters": 2}
    stamp = tmp_path / settings_stamp("cluster", "s.emb", before.job_settings("cluster", "s", "emb"), root=str(tmp_path))
    settings_stamp("cluster", "s.emb", after.job_settings("cluster", "s", "emb"), root=str(tmp_path))
    assert os.stat(stamp).st_mtime > 1e9 and '"trained_by": "g2"' in stamp.read_text()


def test_a_simulated_slides_stamp_holds_its_settings(tmp_path):
    """The demo's simulated slide, its settings changed (n_spots 200 made 300) in a results/ folder
    without Snakemake's records: the simulate job had no stamp, so "Nothing to be done" and the
    200-spot slide ran as the 300-spot one (the table's spots: 196)."""
    import os

    config = {"qc": {}, "seeds": [0], "methods": {"graphst": {"model": "graphst"}},
              "simulate": {"tiny": {"n_spots": 200, "seed": 1}}}
    row = {"sample": "tiny", "path": "results/simulated/tiny.h5ad", "format": "h5ad", "n_clusters": 2,
           "truth": "domain", "values": "counts", "group": ""}
    plan = Plan(config, {"tiny": row}, {}, METHODS)
    assert plan.job_settings("simulate", "tiny") == {"n_spots": 200, "seed": 1}
    stamp = tmp_path / settings_stamp("simulate", "tiny", plan.job_settings("simulate", "tiny"), root=str(tmp_path))
    plan.config["simulate"]["tiny"]["n_spots"] = 300
    settings_stamp("simulate", "tiny", plan.job_settings("simulate", "tiny"), root=str(tmp_path))
    assert os.stat(stamp).st_mtime > 1e9 and '"n_spots": 300' in stamp.read_text()
    rule = open(os.path.join(os.path.dirname(__file__), "..", "rules", "simulate.smk")).read()
    assert 'settings=settings_stamp("simulate")' in rule


@pytest.mark.parametrize("column, meant", [("annotation", "truth"), ("ground_truth", "truth"), ("Labels", "truth"),
                                           ("groups", "group"), ("value", "values"), ("truths", "truth")])
def test_a_column_named_near_one_stcore_reads_is_named(tmp_path, column, meant):
    """A column named as other tools name the annotation ('annotation', 'ground_truth') or a letter
    off a column's name ('groups', 'value'): it was kept as a note without a word, and its slides ran
    without their annotation (no score) or group.  Other columns stay notes, and a synonym beside
    the column itself is a note too."""
    text = f"sample\tpath\tformat\tn_clusters\t{column}\ns1\ta.h5ad\th5ad\t7\tx\ns2\tb.h5ad\th5ad\t7\tx\n"
    from stcore.plan.sheet import READ_COLUMNS

    with pytest.raises(PlanError, match=rf"^sample sheet '.*': column '{column}' is not a column stcore reads "
                                        rf"\(it reads {', '.join(READ_COLUMNS)}\), so it would "
                                        rf"be kept as a note without a word; it looks meant as '{meant}'\. Fix: rename "
                                        rf"the column '{meant}' in the header"):
        read_sheet(_sheet(tmp_path, text.encode()))
    for notes in (("donor", "note"), (meant, column)):
        rows = read_sheet(_sheet(tmp_path, ("sample\tpath\tformat\tn_clusters\t" + "\t".join(notes)
                                            + "\ns1\ta.h5ad\th5ad\t7\tx\ty\n").encode()))
        assert rows[0]["path"] == "a.h5ad"


def test_the_columns_the_sheet_reads_are_the_schemas():
    import yaml

    from stcore.plan.sheet import READ_COLUMNS

    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "schemas" / "samples.schema.yaml").read_text())
    assert set(READ_COLUMNS) == set(schema["properties"])


def test_the_config_is_checked_as_a_run_checks_it(tmp_path):
    """checked_config: what the Snakefile does with a config before the plan, each refusal one line."""
    import copy

    import jsonschema
    import yaml

    from stcore.plan.settings import checked_config

    schema_path = REPO_ROOT / "stcore" / "schemas" / "config.schema.yaml"
    demo = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
    models = tuple(METHODS)

    def validate(config):           # as Snakemake's validate: jsonschema's error raised while handling it
        try:
            jsonschema.validate(config, yaml.safe_load(schema_path.read_text()))
        except jsonschema.ValidationError as exc:
            raise RuntimeError(f"Error validating config file.\n{exc}")
        for spec in config["methods"].values():          # a default filled in, as Snakemake's does
            spec.setdefault("filled", True)

    def checked(given, files=()):
        merged = copy.deepcopy(demo)
        for key, value in given.items():
            merged[key] = value if not isinstance(value, dict) else {**merged.get(key, {}), **value}
        return checked_config(merged, given, list(files), str(schema_path), validate, models)

    config, compare = checked({"methods": {"g": {"model": "graphst"}}, "train": {"epochs": "20"},
                               "compare": {"baseline": "g"}})
    assert config["methods"] == {"g": {"model": "graphst"}}       # the user's set alone, without defaults
    assert config["train"]["epochs"] == 20 and config["train"]["lr"] == demo["train"]["lr"]
    assert compare == {"baseline": "g"}
    bad = [({"train": {"epochs": "many"}},
            r"^config is invalid: train\.epochs: 'many' is not of type 'integer'\. Fix: see "
            r"stcore/schemas/config\.schema\.yaml for the keys and their types$"),
           ({"hvg": {"flavor": False}}, r"^config is invalid: hvg\.flavor: False is a boolean, where text is needed: "),
           ({"methods": ["graphst", "expression"]},
            r"^config is invalid: methods: \['graphst', 'expression'\] is a list of names, but each method is a named "
            r"entry with its model\. Fix: write methods: \{graphst: \{model: graphst\}, expression: \{model: expression\}\}$"),
           ({"cluster": {"method": "leiden"}},
            r"^config is invalid: cluster\.method is now cluster\.algorithm\. Fix: write cluster: \{algorithm: leiden\}$"),
           # a key near one the schema has: the key meant (was: see the schema for the keys)
           ({"seed": [1]}, r"^config is invalid: top level: Additional properties are not allowed \('seed' was "
                           r"unexpected\)\. Fix: write seeds for seed$"),
           ({"qc": {"min_count": 3}}, r"^config is invalid: qc: .*\('min_count' was unexpected\)\. "
                                      r"Fix: write min_counts for min_count$"),
           ({"methods": {"g": {"model": "graphst", "train": {"epoch": 3}}}},
            r"^config is invalid: methods\.g\.train: .*\. Fix: write epochs for epoch$"),
           ({"train": {"snapshots": 3}}, r"\('snapshots' was unexpected\)\. Fix: see stcore/schemas/config\.schema"
                                         r"\.yaml for the keys and their types$")]
    for given, message in bad:
        with pytest.raises(PlanError, match=message):
            checked(given)
    twice = tmp_path / "mine.yaml"
    twice.write_text("train: {epochs: 5}\ntrain: {lr: 0.01}\n")
    with pytest.raises(PlanError, match=r"^config file '.*mine\.yaml': train is given twice \(lines 1 and 2\)"):
        checked({"train": {"lr": 0.01}}, [str(twice)])


def test_the_sample_sheet_is_checked_as_a_run_checks_it(tmp_path):
    """checked_sheet: the sheet's rows through the schema's validation, a bad cell named by row,
    sample and column with what the column takes."""
    import jsonschema
    import yaml

    from stcore.plan.sheet import checked_sheet

    schema_path = REPO_ROOT / "schemas" / "samples.schema.yaml"
    schema = yaml.safe_load(schema_path.read_text())

    def validate(rows):             # as Snakemake's validate of a data frame
        for i, row in enumerate(rows):
            try:
                jsonschema.validate(row, schema)
            except jsonschema.ValidationError as exc:
                raise RuntimeError(f"Error validating row {i} of data frame.\n{exc}")
        return [{"values": "counts", "truth": "", "group": "", **row} for row in rows]

    header = "sample\tpath\tformat\tn_clusters\n"
    good = _sheet(tmp_path, (header + "s1\ta.h5ad\th5ad\t7\n").encode())
    assert checked_sheet(good, (), str(schema_path), validate) == [
        {"sample": "s1", "path": "a.h5ad", "format": "h5ad", "n_clusters": 7, "values": "counts", "truth": "",
         "group": ""}]
    bad = _sheet(tmp_path, (header + "s1\ta.h5ad\th5ad\t7\ns2\tb.h5ad\tloom\t7\n").encode())
    with pytest.raises(PlanError, match=r"^sample sheet '.*samples\.tsv', row 2 \(sample 's2'\), column format: 'loom' "
                                        r"is not one of .*Fix: format: input format: h5ad; visium"):
        checked_sheet(bad, (), str(schema_path), validate)

    def refuses(rows):
        raise RuntimeError("the schema could not be read")
    with pytest.raises(PlanError, match=r"^sample sheet '.*samples\.tsv' is invalid: the schema could not be read\. "
                                        r"Fix: see schemas/samples\.schema\.yaml$"):
        checked_sheet(good, (), str(schema_path), refuses)


def test_a_peer_setting_its_package_does_not_take_is_named_now():
    """A peer's unknown train.peer key was refused by its train job, after qc, hvg and graph ran;
    the plan refuses it with the key meant and the keys the package takes (stcore/registry.py)."""
    from stcore.registry import PEER_SETTINGS

    accepted = re.escape(str(sorted(PEER_SETTINGS["stagate"])))
    with pytest.raises(PlanError, match=r"^config: method 'st' \(model stagate\): unknown methods\.st\.train\.peer "
                                        r"setting\(s\) \['n_epoch'\]; .*Fix: write n_epochs for n_epoch, or use only "
                                        + accepted):
        _plan(_config(st={"model": "stagate", "train": {"peer": {"n_epoch": 500}}}))
    config = _config(st={"model": "stagate"}, sp={"model": "spagcn"})
    config["train"]["peer"] = {"n_epochs": 500}         # the config's block: read by every peer without its own
    with pytest.raises(PlanError, match=r"^config: method 'sp' \(model spagcn\): unknown train\.peer setting\(s\) "
                                        r"\['n_epochs'\];.*Fix: write max_epochs for n_epochs, or use only \["):
        _plan(config)
    config["methods"]["sp"]["train"] = {"peer": {"max_epochs": 100}}
    _plan(config)                                      # each reads what it takes
    _plan(_config(st={"model": "stagate", "train": {"peer": dict(PEER_SETTINGS["stagate"])}}))


def test_a_method_whose_extra_is_not_installed_is_named_now():
    """missing_extras (asked where the jobs run in the Snakefile's environment) names the method,
    the package and the command that installs it, as a warning: only that method's jobs fail; a
    method that clusters another's training needs nothing of its own."""
    plan = _plan(_config(g={"model": "graphst"}, b={"model": "banksy"}, own={"train_from": "b", "model": "banksy"}))
    seen = []

    def find_spec(name):
        seen.append(name)
        return None if name == "banksy" else object()
    assert plan.missing_extras(find_spec) == [
        "warning: method 'b' (model banksy) needs the Python package 'banksy', which is not installed, so its train "
        "jobs will fail (the other methods run). Fix: pip install -e '.[banksy]', or leave the method out of the "
        "config's methods"]
    assert seen == ["banksy"]                          # graphst needs no extra
    assert plan.missing_extras(lambda name: object()) == []


def test_a_vote_of_two_labelings_is_named_as_one_of_them_unchanged():
    """A combination of two methods (each seed) and a method's consensus of two seeds vote over two
    labelings: every disagreement is a tie, which the reference wins, so the 'combination' is one of
    them. Said when the run starts, with the fix; three labelings or more, or no consensus: nothing."""
    two = {"g": {"model": "graphst"}, "e": {"model": "expression"}}
    config = _config(**two) | {"ensembles": {"pair": {"methods": ["g", "e"]}}}
    lines = _plan(config).two_labeling_votes()
    assert len(lines) == 3, lines
    assert lines[0].startswith("warning: ensemble 'pair' (at each seed) votes over two labelings")
    assert "one of the two unchanged (method g's" in lines[0] and "Fix: combine three methods or more" in lines[0]
    assert [line.split(" votes")[0] for line in lines[1:]] == [
        "warning: the consensus of method 'g'", "warning: the consensus of method 'e'"]
    assert "seed 0's" in lines[1] and "Fix: give it three seeds or more" in lines[1]
    three = _config(**two, c={"model": "graphst"}) | {"seeds": [0, 1, 2],
                                                       "ensembles": {"trio": {"methods": ["g", "e", "c"]}}}
    assert _plan(three).two_labeling_votes() == []
    assert _plan(_config(**two) | {"consensus": False}).two_labeling_votes() == []


def test_slides_and_seeds_a_combination_leaves_out_are_named_when_the_run_starts():
    """A combination runs on the slides and seeds all its methods run: a slide one member leaves out
    (its samples:, as CellCharter's refusal of spots on a line suggests) got no answer of the
    combination, no row and no folder, and a seed one member lacks left the combination at fewer
    seeds (at one: no consensus, the slide's one answer), without a word.  Said when the run
    starts, naming the slides or seeds, the member and the fix; members that share all: nothing."""
    rec = {"g": {"model": "graphst"}, "b": {"model": "banksy"}, "c": {"model": "cellcharter", "samples": ["s1"]}}
    config = _config(**rec) | {"seeds": [0, 1, 2], "ensembles": {"rec": {"methods": ["g", "b", "c"]}}}
    plan = _plan(config)
    assert plan.ensemble_samples("rec") == ["s1"]
    lines = plan.ensemble_gaps()
    assert lines == [
        "warning: ensemble 'rec' runs on the slides all its methods run, so slides s2, s3 (not among the samples: "
        "of method c) have no answer of 'rec' (no results/<sample>/rec/, no row in results/table.tsv). "
        "Fix: run each of its methods on those slides (leave their samples: out for every slide), or leave "
        "the slides out of the sample sheet"]
    config["methods"]["c"] = {"model": "cellcharter", "seeds": [0]}
    lines = _plan(config).ensemble_gaps()
    assert lines == [
        "warning: ensemble 'rec' votes at the seeds all its methods run, so seeds 1, 2 (not among the seeds: "
        "of method c) are left out: it runs at seed 0 alone, and no results/<sample>/rec/consensus/ (the "
        "slide's one answer, a vote over two seeds or more) is made. Fix: give its methods the same seeds "
        "(leave their seeds: out for the config's seeds)"]
    assert _plan(_config(**rec) | {"seeds": [0, 1, 2], "ensembles": {"rec": {"methods": ["g", "b"]}}}
                 ).ensemble_gaps() == []
    assert _plan(config | {"ensembles": {}}).ensemble_gaps() == []
    # the config's one seed (seeds=[0], to save time): where the answer is, as the README names consensus/
    one = _config(g={"model": "graphst"}, b={"model": "banksy"}, c={"model": "cellcharter"}) | {
        "seeds": [0], "ensembles": {"rec": {"methods": ["g", "b", "c"]}}}
    assert _plan(one).ensemble_gaps() == [
        "note: ensemble 'rec' runs at one seed (0), so each slide's answer is results/<sample>/rec/seed0/domains.h5ad; "
        "results/<sample>/rec/consensus/ (one vote over every member at every seed) is made with two seeds or more "
        "(seeds: [0, 1, 2])"]
    shared = _config(**rec) | {"ensembles": {"gb": {"methods": ["g", "b"]}}}
    assert _plan(shared, s1="grp", s2="grp").ensemble_gaps() == []     # a group: the peers never run on it


def test_the_first_page_shows_no_vote_the_config_turned_off():
    """With ``consensus: false`` a combination's seeds are not combined: its vote over every member at every
    seed has no row in the results table, yet it was made for the report's first page alone and shown as the
    slide's answer, its ARI in the map and in no table.  The page picks the median seed of the combination."""
    config = _config(graphst={"model": "graphst"}, banksy={"model": "banksy"})
    config["ensembles"] = {"both": {"methods": ["graphst", "banksy"]}}
    config["consensus"] = False
    plan = _plan(config)
    shown = plan.page_figures("graphst")
    assert not any(f["seed"] == "consensus" for f in shown)
    assert [(f["sample"], f["method"], f["seed"], f["path"]) for f in shown if f["sample"] == "s1"] == [
        ("s1", "both", k, f"results/s1/both/seed{k}/domains.png") for k in (0, 1)]
    tabled = {r["labels"].replace("labels.tsv", "domains.png") for r in plan.table_runs()}
    assert {f["path"] for f in shown} <= tabled        # every map shown is of a run with a row in table.tsv


def test_the_first_page_shows_a_map_of_every_slide():
    """A slide the figure method does not run on (its ``samples``) had no map on the report's first page,
    which says 'Above, each slide's map', without a word: it is drawn by the first method that runs on it."""
    config = _config(graphst={"model": "graphst", "samples": ["s1"]}, expression={"model": "expression"})
    plan = _plan(config)
    shown = plan.page_figures("graphst")
    assert sorted({f["sample"] for f in shown}) == ["s1", "s2", "s3"]
    assert {(f["sample"], f["method"]) for f in shown} == {("s1", "graphst"), ("s2", "expression"),
                                                           ("s3", "expression")}
    assert [f["path"] for f in shown if f["sample"] == "s2"] == [f"results/s2/expression/seed{k}/domains.png"
                                                                for k in (0, 1)]


def _rule_plan():
    """A plan of every shape the rules ask about: a method that clusters another's training, one with
    seeds and slides of its own, a group, combinations (one of a method that clusters another's)."""
    config = _config(graphst={"model": "graphst"}, expression={"model": "expression", "seeds": [1, 2]},
                     emb={"train_from": "graphst", "cluster": {"input": "embedding", "n_pcs": 5}},
                     only={"model": "graphst", "samples": ["s1"], "train": {"epochs": 3}})
    config["ensembles"] = {"pair": {"methods": ["emb", "expression"]}, "both": {"methods": ["graphst", "emb"]}}
    config["compare"] = {"figure_method": "emb", "agreement_method": "emb"}
    config.update(qc={"min_counts": 0}, hvg={"n_top_genes": 100})
    return _plan(config, s1="g", s2="g")


def test_a_runs_consensus_and_export_files_and_record_are_the_plans():
    """The consensus and export rules' inputs and params (rules/consensus.smk, rules/export.smk) come
    from the plan (stcore.plan.runs.Plan.run_record, embedding_training, ...): each as the rules built
    it from the wildcards before."""
    from types import SimpleNamespace

    from stcore.plan.runs import job_run, run_file

    plan = _rule_plan()
    assert job_run(SimpleNamespace(sample="s1", method="emb", seed="1")) == ("s1", "emb", "1")
    assert job_run(SimpleNamespace(sample="g", ensemble="pair")) == ("g", "pair", "consensus")
    for sample in plan.units:
        for m in plan.methods:
            seeds = plan.seeds_of(m)
            assert plan.run_record(sample, m, "1") == {"sample": sample, "method": m, "seed": 1,
                                                       "trained_by": plan.source(m)}
            assert plan.run_record(sample, m, "consensus") == {
                "sample": sample, "method": m, "seed": "consensus", "trained_by": plan.source(m),
                "consensus_of": ",".join(map(str, seeds))}
            assert plan.embedding_training(sample, m, "consensus") == run_file("train.npz", sample, plan.source(m),
                                                                                 seeds[0])
            for file in ("labels.tsv", "n_clusters.json"):
                assert plan.seed_files(file, sample, m) == [run_file(file, sample, m, s) for s in seeds]
            assert plan.run_names(sample, m, "consensus") == [f"{m} seed {s}" for s in seeds]
            assert plan.consensus_settings(sample, m, "consensus") == {"runs": plan.run_settings(m, sample),
                                                                      "seeds": seeds}
        for e, members in plan.ensembles.items():
            seeds = plan.ensemble_seeds(e)
            for seed in ["1", "consensus"]:
                at = seeds[0] if seed == "consensus" else seed
                record = {"sample": sample, "method": e, "seed": "consensus" if seed == "consensus" else 1,
                          "trained_by": "+".join(members)}
                if seed == "consensus":
                    record["consensus_of"] = ",".join(map(str, seeds))
                assert plan.run_record(sample, e, seed) == record
                assert plan.embedding_training(sample, e, seed) == run_file("train.npz", sample,
                                                                            plan.source(members[0]), at)
                assert plan.member_trainings(sample, e, seed) == [run_file("train.npz", sample, plan.source(m), at)
                                                                  for m in members]
                each = seeds if seed == "consensus" else [seed]
                for file in ("labels.tsv", "n_clusters.json"):
                    assert plan.member_files(file, sample, e, seed) == [run_file(file, sample, m, s)
                                                                        for m in members for s in each]
                assert plan.run_names(sample, e, seed) == [f"{m} seed {s}" for m in members for s in each]
                runs = {m: plan.run_settings(m, sample) for m in members}
                assert plan.consensus_settings(sample, e, seed) == (
                    {"runs": runs, "seeds": seeds} if seed == "consensus" else {"runs": runs})
            assert plan.seed_files("labels.tsv", sample, e) == [run_file("labels.tsv", sample, e, s) for s in seeds]
            assert plan.members_trained_with(e) == {m: plan.trained_with(m) for m in members}
            assert plan.members_cluster_settings(e, sample) == {m: plan.cluster_settings(m, sample) for m in members}
    assert list(plan.run_record("s1", "pair", "consensus")) == ["sample", "method", "seed", "trained_by",
                                                                "consensus_of"]     # the order its record keeps
    assert plan.embedding_training("s1", "pair", "2") == "results/s1/graphst/seed2/train.npz"
    assert plan.group_inputs("g") == ["results/s1/qc.h5ad", "results/s2/qc.h5ad"]


def test_the_comparisons_figures_and_agreement_read_the_plan():
    """The report_figures and agreement rules' inputs and params (rules/report.smk, agreement.smk)
    come from the plan: each as the rules built it from the figure and agreement methods before."""
    plan = _rule_plan()
    for figure, umap in [("emb", True), ("emb", False), ("graphst", True), ("nope", True)]:
        plan.config["compare"] = {"figure_method": figure, "umap": umap, "agreement_method": figure}
        inside = figure in plan.methods
        assert plan.figure_source == (plan.source(figure) if inside else figure)
        assert plan.umap_trainings() == (plan.training_outputs("train.npz", [figure]) if inside else [])
        assert plan.umap_slides() == (plan.figure_slides([figure]) if umap and inside else [])
        runs = plan.agreement_runs(figure)
        assert plan.agreement_files("npz") == sorted({r["npz"] for r in runs})
        assert plan.agreement_files("hvg") == sorted({r["hvg"] for r in runs})
        assert plan.agreement_cluster() == (plan.merged("cluster", figure) if runs else {})
    assert plan.umap_trainings() == [] and plan.agreement_files("npz") == [] and plan.agreement_cluster() == {}
    plan.config["compare"] = {"figure_method": "emb", "agreement_method": "emb"}
    assert plan.figure_source == "graphst" and plan.umap_slides() == ["s1", "s2", "s3"]
    assert plan.agreement_cluster()["input"] == "embedding" and plan.agreement_cluster()["subset"] == 2000
    losses = plan.loss_methods()
    assert losses == ["graphst", "only"]
    assert plan.loss_files() == plan.run_outputs("losses.tsv", methods=losses)
    assert plan.loss_slides() == plan.figure_slides(losses) == ["s1", "s2", "s3"]
    none = _plan(_config(expression={"model": "expression"}))
    assert none.loss_methods() == [] and none.loss_files() == [] and none.loss_slides() == []   # not every run's
    assert plan.figure_samples() == [{"sample": s, "truth": "layer"} for s in ("s1", "s2", "s3")]
    assert plan.method_seeds() == {"graphst": [0, 1], "expression": [1, 2], "emb": [0, 1], "only": [0, 1]}


def test_the_results_tables_inputs_are_the_plans():
    """The table rule's inputs (rules/table.smk) come from the plan: each as the rule built it from
    the table's runs, the slides and groups, the agreement's runs and the first page's maps before."""
    from stcore.plan.runs import record_file

    plan = _rule_plan()
    runs = plan.table_runs()
    assert plan.table_files("metrics") == [r["metrics"] for r in runs]
    assert plan.table_files("labels") == [r["labels"] for r in runs]
    assert plan.table_records() == sorted({r[k] for r in runs for k in ("train_record", "cluster_record") if r[k]})
    assert plan.prep_records() == [record_file("group" if stage == "qc" and s in plan.groups else stage, s)
                                   for stage in ("qc", "hvg", "graph") for s in plan.units]
    assert plan.prep_records()[3] == "results/records/group/g.tsv"
    assert plan.agreement_table() == "results/compare/agreement.tsv"
    plan.config["compare"] = {"agreement_method": None}
    assert plan.agreement_table() == []
    assert plan.page_figure_files() == [f["path"] for f in plan.page_figures(plan.figure_method)]


def test_maps_of_a_slide_without_annotation_take_one_reference_run():
    """Each map (domains.png) of a slide without an annotation matches its colours to one run of the slide
    (Plan.map_reference, the evaluate, consensus and export jobs' ``reference`` input): the lowest seed of the
    first of the package's own methods on the slide (figure method first), which needs no extra, so a peer
    failing alone leaves the other maps to be made; where none runs, the map the report's first page shows of
    it (the first combination's vote over its seeds, its lowest seed without such a vote); none on an annotated
    slide nor for the reference's own job, so no job waits on its own output."""
    rows = _rows()
    rows[0]["truth"] = ""                                            # s1: no truth column in the sheet
    slides, found = slides_and_groups(rows, "sheet.tsv")
    config = _config(graphst={"model": "graphst"}, expression={"model": "expression"},
                     banksy={"model": "banksy"}, cellcharter={"model": "cellcharter"})
    config["ensembles"] = {"both": {"methods": ["graphst", "banksy", "cellcharter"]}}
    jobs = [(m, s) for m in ("graphst", "expression", "banksy", "cellcharter", "both") for s in (0, 1, "consensus")]
    answer = Plan(config, slides, found, METHODS)
    assert {job: answer.map_reference("s1", *job) for job in jobs} == {
        job: [] if job == ("graphst", 0) else ["results/s1/graphst/seed0/labels.tsv"] for job in jobs}
    assert all(answer.map_reference(s, *job) == [] for s in ("s2", "s3") for job in jobs)      # annotated
    expression_first = Plan(dict(config, compare={"figure_method": "expression"}, seeds=[2, 1]), slides, found, METHODS)
    assert expression_first.map_reference("s1", "graphst", 1) == ["results/s1/expression/seed1/labels.tsv"]
    assert expression_first.map_reference("s1", "expression", 1) == []
    peers = dict(config, methods={m: config["methods"][m] for m in ("banksy", "cellcharter")},
                 ensembles={"both": {"methods": ["banksy", "cellcharter"]}})
    peers_only = Plan(peers, slides, found, METHODS)
    assert {job: peers_only.map_reference("s1", *job) for job in jobs if job[0] != "graphst"} == {
        job: [] if job == ("both", "consensus") else ["results/s1/both/consensus/labels.tsv"]
        for job in jobs if job[0] != "graphst"}
    no_vote = Plan(dict(peers, consensus=False), slides, found, METHODS)
    assert no_vote.map_reference("s1", "banksy", 0) == ["results/s1/both/seed0/labels.tsv"]
    assert no_vote.map_reference("s1", "both", 0) == []
    alone = Plan(dict(peers, ensembles={}, seeds=[2, 1]), slides, found, METHODS)
    assert alone.map_reference("s1", "banksy", "1") == [] and alone.map_reference("s1", "banksy", "2") == [
        "results/s1/banksy/seed1/labels.tsv"] == alone.map_reference("s1", "cellcharter", "consensus")


def test_a_maps_reference_and_label_are_found_for_their_own_slide_as_the_first_page_shows_them(monkeypatch):
    """Where none of the package's own methods runs on a slide without annotation (published methods only:
    banksy and cellcharter, cellcharter alone; graphst on another slide), a map's reference run is the map
    the report's first page shows of that slide (its first combination's vote over its seeds, else its lowest
    seed; Plan.page_figures) and its label marks the page's answer, each found for the job's own slide
    (Plan.page_maps): the reference built every slide's first-page figures for each job, at every DAG build,
    time quadratic in the slides."""
    rows = _rows() + [dict(_rows()[0], sample="s4", path="s4.h5ad")]
    for row in rows:
        row["truth"] = ""                                            # no slide annotated: every map has a reference
    slides, found = slides_and_groups(rows, "sheet.tsv")
    peers = _config(banksy={"model": "banksy"}, cellcharter={"model": "cellcharter"})
    peers.update(seeds=[0, 1, 2], ensembles={"vote": {"methods": ["banksy", "cellcharter"]}})
    some = dict(peers["methods"], banksy={"model": "banksy", "samples": ["s1", "s3"]})
    configs = {"peers": peers, "no consensus": dict(peers, consensus=False), "no vote": dict(peers, ensembles={}),
               "cellcharter alone": dict(peers, methods={"cellcharter": {"model": "cellcharter"}}, ensembles={}),
               "one seed": dict(peers, seeds=[3]), "banksy on some slides": dict(peers, methods=some),
               "figure method banksy": dict(peers, seeds=[2, 1], compare={"figure_method": "banksy"},
                                            ensembles={"vote": {"methods": ["cellcharter", "banksy"]}}),
               "graphst on one slide": dict(peers, methods=dict(peers["methods"], graphst={"samples": ["s2"]}),
                                            ensembles={"vote": {"methods": ["graphst", "banksy", "cellcharter"]}})}
    chosen = {}
    for name, config in configs.items():
        plan = Plan(config, slides, found, METHODS)
        shown = plan.page_figures(plan.figure_method)
        jobs = [(s, m, str(seed)) for m in [*plan.methods, *plan.ensembles] for s in plan.units
                for seed in [*plan.seeds_run(m), "consensus"]]
        expected_reference, expected_label = {}, {}
        for s, m, seed in jobs:
            page = [f for f in shown if f["sample"] == s]
            ref = next((f for f in page if f["seed"] == "consensus"), None) or min(page, key=lambda f: int(f["seed"]))
            own = [o for o in [plan.figure_method, *plan.methods] if o in plan.methods and s in plan.samples_of(o)
                   and plan.facts_of(o).builtin]
            ref = {"method": own[0], "seed": min(plan.seeds_of(own[0]))} if own else ref
            folder = "consensus" if ref["seed"] == "consensus" else f"seed{ref['seed']}"
            expected_reference[s, m, seed] = ([] if (ref["method"], str(ref["seed"])) == (m, seed) else
                                              [f"results/{s}/{ref['method']}/{folder}/labels.tsv"])
            expected_label[s, m, seed] = ({"map": "answer" if any((f["sample"], f["method"], str(f["seed"])) == (
                s, m, seed) and m in plan.ensembles for f in shown) else "other"} if plan.ensembles else {})
        with monkeypatch.context() as patched:                        # each job asks of its own slide alone
            patched.setattr(Plan, "page_figures", lambda *args: pytest.fail("a job built every slide's page"))
            assert {job: plan.map_reference(*job) for job in jobs} == expected_reference, name
            assert {job: plan.map_label(*job) for job in jobs} == expected_label, name
        chosen[name] = {s: plan.map_reference(s, "none", 0) for s in plan.units}
    assert chosen["peers"]["s1"] == ["results/s1/vote/consensus/labels.tsv"]
    assert chosen["no consensus"]["s1"] == ["results/s1/vote/seed0/labels.tsv"]
    assert chosen["no vote"]["s1"] == ["results/s1/banksy/seed0/labels.tsv"]
    assert chosen["cellcharter alone"]["s4"] == ["results/s4/cellcharter/seed0/labels.tsv"]
    assert chosen["one seed"]["s2"] == ["results/s2/vote/seed3/labels.tsv"]
    assert [chosen["banksy on some slides"][s] for s in ("s1", "s2")] == [
        ["results/s1/vote/consensus/labels.tsv"], ["results/s2/cellcharter/seed0/labels.tsv"]]
    assert chosen["figure method banksy"]["s3"] == ["results/s3/vote/consensus/labels.tsv"]
    assert [chosen["graphst on one slide"][s] for s in ("s1", "s2")] == [
        ["results/s1/banksy/seed0/labels.tsv"], ["results/s2/graphst/seed0/labels.tsv"]]


def test_the_reports_list_of_maps_has_the_answer_first():
    """The report lists each slide's maps sorted by their labels, first label first (Snakemake's report); by
    slide, method and seed the answer of config/recommended.yaml ('recommended', consensus) came after banksy,
    cellcharter and graphst, last.  Where the config combines methods, each map's first label (Plan.map_label,
    rules' map_labels) marks the answer's map the first page shows, 'answer' before 'other'; without a
    combination the labels are as they were."""
    config = _config(graphst={"model": "graphst"}, banksy={"model": "banksy"}, cellcharter={"model": "cellcharter"})
    config["ensembles"] = {"recommended": {"methods": ["graphst", "banksy", "cellcharter"]}}
    jobs = [(m, s) for m in ("graphst", "banksy", "cellcharter", "recommended") for s in ("0", "1", "consensus")]

    def listed(plan):
        labels = [tuple((plan.map_label("s1", m, s) | {"slide": "s1", "method": m, "seed": s}).values())
                  for m, s in jobs]
        return [(row[-2], row[-1]) for row in sorted(labels)]

    assert listed(_plan(config))[0] == ("recommended", "consensus")
    assert {r[1] for r in listed(_plan(config))[1:]} == {"0", "1", "consensus"}
    assert listed(_plan(dict(config, consensus=False)))[:2] == [("recommended", "0"), ("recommended", "1")]
    assert listed(_plan(dict(config, ensembles={})))[-1] == ("recommended", "consensus")       # no mark: by name
    assert _plan(dict(config, ensembles={})).map_label("s1", "graphst", "0") == {}


def test_a_simulated_slides_planned_entries_are_near_what_it_stores():
    """A simulated slide's stored entries, which size qc, hvg and train when the run starts, were bounded by its
    counts (1.07 x depth a spot): 1.57 times what a slide of 3,000 genes at the default depth (1,000) stores (0.68 x
    depth), and qc and hvg were asked 2.1 to 2.6 times their peaks there.  Now by what a spot stores on average
    (a gene is stored with the chance its negative binomial is not 0) with room for the slide's own draw: at least
    what the slide stores and, at 3,000 genes, at most 1.2 times it (more room on fewer genes, whose draw moves
    more)."""
    from stcore.plan.runs import simulated_entries
    from stcore.simulate import SimParams, simulate_slide

    for settings, most in (({"n_spots": 3000, "layout": "scatter"}, 1.2),
                           ({"n_spots": 3000, "layout": "scatter", "depth": 200}, 1.2),
                           ({"n_spots": 2000, "layout": "scatter", "n_genes": 500, "depth": 300, "dispersion": 5}, 1.4)):
        stored = simulate_slide(SimParams(**settings, markers_per_domain=50, field_genes=50)).X.nnz
        assert stored <= simulated_entries(settings) <= most * stored, (settings, stored, simulated_entries(settings))


SIZING_PEAKS = REPO_ROOT / "benchmarks/results/sizing_peaks.tsv"


def _sizing_jobs(tmp_path, run):
    """JobResources of benchmarks/<run>/config.yaml (its blocks over the repository's config.yaml; its methods and
    simulated slides in place of the demo's, as the Snakefile reads a --configfile) and sample sheet, in
    ``tmp_path``, and a function that writes a file whose header holds a TSV row's spots x genes of ``entries``
    stored entries (the data left unwritten: a few kB), where the row's job reads it."""
    import h5py
    import yaml

    from stcore.plan.resources import JobResources

    config = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
    own = yaml.safe_load((REPO_ROOT / "benchmarks" / run / "config.yaml").read_text())
    for key, value in own.items():
        config[key] = dict(config[key], **value) if isinstance(value, dict) and key not in (
            "methods", "simulate") and isinstance(config.get(key), dict) else value
    sheet = read_sheet(str(REPO_ROOT / "benchmarks" / run / "samples.tsv"))
    rows = [dict(row, values="counts", group="") for row in sheet]
    slides, groups = slides_and_groups(rows, "samples.tsv")

    def header(path, spots, genes, entries, mb):
        """A file at ``path`` of ``mb`` MiB (a sparse file) whose header gives spots x genes of ``entries``."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if genes == genes:          # a matrix (.h5ad); a graph.npz: its size only
            with h5py.File(path, "w") as fh:
                x = fh.create_group("X")
                x.attrs["shape"] = (int(spots), int(genes))
                x.create_dataset("data", shape=(int(entries),), dtype="float32")
        else:
            Path(path).write_bytes(b"")
        os.truncate(path, max(int(mb * 2**20), os.path.getsize(path)))

    return JobResources(Plan(config, slides, groups, METHODS)), header


def _sizing_asks(resources, row, sample):
    """What the job of a TSV row asks (mem_mb, attempt 1) with the files there are now."""
    from types import SimpleNamespace as Job

    plan = resources.plan
    method = plan.methods[0]
    run = Job(sample=sample, method=method, seed=str(plan.seeds[0]))
    qc, hvg, graph = f"results/{sample}/qc.h5ad", f"results/{sample}/hvg.h5ad", f"results/{sample}/graph.npz"
    return {"simulate": lambda: resources.simulate_mem_mb(Job(name=sample), None, 1),
            "qc": lambda: resources.qc_mem_mb(run, Job(raw=[plan.slides[sample]["path"]]), 1),
            "hvg": lambda: resources.hvg_mem_mb(run, Job(h5ad=qc), 1),
            "graph": lambda: resources.graph_mem_mb(run, Job(h5ad=hvg), 1),
            "train": lambda: resources.train_mem_mb(run, Job(h5ad=hvg, graph=[graph]), 1),
            "cluster": lambda: resources.cluster_mem_mb(run, Job(h5ad=hvg), 1),
            "evaluate": lambda: resources.evaluate_mem_mb(run, Job(h5ad=hvg), 1),
            "export": lambda: resources.export_mem_mb(run, Job(qc=qc), 1)}[row["step"]]()


def test_each_step_asks_slurm_for_1_2_to_1_6_times_its_measured_peak(tmp_path, monkeypatch):
    """What each job asks SLURM for (mem_mb) against its step's peak memory measured on the benchmarks' slides
    (benchmarks/results/sizing_peaks.tsv: simulated slides of 20,000 to 300,000 spots at depths 200 and 1,000,
    DLPFC 151673), when the run starts (no file of the run made yet: a simulated slide sized from its config) and
    when the job is submitted (its input files there, stood in for by files of their header and size): at least
    1.2 times the peak (a job asked less is killed), at most 1.6 times (SLURM holds the rest from other jobs and a
    larger job waits longer in the queue)."""
    import pandas as pd

    pytest.importorskip("h5py")
    peaks = pd.read_csv(SIZING_PEAKS, sep="\t", comment="#")
    assert {"sizing", "dag_dlpfc"} <= set(peaks["run"]) and len(peaks) >= 30
    read_from = {"qc": None, "hvg": "qc.h5ad", "export": "qc.h5ad", "graph": "hvg.h5ad", "train": "hvg.h5ad",
                 "cluster": "hvg.h5ad", "evaluate": "hvg.h5ad"}
    ratios = []
    for run, table in peaks.groupby("run"):
        (tmp_path / run).mkdir()
        monkeypatch.chdir(tmp_path / run)
        resources, header = _sizing_jobs(tmp_path, run)
        plan = resources.plan
        for row in table.itertuples():         # a slide of the sheet's own is there when the run starts
            if row.step == "qc" and plan.simulated_of(row.sample) is None:
                header(plan.slides[row.sample]["path"], row.spots, row.genes, row.entries, row.file_mb)
        start = [_sizing_asks(resources, row._asdict(), row.sample) for row in table.itertuples()]
        for row in table.itertuples():
            if row.step == "simulate":
                continue
            path = plan.slides[row.sample]["path"] if row.step == "qc" else f"results/{row.sample}/{read_from[row.step]}"
            header(path, row.spots, row.genes, row.entries, row.file_mb)
            if row.step == "train":
                header(f"results/{row.sample}/graph.npz", 0, float("nan"), 0, row.graph_mb)
        submitted = [_sizing_asks(resources, row._asdict(), row.sample) for row in table.itertuples()]
        for row, first, then in zip(table.itertuples(), start, submitted):
            ratios += [(run, row.sample, row.step, "start", round(first / row.peak_mb, 2)),
                       (run, row.sample, row.step, "submitted", round(then / row.peak_mb, 2))]
    outside = [r for r in ratios if not 1.2 <= r[-1] <= 1.6]
    assert not outside, outside


"""The sample sheet as spreadsheets save it, the names that become paths, and groups of slides."""
from __future__ import annotations

import csv
import difflib
import os
import re
import sys

from . import PlanError
from .settings import schema_problem

# Every name that becomes part of a path (results/<sample>/<method>/..., results/simulated/<name>.h5ad,
# logs/<stage>/<sample>.<method>.seed<seed>.log) passes check_names: no slash, no '..', no leading
# dot or dash, so every path stays under results/ and logs/.  Method names hold no '.', so a run's
# job name '<sample>.<method>.seed<seed>' names one run only.
SAFE = {
    "sample id": (r"(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]*",
                  "letters, digits, '_', '-' and '.', starting with a letter or digit"),
    "method": (r"[A-Za-z0-9][A-Za-z0-9_-]*",
               "letters, digits, '_' and '-', starting with a letter or digit (no '.')"),
    "group": (r"(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]*",
              "letters, digits, '_', '-' and '.', starting with a letter or digit"),
    "simulated slide": (r"(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]*",
                        "letters, digits, '_', '-' and '.', starting with a letter or digit"),
}
#: Folders directly under results/ that hold no slide's results (the stamps and records, the
#: comparison's tables and figures, simulated slides): no sample id or group may take their names.
NOT_SLIDES = ("records", "compare", "simulated")
RESERVED_FOR = {"records": "stamps and records", "compare": "comparison tables and figures",
                "simulated": "simulated slides"}
COLUMNS = "sample, path, format, n_clusters, truth"
#: How spreadsheets, pandas and R write a logical cell (any case): a group column of checkboxes or
#: TRUE/FALSE, which is no group's name.
BOOLEAN_CELLS = ("TRUE", "FALSE")
#: The columns stcore reads (schemas/samples.schema.yaml's properties); a sheet may hold others (notes).
READ_COLUMNS = ("sample", "path", "format", "n_clusters", "values", "truth", "group", "bin_size")
#: Other names a sheet gives the columns stcore reads, as other tools and papers name them; a column
#: so named, or one a letter or two off a column's name ('groups', 'value'), would be kept as a note
#: without a word, and its slides run without their annotation or group; a needed column's other
#: name is named where that column is missing (:func:`meant_as`).
COLUMN_NAMES = {
    "truth": ("annotation", "annotations", "ground_truth", "groundtruth", "ground truth", "truth_column",
              "annotation_column", "label", "labels", "label_column", "truth_col"),
    "group": ("groups", "group_id", "group_name"),
    "values": ("value", "x_values"),
    "sample": ("id", "slide", "slide_id", "sample_name", "name"),
    "path": ("file", "file_path", "filepath", "file_name", "filename"),
    "n_clusters": ("clusters", "n_domains", "k"),
    "bin_size": ("bin", "binsize", "bin_dnb"),
}


def meant_as(column):
    """The column stcore reads that a sheet's column (its name in lower case) looks meant as: a name
    other tools give it (:data:`COLUMN_NAMES`), the name written with spaces, '-' or '_' otherwise or an
    'id' after it ('sample id', 'sample_id', 'n clusters'), or a letter or two off; else None."""
    named = [name for name, others in COLUMN_NAMES.items() if column in others]
    if named:
        return named[0]
    squeezed = re.sub(r"[\s_-]+", "", column)
    same = [name for name in READ_COLUMNS if squeezed in (name.replace("_", ""), name.replace("_", "") + "id")]
    return (same or difflib.get_close_matches(column, READ_COLUMNS, n=1, cutoff=0.8) or [None])[0]


def check_names(kind, names, where):
    """Refuse a name of ``kind`` that is not a safe file name, appears twice, or differs from
    another only in case (one file on macOS and Windows)."""
    pattern, allowed = SAFE[kind]
    for name in names:
        if isinstance(name, str) and re.fullmatch(r"-?\d+(\.\d+)?[Ee][+-]\d+", name):
            raise PlanError(f"{where}: {kind} '{name}' is a number in scientific notation, as a spreadsheet shows "
                            "and saves a long number (its last digits are lost). Fix: format the column as text in the "
                            "spreadsheet, type the ids again in full and save the sheet again")
        if not isinstance(name, str) or not re.fullmatch(pattern, name):
            raise PlanError(f"{where}: {kind} '{name}' is not a safe file name. Fix: use {allowed}")
        if kind in ("sample id", "group") and name.lower() in NOT_SLIDES:
            raise PlanError(f"{where}: {kind} '{name}' would write its results into results/{name.lower()}/, the "
                            f"folder of the run's {RESERVED_FOR[name.lower()]}. Fix: rename it (e.g. '{name}_1'): "
                            f"{', '.join(NOT_SLIDES)} are not taken as {kind}s")
    seen = {}                                   # lower-case name -> the name
    for name in names:
        other = seen.get(name.lower())
        if other == name:
            raise PlanError(f"{where}: {kind} '{name}' appears twice. Fix: make ids unique")
        if other is not None:
            raise PlanError(f"{where}: {kind}s '{other}' and '{name}' differ only in case, and name one "
                            "file on macOS and Windows. Fix: rename one")
        seen[name.lower()] = name


def sheet_text(path):
    """The sheet's text as a spreadsheet may have saved it: UTF-8 (with or without a byte-order
    mark), UTF-16 with its byte-order mark (Excel's "Unicode Text"), or, when not UTF-8,
    Windows-1252 (Excel's "Text (Tab delimited)" on Western Windows; a note says so)."""
    with open(path, "rb") as fh:
        data = fh.read()
    save_as = "Fix: save it as tab-separated text in UTF-8"
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):      # a zip (.xlsx, .ods) or an OLE file (.xls)
        raise PlanError(f"sample sheet '{path}': a spreadsheet workbook (Excel .xlsx or .xls, LibreOffice .ods), not "
                        "text. Fix: save the sheet as tab-separated text (Excel: File > Save As > 'Text (Tab delimited)'; "
                        "LibreOffice: 'Text CSV' with the tab as field delimiter) and give that file")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            line = data[:exc.start].decode("utf-16", errors="replace").count("\n") + 1
            raise PlanError(f"sample sheet '{path}', line {line}: not valid UTF-16 text although it starts "
                            f"with a UTF-16 byte-order mark. {save_as}") from None
    if b"\x00" in data:
        line = data[:data.index(b"\x00")].count(b"\n") + 1
        raise PlanError(f"sample sheet '{path}', line {line}: holds NUL bytes (UTF-16 without a byte-order "
                        f"mark, or not a text file). {save_as}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        try:      # a UTF-8 byte-order mark before Windows-1252 bytes (a sheet edited in two programs) is dropped
            text = data.removeprefix(b"\xef\xbb\xbf").decode("cp1252")
        except UnicodeDecodeError:
            raise PlanError(f"sample sheet '{path}', line {line}: neither UTF-8 nor Windows-1252 text (byte "
                            f"{data[exc.start]:#04x}). {save_as}") from None
        print(f"sample sheet '{path}': not UTF-8 (line {line}); read as Windows-1252, the encoding of Excel's "
              "'Text (Tab delimited)'. Save it as UTF-8 to be sure of the names", file=sys.stderr)
        return text


# Characters a copy from a web page or a document leaves in a cell that no one sees on screen:
# zero-width space, non-joiner and joiner, word joiner, a byte-order mark.  Never part of a name.
ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")


def sheet_rows(path, numbered):
    """The sheet's cells (``numbered``: its (line number, text) lines, header first) as one dict
    of text per slide, keyed by the column's name in lower case, and {that name: the name as the header
    writes it} (``'sample id'``: ``'Sample ID'``), which the messages name.  Empty cells after the last
    named column (trailing tabs) and columns with neither a name nor a value are dropped; a value in a
    column without a name, or past the header's last column, is refused naming the line."""
    parsed = list(csv.reader([line + "\n" for _, line in numbered], delimiter="\t"))
    for (number, _), cells in zip(numbered, parsed):
        if any("\n" in cell for cell in cells):
            raise PlanError(f"sample sheet '{path}', line {number}: a cell opens a quote (\") that no cell on the line "
                            "closes, so the lines after it were read into that cell. Fix: delete the quote, or "
                            "close it in the same cell")
    rows = [(number, [ZERO_WIDTH.sub("", cell).strip() for cell in cells])
            for (number, _), cells in zip(numbered, parsed)]
    header = [name.lower() for name in rows[0][1]]      # 'Sample', 'N_clusters' as spreadsheets capitalise
    while header and not header[-1]:
        header.pop()
    written = rows[0][1][:len(header)]                  # the names as the header writes them, for messages
    body_rows = [cells for _, cells in rows[1:]]
    if (header and len(rows[0][1]) == len(header) and all(len(c) == len(header) + 1 for c in body_rows)
            and [c[0] for c in body_rows] == [str(i) for i in range(1, len(body_rows) + 1)]):
        raise PlanError(f"sample sheet '{path}': every row has one cell more than the header, before its first "
                        f"column (1, 2, ... from line {rows[1][0]}): row names, as R's write.table writes "
                        "them. Fix: write it with row.names = FALSE (write.table(x, sep = \"\\t\", quote = FALSE, "
                        "row.names = FALSE)), or delete the first cell of each row")
    body = []
    for number, cells in rows[1:]:
        first = cells[header.index("sample")] if "sample" in header and header.index("sample") < len(cells) else ""
        if first.lower() == "sample" and {cell.lower() for cell in cells if cell} <= set(READ_COLUMNS) | set(header):
            same = [cell.lower() for cell in cells[:len(header)]] == header
            raise PlanError(f"sample sheet '{path}', line {number}: a second header line ("
                            + ", ".join(f"'{cell}'" for cell in cells if cell) + "), as two sheets joined one "
                            "after the other leave it; it would be read as a slide named 'sample'. Fix: delete "
                            f"line {number}" + ("" if same else f" and put the cells of the rows after it in "
                                                                   f"line {rows[0][0]}'s column order"))
        extra = [cell for cell in cells[len(header):] if cell]
        if extra:
            raise PlanError(f"sample sheet '{path}', line {number}: a value past the header's last column "
                            f"('{written[-1]}'): '{extra[0]}'. Fix: delete the cells after the last named column, "
                            "or name their column in the header")
        body.append((number, cells[:len(header)] + [""] * (len(header) - len(cells))))
    for i, name in enumerate(header):
        filled = [(number, cells[i]) for number, cells in body if cells[i]]
        if not name and filled:
            raise PlanError(f"sample sheet '{path}', line {filled[0][0]}: column {i + 1} has no name in the "
                            f"header but holds '{filled[0][1]}'. Fix: name the column in the header, or delete it")
        if name and header.index(name) != i:
            first = written[header.index(name)]
            both = "" if first == written[i] else f" ('{first}' and '{written[i]}': its names are read in any case)"
            raise PlanError(f"sample sheet '{path}': column '{written[i]}' appears twice in the header{both}. "
                            "Fix: keep one of them")
    keep = [i for i, name in enumerate(header) if name]
    return [{header[i]: cells[i] for i in keep} for _, cells in body], {header[i]: written[i] for i in keep}


def expand_path(cell, path, sample):
    """A slide's path as a shell reads it: ``~`` the home folder, ``$NAME`` and ``${NAME}`` the
    environment variable's value (``$HOME/data``, ``$SCRATCH/...``, as a path is written in a
    script).  A variable that is not set is refused, naming it."""
    for name in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", cell):
        if name not in os.environ:
            raise PlanError(f"sample sheet '{path}', sample '{sample}': path '{cell}' names the environment "
                            f"variable ${name}, which is not set where the workflow runs. Fix: write the path "
                            f"in full, or set {name} before running snakemake")
    return os.path.expandvars(os.path.expanduser(cell))


def read_sheet(path, config_files=()):
    """The slides of the sheet at ``path``, one dict per row in sheet order, before the schema's
    check (rules/common.smk checks them against schemas/samples.schema.yaml): every cell as text
    ('01' stays '01', 'NA' stays 'NA'), a byte-order mark and Windows line ends dropped, spaces
    around cells stripped, a line starting with '#' a comment ('#' inside a path is kept);
    ``format`` and ``values`` in lower case (an empty ``values`` cell: counts, the default), ``~`` and
    ``$NAME`` in paths expanded (:func:`expand_path`), ``n_clusters`` a number ('7', or '7.0' as
    spreadsheets write it) or 'auto'.  A sheet whose cells are separated by commas, semicolons or
    spaces, and a quote left open across lines, are refused naming the fix.  ``config_files``: the
    run's config files; a relative ``path`` that is not found here but beside one of them is named,
    as the path to give."""
    if not os.path.isfile(path):
        folders = [] if os.path.isabs(path) else [os.path.dirname(str(f)) for f in config_files]
        beside = [os.path.join(folder, path) for folder in folders
                  if folder and os.path.isfile(os.path.join(folder, path))]
        if beside:
            near = os.path.relpath(beside[0])
            raise PlanError(f"sample sheet '{path}' not found in the folder the workflow runs in ({os.getcwd()}); "
                            f"'{near}' beside the config file exists, but a config's paths are read from that "
                            f"folder, not the config file's. Fix: set samples to '{near}' (its slides' relative "
                            "paths are read from that folder too, or from data_dir)")
        where = "" if os.path.isabs(path) else f" in the folder the workflow runs in ({os.getcwd()})"
        raise PlanError(f"sample sheet '{path}' not found{where}. Fix: set 'samples' in the config to a TSV with "
                        f"columns {COLUMNS} (a relative path is read from that folder: snakemake's --directory "
                        "moves it)")
    # a line of separators only (',,,,' or ';;;;': the empty rows a spreadsheet's CSV export leaves) is empty
    numbered = [(number, line) for number, line in enumerate(sheet_text(path).splitlines(), 1)
                if line.strip(" \t,;") and not line.lstrip().startswith("#")]
    if len(numbered) < 2:
        raise PlanError(f"sample sheet '{path}' has no slides. Fix: add a header line ({COLUMNS}) "
                        "and one row per slide")
    header = numbered[0][1].strip()
    if "\t" not in header and ("," in header or ";" in header or " " in header):
        how = " (its columns are aligned with spaces)" if not ("," in header or ";" in header) else ""
        raise PlanError(f"sample sheet '{path}' is not tab-separated{how} (its header is '{header}'). "
                        "Fix: save it as tab-separated text (TSV): one tab between cells")
    rows, written = sheet_rows(path, numbered)
    for column in ("sample", "path", "format", "n_clusters"):
        if column not in rows[0]:
            near = [written[name] for name in rows[0] if name not in READ_COLUMNS and meant_as(name) == column]
            if near:        # 'Sample ID', 'sample_id ', 'N Clusters': a header as spreadsheets and other tools write it
                raise PlanError(f"sample sheet '{path}': column '{column}' is missing; the header's '{near[0]}' looks "
                                f"meant as it. Fix: rename the column '{near[0]}' to '{column}' in the header (the "
                                f"columns are {COLUMNS})")
            raise PlanError(f"sample sheet '{path}': column '{column}' is missing. "
                            f"Fix: the columns are {COLUMNS}")
    for column in rows[0]:
        if column in READ_COLUMNS:
            continue
        meant = [name for name in [meant_as(column)] if name]
        if meant and meant[0] not in rows[0]:
            raise PlanError(f"sample sheet '{path}': column '{written[column]}' is not a column stcore reads (it reads "
                            f"{', '.join(READ_COLUMNS)}), so it would be kept as a note without a word; it looks "
                            f"meant as '{meant[0]}'. Fix: rename the column '{meant[0]}' in the header (or, if it is "
                            "a note, give it another name)")
    check_names("sample id", [row["sample"] for row in rows], f"sample sheet '{path}'")
    decimal = [row["sample"] for row in rows if re.fullmatch(r"\d+\.0+", row["sample"])]
    if decimal:         # a number column a spreadsheet or pandas wrote as floats: 151673 became 151673.0
        print(f"sample sheet '{path}': {len(decimal)} sample ids are whole numbers written with a decimal point "
              f"(first: '{decimal[0]}'), as a spreadsheet's number format or pandas' float column writes an id; "
              f"they are taken as written (results/{decimal[0]}/). Fix: if the id is "
              f"'{decimal[0].split('.')[0]}', save the column as text", file=sys.stderr)
    for row in rows:
        row.setdefault("group", "")
        for column in ("format", "values"):        # 'Visium', 'H5AD' mean visium, h5ad
            if column in row:
                row[column] = row[column].lower()
        if row.get("values") == "":                # an empty cell: the default, as the column left out
            row["values"] = "counts"
        row["path"] = expand_path(row["path"], path, row["sample"])
        value = row["n_clusters"]
        row["n_clusters"] = int(float(value)) if re.fullmatch(r"-?\d+(\.0*)?", value) else value.lower()
        size = row.get("bin_size", "")
        if re.fullmatch(r"-?\d+(\.0*)?", size):     # '50', or '50.0' as spreadsheets write it (the schema checks it)
            row["bin_size"] = int(float(size))
        if size != "" and row["format"] != "stereo":
            raise PlanError(f"sample sheet '{path}', sample '{row['sample']}': bin_size '{size}' is given for format "
                            f"{row['format']}, whose spots are read as they are; bin_size is the side of the square "
                            "bins a Stereo-seq GEM (format stereo) is summed into. Fix: leave its bin_size cell empty "
                            "(or, if the path is a GEM file, set its format to stereo)")
    return rows


def same_group(group):
    """The key under which two group cells name one group as a spreadsheet writes it: the name in
    lower case, a whole number its value ('1', '01' and '1.0' alike)."""
    number = re.fullmatch(r"(\d+)(\.0*)?", group)
    return f"#{int(number.group(1))}" if number else group.lower()


def slide_path(row, data_dir=""):
    """The path the reader of the sheet's ``row`` opens: its ``path``, a relative one read from ``data_dir``
    where the config sets it (as :func:`slides_and_groups` gives it to the plan, and the qc job reads it)."""
    if data_dir and not os.path.isabs(row["path"]):
        return os.path.join(data_dir, row["path"])
    return row["path"]


def slides_and_groups(rows, path, data_dir=""):
    """The checked rows as {slide id: row} (relative paths read from ``data_dir`` when set) and the
    sheet's groups (slides trained as one: its `group` column), name -> slides in sheet order.
    Each group also gets a row of its own (format 'group'; n_clusters, values and truth shared by
    its slides), so the stages after qc treat it as one more slide."""
    slides = {}
    for row in rows:
        row = dict(row, path=slide_path(row, data_dir))
        slides[row["sample"]] = row
    groups = {}
    for sample, row in slides.items():
        if row.get("group"):
            groups.setdefault(row["group"], []).append(sample)
    ids = {s.lower(): s for s in slides}
    from ..evaluate import MISSING_LABELS       # a missing value's spellings, as an annotation's are read

    for group, members in groups.items():
        if group.upper() in MISSING_LABELS:
            raise PlanError(f"sample sheet '{path}': group '{group}' ({', '.join(members)}) is how R's write.table "
                            "and pandas' astype(str) write an empty cell, so these slides would be trained as one "
                            f"group named '{group}'. Fix: leave the group cell empty for a slide that stands alone "
                            "(R: write.table(..., na = \"\"); pandas: to_csv without astype(str)), or give "
                            "the group another name")
        if group.upper() in BOOLEAN_CELLS:
            raise PlanError(f"sample sheet '{path}': group '{group}' ({', '.join(members)}) is a yes/no value, as a "
                            "spreadsheet's checkbox or TRUE/FALSE column (or pandas' and R's logical one) writes it, "
                            "not a group's name, so these slides would be trained as one group named "
                            f"'{group}'. Fix: leave the group cell empty for a slide that stands alone, and give the "
                            "slides to train as one the same name (e.g. 'g1')")
    cells = [row.get("group") or "" for row in slides.values()]
    if len(groups) > 1 and all(cells) and {same_group(c) for c in cells} == {"#0", "#1"}:
        zero = [s for s, c in zip(slides, cells) if same_group(c) == "#0"]
        one = [s for s, c in zip(slides, cells) if same_group(c) == "#1"]
        raise PlanError(f"sample sheet '{path}': every group cell is 0 or 1 (0: {', '.join(zero)}; 1: {', '.join(one)}), "
                        "as a spreadsheet's checkbox or a yes/no column exported as numbers writes them, so the slides "
                        "marked 0 would be trained as one group named '0' beside group '1'. Fix: leave the group cell "
                        "empty for a slide that stands alone, and give the slides to train as one the same name "
                        "(e.g. 'g1'); if 0 and 1 are two groups, name them so (e.g. 'g0' and 'g1')")
    seen = {}                                   # lower-case group (a number: its value) -> the group as first written
    for group, members in groups.items():
        other = seen.setdefault(same_group(group), group)
        if other != group and other.lower() != group.lower():
            raise PlanError(f"sample sheet '{path}': groups '{other}' ({', '.join(groups[other])}) and '{group}' "
                            f"({', '.join(members)}) are one number written two ways (a spreadsheet's number format "
                            "writes 1 as 1.0 and drops the leading zero of 01, in the rows not formatted as text): "
                            "they would be trained as two groups. Fix: write the group alike in the rows of its slides (format "
                            "the column as text in the spreadsheet), or rename one, if they are two groups")
        if other != group:
            raise PlanError(f"sample sheet '{path}': groups '{other}' ({', '.join(groups[other])}) and '{group}' "
                            f"({', '.join(members)}) differ only in case: they would be trained as two groups, "
                            f"and results/{other}/ and results/{group}/ are one folder on macOS and Windows. "
                            "Fix: write the group alike in the rows of its slides (or rename one, if they are "
                            "two groups)")
    check_names("group", list(groups), f"sample sheet '{path}'")
    group_rows = {}
    for group, members in groups.items():
        where = f"sample sheet '{path}': group '{group}'"
        if group.lower() in ids:
            raise PlanError(f"{where} is also a sample id ('{ids[group.lower()]}'); both would write "
                            f"results/{group}/. Fix: rename the group")
        if len(members) < 2:
            raise PlanError(f"{where} has one slide ({members[0]}); a group trains several slides as one. "
                            "Fix: give another slide the same group, or leave the cell empty")
        part = [slides[s] for s in members]
        for column in ("n_clusters", "values"):
            if column in part[0] and len({str(row[column]) for row in part}) > 1:
                each = ", ".join(f"{s}: {row[column]}" for s, row in zip(members, part))
                if column == "n_clusters":
                    raise PlanError(f"{where}: its slides differ in {column} ({each}); one model and one clustering "
                                    f"need one. Fix: give them the same {column}")
                # each slide's values say what its file holds (its qc job checks them): setting them alike would
                # have one slide's refused; the slides' files must hold values of one kind
                kinds = {str(row[column]): s for s, row in zip(members, part)}
                target = "log_normalized" if "log_normalized" in kinds else "normalized"
                odd = kinds.get("counts") or next(s for s, row in zip(members, part) if str(row[column]) != target)
                if kinds.get("counts") == odd:
                    change = (f"normalise {odd}'s counts as {kinds[target]}'s values were (normalize_total to the same "
                              f"total{', then log1p' if target == 'log_normalized' else ''})")
                else:
                    change = f"log {odd}'s normalised values as {kinds[target]}'s were (log1p)"
                raise PlanError(f"{where}: its slides differ in values ({each}); one model needs one kind of values "
                                "on every slide, and each slide's values say what its file holds (its qc job refuses "
                                f"values other than those said). Fix: give the slides values of one kind: {change} "
                                f"and set its values to {target}; or leave the group cell empty for the slide of the "
                                "other kind (each slide runs alone as well)")
        group_rows[group] = {"sample": group, "path": "", "format": "group", "n_clusters": part[0]["n_clusters"],
                             "truth": "truth" if any(row.get("truth") for row in part) else "",
                             "values": part[0].get("values", "counts"), "group": ""}
    slides.update(group_rows)
    return slides, groups


def cell_problem(path, rows, column, row, message, descriptions):
    """One line for a cell of the sheet that its schema refuses: the row (0-based ``row`` of
    ``rows``), its sample and the column, the problem (``message``, the schema's; a pattern's
    regex is not shown) and, as the fix, what the column takes (``descriptions``: the schema's
    description of each column).  None where the cell cannot be named (the caller then says
    what the schema said)."""
    takes = descriptions.get(column)
    if not takes or row is None or not 0 <= row < len(rows) or column not in rows[row]:
        return None
    value = rows[row][column]
    problem = f"{value!r} is not valid" if "does not match" in message else message
    sample = rows[row].get("sample", "")
    names = [n for n in re.split(r"[,;|/+\s]+", str(value)) if n]
    if column == "group" and len(names) > 1 and all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", n) for n in names):
        # a slide meant for several groups: one cell holds one group
        return (f"sample sheet '{path}', row {row + 1} (sample '{sample}'), column group: {value!r} names "
                f"{len(names)} groups ({', '.join(repr(n) for n in names)}); a row's slide belongs to one group. Fix: "
                f"give the row one group; to train the slide in each, give it a row per group under another sample "
                f"id (the same path), e.g. '{sample}_{names[1]}' with group '{names[1]}'")
    return (f"sample sheet '{path}', row {row + 1} (sample '{sample}'), column {column}: {problem}. "
            f"Fix: {column}: {takes}")


def checked_sheet(path, config_files, schema_path, validate):
    """The rows of the sample sheet ``path`` (:func:`read_sheet`) checked against its schema
    (``schema_path``, YAML) by ``validate(rows)``, which returns them with the schema's defaults
    filled in and raises jsonschema's error (or one raised while handling it, naming 'row N of data
    frame', as Snakemake's validate of a data frame does).  A bad cell is a :class:`PlanError`
    naming its row, the sample and the column, with what the column takes (:func:`cell_problem`)."""
    rows = read_sheet(path, config_files)
    try:
        return validate(rows)
    except Exception as exc:        # the validator's own error type (Snakemake's WorkflowError)
        import yaml

        err = exc if hasattr(exc, "absolute_path") else exc.__context__
        row = re.search(r"row (\d+) of data frame", str(exc))
        with open(schema_path, encoding="utf-8") as fh:
            described = {k: v.get("description") for k, v in yaml.safe_load(fh)["properties"].items()}
        column = ".".join(map(str, getattr(err, "absolute_path", [])))
        line = cell_problem(path, rows, column, int(row.group(1)) if row else None,
                            getattr(err, "message", ""), described)
        if line:
            raise PlanError(line) from None
        raise PlanError(f"sample sheet '{path}' is invalid: {schema_problem(exc)}. "
                        "Fix: see schemas/samples.schema.yaml") from None

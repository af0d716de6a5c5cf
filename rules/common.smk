import copy
import os
import re

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


def _schema_problem(exc):
    """One line from a failed schema validation: where, and what is wrong."""
    err = exc.__context__      # snakemake's validate raises while handling jsonschema's error
    if not hasattr(err, "absolute_path"):
        return str(exc).splitlines()[0]
    where = ".".join(str(p) for p in err.absolute_path) or "top level"
    row = re.search(r"row (\d+) of data frame", str(exc))
    if row:
        where = f"row {int(row.group(1)) + 1}, column {where}"
    return f"{where}: {err.message}"


# Method overrides must hold only what the user wrote, so keep them apart from the defaults.
_raw_methods = copy.deepcopy(config.get("methods"))
_raw_compare = copy.deepcopy(config.get("compare") or {})      # the keys the user wrote
try:
    validate(config, "../stcore/schemas/config.schema.yaml")     # the schema the package ships (stcore.validate)
except WorkflowError as exc:
    raise WorkflowError(f"config is invalid: {_schema_problem(exc)}. "
                        "Fix: see stcore/schemas/config.schema.yaml for the keys and their types") from None
if _raw_methods is not None:
    config["methods"] = _raw_methods


def _integral_floats_as_int(value, schema, root):
    """``value`` with every float the schema types as an integer and that is one (20.0, as a
    program or a spreadsheet may write it) made an int: JSON Schema's integer type accepts 20.0,
    but range() and array sizes do not (20.5 is refused by the schema, naming the key)."""
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if isinstance(value, float) and value.is_integer() and "integer" in kinds and "number" not in kinds:
        return int(value)
    if isinstance(value, dict):
        extra = schema.get("additionalProperties")
        return {key: _integral_floats_as_int(item, schema.get("properties", {}).get(
            key, extra if isinstance(extra, dict) else {}), root) for key, item in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_integral_floats_as_int(item, schema["items"], root) for item in value]
    return value


def _config_integers():
    import yaml

    places = [os.path.join(workflow.basedir, *parts, "config.schema.yaml") for parts in (["stcore", "schemas"], ["schemas"])]
    with open(next((p for p in places if os.path.isfile(p)), places[-1])) as fh:     # the file validate() read
        schema = yaml.safe_load(fh)
    for key, value in _integral_floats_as_int(dict(config), schema, schema).items():
        config[key] = value


_config_integers()


# Memory allocation: it changes no result, only the time.  glibc serves every allocation above
# 32 MB with a fresh mmap and unmaps it when freed, so each large tensor of an epoch is faulted in
# and zeroed by the kernel page by page (benchmarks/README.md, "Page faults").  Every job started
# from here inherits glibc's hugetlb tunable = 1 (glibc >= 2.35), which backs those mappings with
# transparent huge pages; a hugetlb value the user set is kept.
_tunables = os.environ.get("GLIBC_TUNABLES", "")
if "glibc.malloc.hugetlb" not in _tunables:
    os.environ.update(GLIBC_TUNABLES=":".join(t for t in (_tunables, "glibc.malloc.hugetlb=1") if t))


def tcmalloc_library(choice):
    """The library the jobs preload for ``STCORE_MALLOC=choice``: ``tcmalloc`` (gperftools'
    libtcmalloc_minimal, found by the linker: Debian/Ubuntu libtcmalloc-minimal4) or its path;
    None for glibc's malloc (unset, empty or ``glibc``).  tcmalloc keeps freed memory in the
    process: epochs at 10^5-10^6 spots 30-50 % faster, the same numbers bit for bit, and a peak
    up to 12 % higher, so it is a choice, not the default (benchmarks/README.md, "A caching
    allocator: tcmalloc")."""
    import ctypes.util

    if choice in ("", "glibc"):
        return None
    lib = ctypes.util.find_library("tcmalloc_minimal") if choice == "tcmalloc" else choice
    if not lib or (choice != "tcmalloc" and not os.path.isfile(lib)):
        raise WorkflowError(f"STCORE_MALLOC={choice}: no tcmalloc library found. Fix: install it (Debian/Ubuntu: "
                            "apt-get install libtcmalloc-minimal4; conda: gperftools), give the path of "
                            "libtcmalloc_minimal.so, or unset STCORE_MALLOC")
    return lib


_tcmalloc = tcmalloc_library(os.environ.get("STCORE_MALLOC", ""))
if _tcmalloc:
    # tcmalloc reports every allocation above 1 GB on stderr by default; at 10^6 spots that is
    # every large tensor.
    os.environ.setdefault("TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD", str(1 << 40))
    _preload = os.environ.get("LD_PRELOAD", "")
    if _tcmalloc not in _preload:
        os.environ.update(LD_PRELOAD=":".join(p for p in (_preload, _tcmalloc) if p))


# Every name that becomes part of a path (results/<sample>/<method>/..., results/simulated/<name>.h5ad,
# logs/<stage>/<sample>.<method>.seed<seed>.log) passes check_names: no slash, no '..', no leading
# dot or dash, so every path stays under results/ and logs/.  Method names hold no '.', so a run's
# job name '<sample>.<method>.seed<seed>' names one run only.
_SAFE = {
    "sample id": (r"(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]*",
                  "letters, digits, '_', '-' and '.', starting with a letter or digit"),
    "method": (r"[A-Za-z0-9][A-Za-z0-9_-]*",
               "letters, digits, '_' and '-', starting with a letter or digit (no '.')"),
    "simulated slide": (r"(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]*",
                        "letters, digits, '_', '-' and '.', starting with a letter or digit"),
}


def check_names(kind, names, where):
    """Refuse a name of ``kind`` that is not a safe file name, appears twice, or differs from
    another only in case (one file on macOS and Windows)."""
    pattern, allowed = _SAFE[kind]
    for name in names:
        if not isinstance(name, str) or not re.fullmatch(pattern, name):
            raise WorkflowError(f"{where}: {kind} '{name}' is not a safe file name. Fix: use {allowed}")
    seen = {}                                   # lower-case name -> the name
    for name in names:
        other = seen.get(name.lower())
        if other == name:
            raise WorkflowError(f"{where}: {kind} '{name}' appears twice. Fix: make ids unique")
        if other is not None:
            raise WorkflowError(f"{where}: {kind}s '{other}' and '{name}' differ only in case, and name one "
                                "file on macOS and Windows. Fix: rename one")
        seen[name.lower()] = name


def _sheet_text(path):
    """The sheet's text as a spreadsheet may have saved it: UTF-8 (with or without a byte-order
    mark), UTF-16 with its byte-order mark (Excel's "Unicode Text"), or, when not UTF-8,
    Windows-1252 (Excel's "Text (Tab delimited)" on Western Windows; a note says so)."""
    with open(path, "rb") as fh:
        data = fh.read()
    save_as = "Fix: save it as tab-separated text in UTF-8"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            line = data[:exc.start].decode("utf-16", errors="replace").count("\n") + 1
            raise WorkflowError(f"sample sheet '{path}', line {line}: not valid UTF-16 text although it starts "
                                f"with a UTF-16 byte-order mark. {save_as}") from None
    if b"\x00" in data:
        line = data[:data.index(b"\x00")].count(b"\n") + 1
        raise WorkflowError(f"sample sheet '{path}', line {line}: holds NUL bytes (UTF-16 without a byte-order "
                            f"mark, or not a text file). {save_as}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise WorkflowError(f"sample sheet '{path}', line {line}: neither UTF-8 nor Windows-1252 text (byte "
                                f"{data[exc.start]:#04x}). {save_as}") from None
        import sys

        print(f"sample sheet '{path}': not UTF-8 (line {line}); read as Windows-1252, the encoding of Excel's "
              "'Text (Tab delimited)'. Save it as UTF-8 to be sure of the names", file=sys.stderr)
        return text


def _sheet_table(path, numbered):
    """The sheet's cells (``numbered``: its (line number, text) lines, header first) as a table
    of text.  Empty cells after the last named column (trailing tabs) and columns with neither
    a name nor a value are dropped; a value in a column without a name, or past the header's
    last column, is refused naming the line."""
    import csv

    rows = [(number, [cell.strip() for cell in cells])
            for (number, _), cells in zip(numbered, csv.reader([line for _, line in numbered], delimiter="\t"))]
    header = [name.lower() for name in rows[0][1]]      # 'Sample', 'N_clusters' as spreadsheets capitalise
    while header and not header[-1]:
        header.pop()
    body = []
    for number, cells in rows[1:]:
        extra = [cell for cell in cells[len(header):] if cell]
        if extra:
            raise WorkflowError(f"sample sheet '{path}', line {number}: a value past the header's last column "
                                f"('{header[-1]}'): '{extra[0]}'. Fix: delete the cells after the last named column, "
                                "or name their column in the header")
        body.append((number, cells[:len(header)] + [""] * (len(header) - len(cells))))
    for i, name in enumerate(header):
        filled = [(number, cells[i]) for number, cells in body if cells[i]]
        if not name and filled:
            raise WorkflowError(f"sample sheet '{path}', line {filled[0][0]}: column {i + 1} has no name in the "
                                f"header but holds '{filled[0][1]}'. Fix: name the column in the header, or delete it")
        if name and header.index(name) != i:
            raise WorkflowError(f"sample sheet '{path}': column '{name}' appears twice in the header. "
                                "Fix: keep one of them")
    keep = [i for i, name in enumerate(header) if name]
    return pd.DataFrame([[cells[i] for i in keep] for _, cells in body], columns=[header[i] for i in keep], dtype=str)


def _read_samples(path):
    if not os.path.isfile(path):
        raise WorkflowError(
            f"sample sheet '{path}' not found. Fix: set 'samples' in the config to a TSV with "
            "columns sample, path, format, n_clusters, truth"
        )
    # Every cell as text ('01' stays '01', 'NA' stays 'NA'), a byte-order mark and Windows line
    # ends dropped, spaces around cells stripped; a line starting with '#' is a comment ('#'
    # inside a path is kept).
    numbered = [(number, line) for number, line in enumerate(_sheet_text(path).splitlines(), 1)
                if line.strip() and not line.lstrip().startswith("#")]
    if len(numbered) < 2:
        raise WorkflowError(f"sample sheet '{path}' has no slides. Fix: add a header line (sample, path, format, "
                            "n_clusters, truth) and one row per slide")
    if "\t" not in numbered[0][1] and ("," in numbered[0][1] or ";" in numbered[0][1]):
        raise WorkflowError(f"sample sheet '{path}' is not tab-separated (its header is '{numbered[0][1].strip()}'). "
                            "Fix: save it as tab-separated text (TSV)")
    table = _sheet_table(path, numbered)
    for column in ("sample", "path", "format", "n_clusters"):
        if column not in table.columns:
            raise WorkflowError(f"sample sheet '{path}': column '{column}' is missing. "
                                "Fix: the columns are sample, path, format, n_clusters, truth")
    check_names("sample id", table["sample"].tolist(), f"sample sheet '{path}'")
    if "group" not in table.columns:
        table["group"] = ""
    for column in ("format", "values"):        # 'Visium', 'H5AD' mean visium, h5ad
        if column in table.columns:
            table[column] = table[column].str.lower()
    table["path"] = [os.path.expanduser(p) for p in table["path"]]
    # n_clusters: a number ('7', or '7.0' as spreadsheets write it), or 'auto'
    table["n_clusters"] = [int(float(v)) if re.fullmatch(r"-?\d+(\.0*)?", v) else v.lower()
                           for v in table["n_clusters"]]
    try:
        validate(table, "../schemas/samples.schema.yaml")
    except WorkflowError as exc:
        raise WorkflowError(f"sample sheet '{path}' is invalid: {_schema_problem(exc)}. "
                            "Fix: see schemas/samples.schema.yaml") from None
    data_dir = config.get("data_dir") or ""
    if data_dir:  # relative slide paths are read from the data folder
        table["path"] = [p if os.path.isabs(p) else os.path.join(data_dir, p) for p in table["path"]]
    return table.set_index("sample", drop=False)


def _check_train_from(methods):
    for name, spec in methods.items():
        source = spec.get("train_from")
        if source is None:
            continue
        if source not in methods:
            raise WorkflowError(f"method '{name}': train_from '{source}' is not a method in the config. "
                                f"Fix: use one of {sorted(m for m in methods if m != name)}")
        if source == name or methods[source].get("train_from") is not None:
            raise WorkflowError(f"method '{name}': train_from '{source}' must name a method that trains "
                                "itself. Fix: point train_from at a method without train_from")


def _check_settings():
    """Config values the schema cannot judge alone but a later step would refuse."""
    graph = config["graph"]
    if graph["mode"] == "radius" and graph.get("radius") is None:
        raise WorkflowError("config: graph.mode is radius but graph.radius is not set. Fix: set graph.radius "
                            "(in the units of the slides' coordinates) or use graph.mode knn")
    largest = max([int(k) for k in samples["n_clusters"] if k != "auto"], default=2)
    for method in METHODS:
        cluster = merged("cluster", method)
        where = f"config: method '{method}'" if config["methods"][method].get("cluster") else "config"
        lo, hi = cluster["auto_range"]
        if lo > hi:
            raise WorkflowError(f"{where}: cluster.auto_range {[lo, hi]} runs from high to low. "
                                f"Fix: write it as [{hi}, {lo}]")
        most = max(largest, hi if (samples["n_clusters"] == "auto").any() else 2)
        if cluster["method"] == "mclust" and cluster["subset"] <= most:
            raise WorkflowError(f"{where}: cluster.subset {cluster['subset']} must exceed the largest number of "
                                f"domains asked for ({most}). Fix: raise cluster.subset (mclust's default: 2000)")
        if cluster["method"] == "own" and not facts_of(source_method(method)).own_labels:
            raise WorkflowError(f"{where}: cluster.method own, but model "
                                f"'{method_model_of(source_method(method))}' has no clustering of its own. "
                                "Fix: use it with a model that clusters itself ("
                                + ", ".join(m for m, f in REGISTRY.items() if f.own_labels) + "), "
                                "or another cluster.method")
    for key in ("figure_method", "baseline", "agreement_method"):     # (a missing ablation: the claim reads n/a)
        name = COMPARE.get(key)
        if key in _raw_compare and name not in METHODS:
            raise WorkflowError(f"config: compare.{key} '{name}' is not a method of the config. "
                                f"Fix: use one of {METHODS}")


def _read_groups(table, path):
    """The sheet's groups (slides trained as one: its `group` column), name -> slides in sheet
    order; each group also gets a row of its own in ``table`` (n_clusters, values, truth shared
    by its slides), so the stages after qc treat it as one more slide."""
    groups = {}
    for sample, group in zip(table["sample"], table["group"]):
        if group:
            groups.setdefault(group, []).append(sample)
    ids = {s.lower(): s for s in table["sample"]}
    rows = []
    for group, members in groups.items():
        where = f"sample sheet '{path}': group '{group}'"
        if group.lower() in ids:
            raise WorkflowError(f"{where} is also a sample id ('{ids[group.lower()]}'); both would write "
                                f"results/{group}/. Fix: rename the group")
        if len(members) < 2:
            raise WorkflowError(f"{where} has one slide ({members[0]}); a group trains several slides as one. "
                                "Fix: give another slide the same group, or leave the cell empty")
        part = table.loc[members]
        for column in ("n_clusters", "values"):
            if column in part and part[column].astype(str).nunique() > 1:
                raise WorkflowError(f"{where}: its slides differ in {column} ("
                                    + ", ".join(f"{s}: {v}" for s, v in part[column].items())
                                    + f"); one model and one clustering need one. Fix: give them the same {column}")
        rows.append({"sample": group, "path": "", "format": "group", "n_clusters": part["n_clusters"].iloc[0],
                     "truth": "truth" if "truth" in part and (part["truth"] != "").any() else "",
                     "values": part["values"].iloc[0] if "values" in part else "counts", "group": ""})
    if rows:
        table = pd.concat([table, pd.DataFrame(rows).set_index("sample", drop=False)])
    return table, groups


samples = _read_samples(config["samples"])
SAMPLES = samples["sample"].tolist()        # the slides of the sheet
samples, GROUPS = _read_groups(samples, config["samples"])
# What the stages after qc run on: every slide, then every group (its slides trained as one).
UNITS = SAMPLES + list(GROUPS)
check_names("method", list(config["methods"]), "config 'methods'")
check_names("simulated slide", list(config.get("simulate") or {}), "config 'simulate'")
METHODS = list(config["methods"])
SEEDS = [int(s) for s in config["seeds"]]
_check_train_from(config["methods"])
# Named combinations of methods (config `ensembles`): name -> the methods whose labelings are combined.
ENSEMBLES = {name: list(spec["methods"]) for name, spec in (config.get("ensembles") or {}).items()}
check_names("method", list(ENSEMBLES), "config 'ensembles'")
for _name, _members in ENSEMBLES.items():
    if _name in config["methods"]:
        raise WorkflowError(f"config: ensemble '{_name}' is also a method; both would write results/<sample>/{_name}/. "
                            "Fix: rename the ensemble")
    _unknown = [m for m in _members if m not in config["methods"]]
    if _unknown:
        raise WorkflowError(f"config: ensemble '{_name}' names {_unknown}, which are not methods of the config. "
                            f"Fix: use methods of the config ({', '.join(config['methods'])})")


wildcard_constraints:
    sample="|".join(re.escape(s) for s in UNITS) or "NONE",
    method="|".join(re.escape(m) for m in METHODS),
    ensemble="|".join(re.escape(e) for e in ENSEMBLES) or "NONE",
    seed=r"\d+",


def sample_row(wildcards):
    return samples.loc[wildcards.sample]


def slide_n_clusters(sample):
    """The slide's n_clusters: a number, or 'auto' (chosen by BIC in the cluster step)."""
    value = samples.loc[sample, "n_clusters"]
    return value if value == "auto" else int(value)


def slide_values(wildcards):
    """What the slide's X holds (the sample sheet's `values`: counts, normalized, log_normalized)."""
    return sample_row(wildcards).get("values") or "counts"


def _load_stdlib(name):
    """stcore/<name>.py on its own (a module of the standard library only; the Snakefile does not
    import stcore and its scientific stack)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(f"_stcore_{name}", os.path.join(workflow.basedir, "stcore", f"{name}.py"))
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded         # dataclasses look their module up while the class is made
    spec.loader.exec_module(loaded)
    return loaded


FORMATS = _load_stdlib("formats")
# What the workflow knows of each method model, declared once in the registry.
REGISTRY = _load_stdlib("registry").METHODS
# The slides the simulate rule writes (a sample sheet may name them before they exist).
SIMULATED = {os.path.normpath(f"results/simulated/{name}.h5ad") for name in config.get("simulate") or {}}


def raw_input(wildcards):
    """Every file the slide's reader opens (Visium positions, scale factors and images
    included), as far as they exist now.  A slide whose files are missing declares none: its qc
    job then fails with the reader's one-line message, and --keep-going finishes the others."""
    row = sample_row(wildcards)
    files = FORMATS.slide_files(row["path"], row["format"])
    if not files and os.path.normpath(row["path"]) in SIMULATED:
        return [row["path"]]            # made by the simulate rule
    return files


_STAMPS = {}
INPUT_STAMP = "results/records/input/{sample}.json"


def input_stamp(wildcards):
    """results/records/input/<sample>.json: the sha256 of the slide's files (its input_sha256), checked
    on every run and rewritten only when it changed, so a slide replaced by other content reruns
    whatever the files' modification times (cp -p, rsync -a, tar x and unzip keep older ones).
    An unchanged file is not read again (its size, mtime, inode and ctime are kept in the stamp).
    None for a slide without files yet (its qc job names what is missing) or made by the
    simulate rule (the DAG tracks it)."""
    sample = wildcards.sample
    if sample not in _STAMPS:
        row = sample_row(wildcards)
        made_here = os.path.normpath(row["path"]) in SIMULATED
        _STAMPS[sample] = None if made_here else FORMATS.digest_stamp(row["path"], row["format"],
                                                                       INPUT_STAMP.format(sample=sample))
    return _STAMPS[sample] or []


# Where things go, written once.  RUN: the folder of one (slide, method, seed) run.
# RECORD: Snakemake's time and memory record of one job (its `benchmark:` file).
RUN = "results/{sample}/{method}/seed{seed}"
RECORD = "results/records/{stage}/{job}.tsv"


def run_file(name, sample="{sample}", method="{method}", seed="{seed}"):
    """Path of file ``name`` of one run (wildcards left in by default)."""
    return f"{RUN}/{name}".format(sample=sample, method=method, seed=seed)


def record_file(stage, job):
    """Path of the time and memory record of job ``job`` of ``stage``."""
    return RECORD.format(stage=stage, job=job)


RUN_JOB = "{sample}.{method}.seed{seed}"   # a run's job name in its records
# The consensus of a (slide, method)'s seed labelings (rules/consensus.smk), beside its runs.
CONSENSUS = "results/{sample}/{method}/consensus"


def consensus_file(name, sample="{sample}", method="{method}"):
    """Path of file ``name`` of a (slide, method)'s consensus (wildcards left in by default)."""
    return f"{CONSENSUS}/{name}".format(sample=sample, method=method)


def merged(stage, method):
    """Settings of ``stage`` ('train' or 'cluster') for ``method``: the config's block with the
    method's own overrides on top."""
    return dict(config[stage], **config["methods"][method].get(stage, {}))


def method_params(stage):
    """Input function: :func:`merged` for the job's method."""
    return lambda wildcards: merged(stage, wildcards.method)


def method_model(wildcards):
    return method_model_of(wildcards.method)


def method_seeds(method):
    """The method's own ``seeds`` when it sets them, else the config's."""
    return [int(s) for s in config["methods"][method].get("seeds", SEEDS)]


def method_samples(method):
    """The slides the method runs on: its own ``samples`` when it sets them (else those of its
    train_from), else every slide of the sheet."""
    spec = config["methods"][method]
    chosen = spec.get("samples") or config["methods"][spec.get("train_from", method)].get("samples")
    # Groups train with the methods that allow them only: a peer builds its own graph from
    # coordinates, which would join the slides of a group.
    units = UNITS if facts_of(source_method(method)).allows_groups else SAMPLES
    if not chosen:
        return units
    unknown = sorted(set(chosen) - set(units))
    if unknown:
        raise WorkflowError(f"method '{method}': samples {unknown} are not in the sample sheet"
                            + (" (groups run the built-in models only)" if set(unknown) & set(GROUPS) else "")
                            + f". Fix: use ids of the sheet ({', '.join(units)})")
    return [s for s in units if s in chosen]


def source_method(method):
    """The method whose trained model ``method`` clusters: its ``train_from``, else itself."""
    return config["methods"][method].get("train_from", method)


def train_output(name):
    """Input function: file ``name`` of the training run that ``wildcards.method`` uses."""
    return lambda wildcards: run_file(name, wildcards.sample, source_method(wildcards.method), wildcards.seed)


def run_outputs(name, methods=None):
    """One file ``name`` per (sample, method, seed of that method)."""
    return [run_file(name, sample, method, seed)
            for method in (methods or METHODS) for sample in method_samples(method) for seed in method_seeds(method)]


def consensus_outputs(name):
    """One file ``name`` per (sample, method) whose seeds are combined (two seeds or more)."""
    if not config["consensus"]:
        return []
    return [consensus_file(name, sample, method)
            for method in METHODS if len(method_seeds(method)) > 1 for sample in method_samples(method)]


def ensemble_samples(name):
    """The slides every method of ensemble ``name`` runs on (sheet order)."""
    members = [set(method_samples(m)) for m in ENSEMBLES[name]]
    return [s for s in UNITS if all(s in m for m in members)]


def ensemble_outputs(name):
    """One file ``name`` per (sample, ensemble, seed)."""
    return [run_file(name, sample, ensemble, seed)
            for ensemble in ENSEMBLES for sample in ensemble_samples(ensemble) for seed in ensemble_seeds(ensemble)]


def ensemble_seeds(name):
    """The seeds every method of ensemble ``name`` runs (the first method's order)."""
    return [s for s in method_seeds(ENSEMBLES[name][0]) if all(s in method_seeds(m) for m in ENSEMBLES[name])]


def seed_param(wildcards):
    return int(wildcards.seed)


def method_model_of(method):
    return config["methods"][method].get("model", "graphst")


def facts_of(method):
    """The registry's facts of the model a config method trains (stcore/registry.py)."""
    return REGISTRY[method_model_of(method)]


def is_peer(method):
    """Whether the method's model is a published method from an optional extra."""
    return not facts_of(method).builtin


def train_settings(wildcards):
    """Input function: the train settings of the job's method (:func:`merged`).  A method whose
    own clustering searches for the slide's ``n_clusters`` gets it too; the others' settings are
    left as they were (so their finished runs stay up to date)."""
    settings = merged("train", wildcards.method)
    if facts_of(wildcards.method).wants_n_clusters and slide_n_clusters(wildcards.sample) != "auto":
        settings["n_clusters"] = slide_n_clusters(wildcards.sample)
    return settings


def env_for_train(wildcards):
    """Conda env of the train job: the method's own (envs/peers.yaml for the peers, on the CPU),
    else the CUDA env when train.device is cuda, else the CPU env."""
    env = facts_of(wildcards.method).env
    if env != "stcore":
        return f"../envs/{env}.yaml"
    return "../envs/stcore-cuda.yaml" if str(config["train"]["device"]).startswith("cuda") else "../envs/stcore.yaml"


# ---------------------------------------------------------------------------------------
# Cluster resources: memory and wall time from the size of the slide.
#
# Snakemake evaluates these when a job is ready to run (its input exists); a dry run shows
# them as <TBD>.  A retry (profiles set `retries`) comes back with `attempt` 2, 3, ... and
# asks for `attempt` times the memory and time, so a job killed for either gets more.
# The sizes come from the .h5ad / 10x .h5 header (spots x genes) without loading the
# matrix; the file size stands in when the header cannot be read.  Coefficients: measured
# peaks (max_rss of the records in results/records/) on the demo slides (2,000 spots x 3,000 genes) were
# qc 0.33 GB, hvg 0.50 GB, train 0.64 GB (about 0.35 GB of it Python and torch), and 600
# epochs of train took 38 s on 2 cores; the formulas below leave several-fold headroom
# on top and grow linearly with the dense spots x genes matrix that train holds.
# ---------------------------------------------------------------------------------------

_BASE_MB = 1024  # interpreter, numpy, scanpy and torch


def _file_mb(path):
    """Size of ``path`` in MiB; FileNotFoundError (name = path) while it does not exist yet,
    which Snakemake turns into <TBD>."""
    return os.path.getsize(path) / 2**20


def slide_shape(path):
    """(spots, genes) of an .h5ad or 10x .h5 file from its header, or None."""
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            if "matrix" in fh and "shape" in fh["matrix"]:  # 10x: genes x barcodes
                genes, spots = (int(v) for v in fh["matrix"]["shape"][:2])
                return spots, genes
            x = fh["X"]
            shape = x.shape if isinstance(x, h5py.Dataset) else x.attrs["shape"]
            return int(shape[0]), int(shape[1])
    except (OSError, KeyError, ValueError, TypeError, IndexError):
        return None


def _files_mb(paths):
    """Total MiB of the files ``paths`` (a slide's inputs; none when its files are missing)."""
    return sum(_file_mb(str(p)) for p in ([paths] if isinstance(paths, str) else paths))


def _dense_mb(path):
    """MiB of the slide as a dense float32 spots x genes matrix (file size as fallback)."""
    size = _file_mb(path)
    shape = slide_shape(path)
    if shape is None:
        return 4 * size
    return shape[0] * shape[1] * 4 / 2**20


def slide_nnz(path):
    """Stored entries of an .h5ad's X from its header (spots x genes when X is dense), or None."""
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            x = fh["X"]
            return int(x.shape[0] * x.shape[1]) if isinstance(x, h5py.Dataset) else int(x["data"].shape[0])
    except (OSError, KeyError, ValueError, TypeError, IndexError):
        return None


def _matrix_mb(path):
    """MiB of the slide's X in memory as the steps hold it: float32 CSR with int32 indices
    (8 bytes per stored entry), or dense float32; the dense size when the header says nothing."""
    nnz = slide_nnz(path)
    return _dense_mb(path) if nnz is None else min(8 * nnz / 2**20, _dense_mb(path))


def _train_epochs(wildcards):
    settings = merged("train", wildcards.method)
    if is_peer(wildcards.method):   # the peer's own epoch setting (stcore/peers.py), else its longest default
        peer = settings.get("peer") or {}
        return int(max([peer[k] for k in ("epochs", "n_epochs", "max_epochs") if k in peer] or [1000]))
    return int(settings.get("epochs", 600))


def _peer_dense_mb(wildcards, path):
    """Methods that hold dense spots x spots matrices (distances, adjacency: the GraphST package
    and SpaGCN; the registry's dense_spots): budget eight in float64.  Nothing for the others."""
    if not facts_of(wildcards.method).dense_spots:
        return 0
    shape = slide_shape(path)
    return 0 if shape is None else 8 * 8 * shape[0] ** 2 / 2**20


def qc_mem_mb(wildcards, input, attempt):
    """qc reads the raw counts (sparse) and writes a filtered copy."""
    return int(attempt * (_BASE_MB + 8 * _files_mb(input.raw)))


def qc_runtime(wildcards, input, attempt):
    """Minutes: reading and filtering run at well over 50 MiB per minute."""
    return int(attempt * (10 + _files_mb(input.raw) / 50))


def hvg_mem_mb(wildcards, input, attempt):
    """hvg holds the counts, scanpy's float64 copies of them for seurat_v3 and the transform's
    (measured: 3.2 times X in memory at 1,000,000 spots; budget 6)."""
    return int(attempt * (_BASE_MB + 6 * _matrix_mb(str(input.h5ad))))


def hvg_runtime(wildcards, input, attempt):
    return int(attempt * (10 + _file_mb(str(input.h5ad)) / 50))


def train_mem_mb(wildcards, input, attempt):
    """train holds X as read (sparse), the features the model reads (CSR with its transpose
    when X is sparse enough, the input PCA scores, or X dense), the graph, and per spot the
    N x d activations of one epoch (measured: about 23 x d floats a spot at 1,000,000 spots;
    budget 40 x d).  The peers densify: ten dense copies plus their spots x spots matrices."""
    h5ad = str(input.h5ad)
    graph = 4 * _file_mb(str(input.graph))
    if is_peer(wildcards.method):
        return int(attempt * (_BASE_MB + 10 * _dense_mb(h5ad) + graph + _peer_dense_mb(wildcards, h5ad)))
    shape, x_mb = slide_shape(h5ad), _matrix_mb(h5ad)
    if shape is None:
        return int(attempt * (_BASE_MB + 10 * _dense_mb(h5ad) + graph))
    settings = merged("train", wildcards.method)
    pcs = settings.get("input_pcs")
    if pcs:
        features = 2 * shape[0] * pcs * 4 / 2**20 + (shape[1] ** 2) * 8 / 2**20      # scores; G x G covariance
    elif x_mb < 0.15 * 2 * _dense_mb(h5ad):                 # SPARSE_FEATURES_MAX_DENSITY, by bytes
        features = 2 * x_mb
    else:
        features = _dense_mb(h5ad)
    activations = shape[0] * 40 * int(settings.get("n_latent", 64)) * 4 / 2**20
    return int(attempt * (_BASE_MB + x_mb + features + activations + graph))


def train_runtime(wildcards, input, attempt):
    """Minutes on CPU (and at least 15).  The built-in models: an epoch took 1-2e-5 s per spot on
    2 cores from DLPFC to 1,000,000 spots (benchmarks/README.md); budget 5e-5.  The peers: about
    2.4e-8 s per epoch x spot x gene was measured on 2 cores; budget 1e-7."""
    shape = slide_shape(str(input.h5ad))
    if shape is None:
        spots, genes = _dense_mb(str(input.h5ad)) * 2**20 / 4, 1
    else:
        spots, genes = shape
    per_epoch = spots * genes * 1e-7 if is_peer(wildcards.method) else spots * 5e-5
    return int(attempt * (15 + _train_epochs(wildcards) * per_epoch / 60))


def train_gpus(wildcards):
    """One GPU for train when the run trains on CUDA (the switch that also picks the CUDA env);
    none for the peers, which run on the CPU."""
    return 1 if str(config["train"]["device"]).startswith("cuda") and not is_peer(wildcards.method) else 0


# When jobs fail, repeat the one-line message each failed step wrote to its log (bad input,
# diverged training) at the end of the console output, where the user looks first.
import sys as _sys
import time as _time

_RUN_STARTED = _time.time()


def _failed_jobs(snakemake_logs):
    """(rule, log file) of every job that failed, from Snakemake's own log of the run."""
    jobs = []
    for path in snakemake_logs or ():
        try:
            with open(path, errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        for step, block in re.findall(r"^Error in rule\s(\S+):\n((?:[ \t]+.*\n?)*)", text, re.M):
            found = re.search(r"^\s+log: ([^\s,]+)", block, re.M)
            if found and (step, found.group(1)) not in jobs:
                jobs.append((step, found.group(1)))
    return jobs


def _job_sample(step, log):
    """The slide (or 'all') of a job, from its log's name (rules/*.smk: logs/<step>/<sample>[.<method>[.seed<seed>]].log)."""
    stem = os.path.basename(log)[:-len(".log")] if log.endswith(".log") else os.path.basename(log)
    if os.path.normpath(os.path.dirname(log)) == "logs":
        return "all"
    if step in ("qc", "hvg", "graph", "group", "simulate"):
        return stem
    return re.sub(r"\.[A-Za-z0-9_-]+(\.seed\d+|\.consensus)?$", "", stem)


def _failure_lines(since, log_dir="logs", snakemake_logs=()):
    """One line per failed job: the ERROR line its step wrote to its log; for a job that died
    without one (killed, out of memory), a line naming its log, slide and step."""
    lines, named = [], set()
    for root, _, files in os.walk(log_dir):
        for name in sorted(files):
            path = os.path.join(root, name)
            if not name.endswith(".log") or os.path.getmtime(path) < since:
                continue
            with open(path, errors="replace") as fh:
                found = [f"{path}: {line.split(' ERROR stcore: ', 1)[1].rstrip()}"
                         for line in fh if " ERROR stcore: " in line]
            if found:
                named.add(os.path.normpath(path))
            lines += found
    for rule, log in _failed_jobs(snakemake_logs):
        if os.path.normpath(log) in named:
            continue
        try:
            with open(log, errors="replace") as fh:
                last = [line.strip() for line in fh if line.strip()][-1:]
        except OSError:
            last = []
        cause = (f"the job ended without an error message; its log ends: {last[0][:300]}" if last else
                 "the job ended with an empty log (killed, or out of memory?); its error is in the console output above")
        line = f"sample '{_job_sample(rule, log)}', step '{rule}': {cause}"
        lines.append(f"{log}: {line}")
        if not last:            # the log says so too
            try:
                with open(log, "a") as fh:
                    fh.write(f"{_time.strftime('%Y-%m-%d %H:%M:%S')} ERROR stcore: {line}\n")
            except OSError:
                pass
    return lines


onerror:
    for _line in _failure_lines(_RUN_STARTED, snakemake_logs=log):
        print(f"FAILED {_line}", file=_sys.stderr)


# ---------------------------------------------------------------------------------------
# The results table (rules/table.smk) and, for labelled slides, the comparison's figures and
# R agreement (rules/report.smk, rules/agreement.smk); settings under the config's `compare:`.
# ---------------------------------------------------------------------------------------
COMPARE = config.get("compare", {})
FIGURE_METHOD = COMPARE.get("figure_method", "graphst")
AGREEMENT_METHOD = COMPARE.get("agreement_method")
# Methods that train a graph model themselves: their loss curves are drawn.
LOSS_METHODS = [m for m, spec in config["methods"].items()
                if "train_from" not in spec and spec.get("model", "graphst") == "graphst"]


def table_runs():
    """Every (slide, method, seed) with the files its row of the results table is read from:
    the evaluate step's metrics, the labels, and the train and cluster jobs' records."""
    runs = []
    for sample in UNITS:
        for method in METHODS:
            if sample not in method_samples(method):
                continue
            source = source_method(method)
            for seed in method_seeds(method):
                runs.append({
                    "sample": sample, "group": sample if sample in GROUPS else "", "method": method, "seed": seed,
                    "trained_by": source,
                    "metrics": run_file("metrics.tsv", sample, method, seed),
                    "labels": run_file("labels.tsv", sample, method, seed),
                    "train_record": record_file("train", RUN_JOB.format(sample=sample, method=source, seed=seed)),
                    "cluster_record": record_file("cluster", RUN_JOB.format(sample=sample, method=method, seed=seed)),
                })
            if config["consensus"] and len(method_seeds(method)) > 1:
                runs.append({"sample": sample, "group": runs[-1]["group"], "method": method, "seed": "consensus",
                             "trained_by": source, "metrics": consensus_file("metrics.tsv", sample, method),
                             "labels": consensus_file("labels.tsv", sample, method),
                             "train_record": None, "cluster_record": None})
    for name, members in ENSEMBLES.items():
        for sample in ensemble_samples(name):
            for seed in ensemble_seeds(name):
                runs.append({"sample": sample, "group": sample if sample in GROUPS else "", "method": name,
                             "seed": seed, "trained_by": "+".join(members), "members": members,
                             "metrics": run_file("metrics.tsv", sample, name, seed),
                             "labels": run_file("labels.tsv", sample, name, seed),
                             "train_record": None, "cluster_record": None})
    return runs


def agreement_runs():
    """(slide, seed) runs of the agreement method, with the files its features come from."""
    if AGREEMENT_METHOD is None or AGREEMENT_METHOD not in METHODS:
        return []
    source = source_method(AGREEMENT_METHOD)
    return [{"sample": s, "seed": seed, "truth": samples.loc[s, "truth"],
             "n_clusters": slide_n_clusters(s),
             "npz": run_file("train.npz", s, source, seed), "hvg": f"results/{s}/hvg.h5ad"}
            for s in SAMPLES for seed in method_seeds(AGREEMENT_METHOD)
            if slide_n_clusters(s) != "auto"]     # the agreement compares clusterings at one G


def compare_figures(kind, enabled=True):
    """One figure ``kind`` per slide, flagged for the HTML report."""
    if not enabled:
        return []
    return [report(f"results/compare/figures/{kind}_{s}.png", category="Figures", subcategory=kind,
                   labels={"slide": s, "figure": kind}) for s in SAMPLES]


_check_settings()
TABLE_RUNS = table_runs()
AGREEMENT_RUNS = agreement_runs()

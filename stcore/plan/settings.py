"""Config values as the schema means them, and the allocator the jobs preload."""
from __future__ import annotations

import math
import os
import re

from ..registry import PEER_SETTINGS
from . import PlanError


def as_schema_types(value, schema, root):
    """``value`` with each setting made what the schema types it as, where it plainly is one:
    a float that is a whole number (20.0, as a program or a spreadsheet may write it) where the
    schema means an integer (JSON Schema's integer type accepts 20.0, but range() and array sizes
    do not), and text that reads as a number or a boolean where the schema means one: snakemake
    reads the values inside ``--config train='{epochs: 20}'`` as text ('20'), and ``--config consensus=no``
    as 'no' (False in a config file).  Anything else is
    left for the schema to refuse, naming the key (20.5 as an integer, 'many')."""
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if isinstance(value, str) and {"integer", "number", "boolean"} & set(kinds):
        value = _text_as(value, kinds)
    if isinstance(value, float) and value.is_integer() and "integer" in kinds and "number" not in kinds:
        return int(value)
    if isinstance(value, dict):
        extra = schema.get("additionalProperties")
        return {key: as_schema_types(item, schema.get("properties", {}).get(
            key, extra if isinstance(extra, dict) else {}), root) for key, item in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [as_schema_types(item, schema["items"], root) for item in value]
    return value


def peer_types(config, peer_settings):
    """``config`` with the values of its peer blocks (``train.peer``, a method's ``train.peer``) made
    what the package's default of the same key is (``peer_settings``:
    :data:`stcore.registry.PEER_SETTINGS`), where they are text that plainly reads as one: snakemake
    reads ``--config methods='{st: {model: stagate, train: {peer: {n_epochs: 500}}}}'`` as '500', which
    the schema cannot type (a peer block's keys are its package's), so the peer was given text and its
    job's settings differed from the same value in a config file.  The config's own block is typed by
    the first peer that takes the key; a key no peer takes is left for the plan to refuse."""
    def typed(value, default):
        if isinstance(value, list) and isinstance(default, list) and default:
            return [typed(item, default[0]) for item in value]
        if not isinstance(value, str) or isinstance(default, str):
            return value
        if default is None and value.strip().lower() in ("null", "none", "~"):
            return None
        kinds = (["boolean"] if isinstance(default, bool) else ["integer"] if isinstance(default, int)
                 else ["number"] if isinstance(default, float) else ["integer", "number"] if default is None else [])
        return _text_as(value, kinds) if kinds else value

    def block(peer, models):
        if not isinstance(peer, dict):
            return peer
        out = {}
        for key, value in peer.items():
            known = [peer_settings[m][key] for m in models if key in peer_settings.get(m, {})]
            out[key] = typed(value, known[0]) if known else value
        return out

    config = dict(config)
    train = config.get("train")
    if isinstance(train, dict) and "peer" in train:
        config["train"] = dict(train, peer=block(train["peer"], list(peer_settings)))
    methods = config.get("methods")
    if isinstance(methods, dict):
        config["methods"] = {name: (dict(spec, train=dict(spec["train"], peer=block(spec["train"]["peer"],
                                                                                       [spec.get("model", "graphst")])))
                                    if isinstance(spec, dict) and isinstance(spec.get("train"), dict)
                                    and "peer" in spec["train"] else spec)
                             for name, spec in methods.items()}
    return config


def _text_as(text, kinds):
    """``text`` as the first of the schema's ``kinds`` (integer, number, boolean) it reads as, else as it is."""
    stripped = text.strip()
    if "boolean" in kinds and stripped.lower() in ("true", "false", "yes", "no", "on", "off"):
        return stripped.lower() in ("true", "yes", "on")       # as the same word in a YAML config file reads
    if "integer" in kinds and re.fullmatch(r"[+-]?\d+", stripped):
        return int(stripped)
    if "number" in kinds or "integer" in kinds:
        try:
            number = float(stripped)
        except ValueError:
            return text
        return number if math.isfinite(number) else text
    return text


def text_fix(value, validator, expected):
    """The fix for a config value YAML read as a number or a boolean where the schema wants text
    (jsonschema's ``validator`` 'type', ``expected`` 'string'), or None: a sample id 151673 in a
    method's ``samples`` is read as a number (07 as 7), ``flavor: no`` as False."""
    kinds = expected if isinstance(expected, list) else [expected]
    if validator != "type" or "string" not in kinds:
        return None
    if isinstance(value, bool):
        return (f"{value} is a boolean, where text is needed: YAML reads an unquoted yes, no, on, off, true or "
                "false as one. Fix: quote the word meant (e.g. 'no')")
    if isinstance(value, (int, float)):
        return (f"{value} is a number, where text is needed: YAML reads unquoted digits as a number (and 07 as 7). "
                f"Fix: quote it as the sample sheet or config writes it (e.g. '{value}')")
    return None


def key_fix(value, validator, allowed, message):
    """The fix for a config key written near one the schema has, or None: ``seed`` for ``seeds``,
    ``qc: {min_count: 3}`` for ``min_counts`` (jsonschema's ``validator`` 'additionalProperties';
    ``allowed``: the keys at that place; ``message``: jsonschema's)."""
    import difflib

    if validator != "additionalProperties" or not isinstance(value, dict) or not allowed:
        return None
    near = {key: difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.75)
            for key in value if key not in allowed}
    near = {key: match[0] for key, match in near.items() if match}
    if not near:
        return None
    return f"{message}. Fix: write " + ", ".join(f"{meant} for {key}" for key, meant in near.items())


def shape_fix(value, validator, expected, path, models=("graphst", "expression")):
    """The fix for a named set written in another shape than the schema's mapping of names, or None:
    ``methods: [graphst, expression]`` (a list of names), ``ensembles: {e: [a, b, c]}``, a method with
    nothing under its name (``graphst:`` alone).  ``path``: the key's place, as jsonschema gives it;
    ``models``: the registry's model names."""
    if validator != "type" or expected != "object" or not path or path[0] not in ("methods", "ensembles"):
        return None
    names = value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None
    if path == ["methods"] and names:
        entries = ", ".join(f"{n}: {{model: {n if n in models else 'graphst'}}}" for n in names)
        return (f"{value} is a list of names, but each method is a named entry with its model. "
                f"Fix: write methods: {{{entries}}}")
    if path == ["ensembles"] and names:
        return (f"{value} is a list, but each combination is named. Fix: write ensembles: "
                f"{{combined: {{methods: [{', '.join(names)}]}}}}")
    if len(path) == 2 and path[0] == "ensembles" and names:
        return (f"{value} is a list, but a combination names its methods under methods:. Fix: write "
                f"{path[1]}: {{methods: [{', '.join(names)}]}}")
    if len(path) == 2 and path[0] == "methods" and value is None:
        return (f"nothing is given under the method's name. Fix: give it its model, e.g. {path[1]}: "
                f"{{model: {path[1] if path[1] in models else 'graphst'}}}")
    return None


# Keys renamed: block -> {old key: new key}.  "method" names a config's methods only; the
# clustering algorithm is cluster.algorithm.
RENAMED = {"cluster": {"method": "algorithm"}}


def renamed_key(block, where):
    """The message for a renamed key that settings block ``block`` (``where``: its place, e.g.
    'cluster' or 'methods.x.cluster') still uses, or None."""
    stage = where.rsplit(".", 1)[-1]
    for old, new in RENAMED.get(stage, {}).items():
        if isinstance(block, dict) and old in block:
            return (f"{where}.{old} is now {where}.{new}. "
                    f"Fix: write {where}: {{{new}: {block[old]}}}")
    return None


def repeated_key(path):
    """The message for the first key that a mapping of the YAML config file ``path`` holds twice, or
    None.  YAML loaders keep the last of the two without a word, so a second ``train:`` block drops
    the first's settings and a method named twice runs once, as the last one says.  (PyYAML, which
    Snakemake reads config files with, is imported here only.)"""
    import yaml

    try:
        with open(path, encoding="utf-8-sig") as fh:
            root = yaml.compose(fh)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None                            # Snakemake itself names a file it cannot read

    def first(node, where):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    name = f"{where}.{key.value}" if where else key.value
                    if (key.tag, key.value) in seen:
                        lines = sorted({seen[key.tag, key.value], key.start_mark.line + 1})
                        fix = (f"merge the two {name} blocks into one"
                               + (", or rename one" if where in NAMED_SETS else "")
                               if isinstance(value, yaml.MappingNode) else f"delete one of the two {name}")
                        return (f"config file '{path}': {name} is given twice "
                                f"(line{'s' if len(lines) > 1 else ''} {' and '.join(map(str, lines))}); YAML keeps "
                                f"the second only, so what the first holds would be ignored without a word. Fix: {fix}")
                    seen[key.tag, key.value] = key.start_mark.line + 1
                found = first(value, f"{where}.{key.value}" if where else str(key.value))
                if found:
                    return found
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                found = first(item, f"{where}[{i}]")
                if found:
                    return found
        return None

    return first(root, "") if root is not None else None


NAMED_SETS = ("methods", "ensembles", "simulate")


def given_sets_replace(config: dict, given: dict, command_line: dict | None = None) -> dict:
    """``config`` with each named set (``NAMED_SETS``) that the user's ``--configfile`` / ``--config``
    (``given``, snakemake's merge of them) holds taken from ``given`` alone, and one that ``--config``
    (``command_line``, its values alone) names taken from ``command_line`` alone.  Snakemake merges a
    config file onto ``config.yaml`` key by key, and ``--config`` onto the config files, so ``methods:
    {graphst, banksy, cellcharter}`` would run the demo's ``expression`` baseline too, and ``--config
    methods='{graphst: {}}'`` beside a ``--configfile`` every method of that file; the last place that
    lists the methods (or combinations, or simulated slides) means those.  Settings (``train``,
    ``cluster``, ...) still merge onto the defaults."""
    import copy

    given = dict(given) | {k: command_line[k] for k in NAMED_SETS if k in (command_line or {})}
    return config | {k: copy.deepcopy(given[k]) for k in NAMED_SETS if k in given}


def renamed_keys(config):
    """The message for the first renamed key anywhere in ``config`` (a stage's block or a
    method's own), or None."""
    places = [(stage, config.get(stage)) for stage in RENAMED]
    methods = config.get("methods")
    for name, spec in (methods.items() if isinstance(methods, dict) else ()):
        if isinstance(spec, dict):
            places += [(f"methods.{name}.{stage}", spec.get(stage)) for stage in RENAMED]
    return next((msg for where, block in places if (msg := renamed_key(block, where))), None)


def tcmalloc_library(choice):
    """The library the jobs preload for ``STCORE_MALLOC=choice``: ``tcmalloc`` (gperftools'
    libtcmalloc_minimal, found by the linker: Debian/Ubuntu libtcmalloc-minimal4) or its path;
    None for glibc's malloc (unset, empty or ``glibc``).  tcmalloc keeps freed memory in the
    process: the same numbers bit for bit and a peak up to 12 % higher (its 30-50 % shorter epochs
    at 10^5-10^6 spots were measured while each epoch allocated afresh), so it is a choice, not the default (benchmarks/README.md, "Smaller
    costs")."""
    import ctypes.util

    if choice in ("", "glibc"):
        return None
    lib = ctypes.util.find_library("tcmalloc_minimal") if choice == "tcmalloc" else choice
    if not lib or (choice != "tcmalloc" and not os.path.isfile(lib)):
        raise PlanError(f"STCORE_MALLOC={choice}: no tcmalloc library found. Fix: install it (Debian/Ubuntu: "
                        "apt-get install libtcmalloc-minimal4; conda: gperftools), give the path of "
                        "libtcmalloc_minimal.so, or unset STCORE_MALLOC")
    return lib


def allocator_environment(environ) -> dict:
    """The variables every job inherits for its allocator (changes no result, only the time).
    glibc serves every allocation above 32 MB with a fresh mmap and unmaps it when freed, so each
    large tensor of an epoch is faulted in and zeroed by the kernel page by page
    (benchmarks/README.md, "Smaller costs"): glibc's hugetlb tunable = 1 (glibc >= 2.35) backs those
    mappings with transparent huge pages; a hugetlb value the user set is kept.  With
    ``STCORE_MALLOC`` set, its tcmalloc is preloaded (quiet about its large allocations: at 10^6
    spots every large tensor is one)."""
    update = {}
    tunables = environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" not in tunables:
        update["GLIBC_TUNABLES"] = ":".join(t for t in (tunables, "glibc.malloc.hugetlb=1") if t)
    lib = tcmalloc_library(environ.get("STCORE_MALLOC", ""))
    if lib:
        if "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD" not in environ:
            update["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"] = str(1 << 40)
        preload = environ.get("LD_PRELOAD", "")
        if lib not in preload:
            update["LD_PRELOAD"] = ":".join(p for p in (preload, lib) if p)
    return update


def schema_problem(exc, message=None):
    """One line from a failed schema validation ``exc`` (jsonschema's error, or one raised while
    handling it, as Snakemake's validate raises): where, and what is wrong (``message``, else
    jsonschema's).  A data frame's row (Snakemake's 'row N of data frame') is named from 1."""
    err = exc if hasattr(exc, "absolute_path") else exc.__context__
    if not hasattr(err, "absolute_path"):
        return str(exc).splitlines()[0]
    where = ".".join(str(p) for p in err.absolute_path) or "top level"
    row = re.search(r"row (\d+) of data frame", str(exc))
    if row:
        where = f"row {int(row.group(1)) + 1}, column {where}"
    return f"{where}: {message or err.message}"


def checked_config(config, given, configfiles, schema_path, validate, models, command_line=None):
    """``config`` (Snakemake's merge of config.yaml, the ``--configfile`` s and ``--config``) as the
    plan reads it, and the ``compare:`` keys the user wrote; a :class:`PlanError` of one line for a
    config it cannot run.  ``given``: the user's ``--configfile`` / ``--config`` alone (Snakemake's
    ``overwrite_config``); ``configfiles``: the config files read; ``schema_path``: the config
    schema (YAML); ``validate(config)``: validates against it and fills in its defaults, raising
    jsonschema's error (or an error raised while handling it, as Snakemake's validate does);
    ``models``: the registry's model names; ``command_line``: ``--config``'s values alone.

    In order: a key given twice in a config file is refused, naming both lines; the user's named
    sets replace the demo's (:func:`given_sets_replace`); values are made what the schema types them
    as (:func:`as_schema_types`); a renamed key is refused with its new name; the schema validates,
    a value in another shape than it wants named with the fix (:func:`text_fix`, :func:`shape_fix`).
    ``methods`` is returned as the user wrote it, without the schema's defaults: a method's settings
    hold only what the user gave, on top of the config's blocks."""
    import copy

    import yaml

    for path in configfiles:
        twice = repeated_key(path)
        if twice:
            raise PlanError(twice)
    config = given_sets_replace(copy.deepcopy(dict(config)), given, command_line)
    with open(schema_path, encoding="utf-8") as fh:
        schema = yaml.safe_load(fh)
    config = as_schema_types(config, schema, schema)          # --config's '20' as 20, 20.0 as 20
    config = peer_types(config, PEER_SETTINGS)                # and a peer's n_epochs '500' as 500
    raw_methods = copy.deepcopy(config.get("methods"))
    raw_compare = copy.deepcopy(config.get("compare") or {})
    renamed = renamed_keys(config)
    if renamed:
        raise PlanError(f"config is invalid: {renamed}")
    try:
        validate(config)
    except Exception as exc:        # the validator's own error type (Snakemake's WorkflowError)
        err = exc if hasattr(exc, "absolute_path") else exc.__context__
        value, validator = getattr(err, "instance", None), getattr(err, "validator", None)
        expected = getattr(err, "validator_value", None)
        fix = (text_fix(value, validator, expected)
               or shape_fix(value, validator, expected, list(getattr(err, "absolute_path", [])), tuple(models))
               or key_fix(value, validator, (getattr(err, "schema", None) or {}).get("properties"),
                          getattr(err, "message", "")))
        if fix:
            raise PlanError(f"config is invalid: {schema_problem(exc, fix)}") from None
        raise PlanError(f"config is invalid: {schema_problem(exc)}. "
                        "Fix: see stcore/schemas/config.schema.yaml for the keys and their types") from None
    if raw_methods is not None:
        config["methods"] = raw_methods
    return config, raw_compare

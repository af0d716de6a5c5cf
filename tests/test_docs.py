"""The README and the docs name files of the repository and the tests that hold each claim
(docs/bad_input.md cites one or more a row).  A file moved or a test renamed leaves the doc pointing
at nothing; these tests name each such reference."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# what a newcomer reads: the README, every doc it links, and the measurement folders' READMEs
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "benchmarks" / "README.md",
        REPO / "studies" / "README.md", *sorted((REPO / "docs" / "compare").rglob("*.md"))]

# a path in `code` or a markdown link that starts at one of the repository's folders (not those a run or an
# install makes, which .gitignore names)
IGNORED = {ln.strip().strip("/") for ln in (REPO / ".gitignore").read_text().splitlines() if ln.strip().endswith("/")}
TOP = tuple(p.name + "/" for p in REPO.iterdir() if p.is_dir() and p.name != ".git" and p.name not in IGNORED)
REF = re.compile(r"`([^`\s]+)`|\]\(([^)\s#]+)")
TEST = re.compile(r"`((?:tests/\w+\.py)?)::(\w+)(\*?)")


def _refs(doc):
    for m in REF.finditer(doc.read_text()):
        yield m.group(1) or m.group(2), m.group(2) is not None


def _repo_paths(doc):
    for ref, link in _refs(doc):
        if "::" in ref or ref.startswith(("http", "results/", "data/")) or re.search(r"[<>*{}=$]", ref):
            continue
        if link or ref.startswith(TOP):
            yield ref
    # the commands of fenced blocks (```bash ... ```), which the pattern above does not read: each word that
    # starts at a folder of the repository (benchmarks/gpu/series.sh), less those a run makes there
    for block in re.findall(r"^```\w*\n(.*?)^```", doc.read_text(), re.S | re.M):
        for word in re.findall(r"[\w./-]+", block):
            word = word.rstrip(".")
            if word.startswith(TOP) and not word.startswith(("benchmarks/.work/", "benchmarks/.venv")):
                yield word


def test_every_repository_path_the_docs_name_exists():
    missing = [f"{doc.relative_to(REPO)}: {ref}" for doc in DOCS for ref in _repo_paths(doc)
               if not (REPO / ref).exists() and not (doc.parent / ref).exists()]
    assert not missing, "paths named in the docs that the repository does not have:\n" + "\n".join(missing)


def test_every_test_the_docs_cite_exists():
    """`tests/test_x.py::test_name`, and `::test_other` after it for a test of the same file."""
    cited, missing = 0, []
    for doc in DOCS:
        current = None
        for m in TEST.finditer(doc.read_text()):
            current = m.group(1) or current
            if current is None:
                missing.append(f"{doc.relative_to(REPO)}: ::{m.group(2)} names no file before it")
                continue
            cited += 1
            source = REPO / current
            name = m.group(2) + (r"\w*" if m.group(3) else "")  # `::test_divergence_*`: every test so named
            if not source.is_file() or not re.search(rf"^\s*(?:async\s+)?def {name}\(",
                                                      source.read_text(), re.M):
                missing.append(f"{doc.relative_to(REPO)}: {current}::{m.group(2)}")
    assert cited, "no test cited in the docs was read: the pattern no longer matches how the docs cite them"
    assert not missing, "tests cited in the docs that do not exist:\n" + "\n".join(missing)


def test_every_test_a_doc_names_after_its_file_exists():
    """docs/guarantees.md and the README name a file and then its tests without it: "`tests/test_x.py` -
    `test_name`, `test_other`".  The `::` pattern above does not see those; each must be a test of the
    file named last before it.  (docs/bad_input.md's rows cite their tests by their own convention,
    which tests/test_bad_input.py reads.)"""
    cite = re.compile(r"`(tests/\w+\.py)?(?:::)?(test_\w+)?(\*?)`")
    cited, missing = 0, []
    for doc in DOCS:
        if doc.name == "bad_input.md":
            continue
        current = None
        for m in cite.finditer(doc.read_text()):
            current = m.group(1) or current
            if not m.group(2) or m.group(1):
                continue
            cited += 1
            name = m.group(2) + (r"\w*" if m.group(3) else "")
            if current is None or not re.search(rf"^\s*(?:async\s+)?def {name}\(", (REPO / current).read_text(), re.M):
                missing.append(f"{doc.relative_to(REPO)}: `{m.group(2)}{m.group(3)}` (after {current})")
    assert cited, "no test named after its file was read: the pattern no longer matches how the docs name them"
    assert not missing, "tests named in the docs that their file does not have:\n" + "\n".join(missing)


def test_every_setting_of_the_schemas_is_described():
    """The README sends a newcomer to the schemas for every key and its meaning; a key without a
    description is one the docs never explain (compare.claim.text had none)."""
    import yaml

    def settings(node, path):
        if isinstance(node, dict):
            for key, spec in (node.get("properties") or {}).items():
                if isinstance(spec, dict) and not spec.get("properties") and "$ref" not in spec:
                    yield path + key, spec
            for key, value in node.items():
                yield from settings(value, path + (f"{key}." if key not in ("properties", "$defs") else ""))
        elif isinstance(node, list):
            for value in node:
                yield from settings(value, path)

    for schema in ("stcore/schemas/config.schema.yaml", "schemas/samples.schema.yaml"):
        found = list(settings(yaml.safe_load((REPO / schema).read_text()), ""))
        assert found, schema
        undescribed = [key for key, spec in found if not str(spec.get("description") or "").strip()]
        assert not undescribed, f"{schema}: settings without a description: {undescribed}"


def test_the_simulated_slides_settings_state_the_defaults_the_simulation_uses():
    """The schema states the simulate settings' defaults in their descriptions; each is the one
    stcore.simulate.SimParams, which makes the slides, uses."""
    import yaml

    from stcore.simulate import SimParams

    schema = yaml.safe_load((REPO / "stcore/schemas/config.schema.yaml").read_text())
    props = schema["properties"]["simulate"]["additionalProperties"]["properties"]
    stated = {key: re.search(r"\(default ([^)]+)\)", spec.get("description", "")) for key, spec in props.items()}
    stated = {key: m.group(1) for key, m in stated.items() if m}
    assert stated, "no simulate setting states its default"
    defaults = SimParams()
    for key, text in stated.items():
        value = getattr(defaults, key)
        value = getattr(value, "value", value)
        assert yaml.safe_load(text) == value, (key, text, value)


def _by_extra(text, extra_re, name_re):
    """{extra or None: the method names written after it}: ``text`` cut at each ``extra_re`` match (its
    group 1 the extra), names found by ``name_re`` (group 1) in each piece; the piece before the first
    extra holds the built-in models (None)."""
    pieces = re.split(extra_re, text)
    found = {None: re.findall(name_re, pieces[0])}
    for extra, piece in zip(pieces[1::2], pieces[2::2]):
        found.setdefault(extra, []).extend(re.findall(name_re, piece))
    return {extra: sorted(names) for extra, names in found.items()}


def test_every_list_of_the_methods_names_the_registry_s_methods_and_extras():
    """The registry (stcore/registry.py) is the one list of methods; the README, the config schema,
    docs/adding_a_method.md and the peers' conda env repeat it in words for the reader.  A method added
    to the registry, taken out, or moved to another extra leaves each of these lists naming another
    set; this names the list."""
    import yaml

    from stcore.registry import METHODS, PEER_SETTINGS

    expected = {}
    for name, f in METHODS.items():
        expected.setdefault(f.extra, []).append(name)
    expected = {extra: sorted(names) for extra, names in expected.items()}
    peers = sorted(name for name, f in METHODS.items() if not f.builtin)

    readme = re.search(r"each a `model` \((.*?)\) plus", (REPO / "README.md").read_text(), re.S)
    assert readme, "README.md: the sentence 'Methods are named entries ... each a `model` (...) plus' moved"
    schema = yaml.safe_load((REPO / "stcore/schemas/config.schema.yaml").read_text())
    model = schema["properties"]["methods"]["additionalProperties"]["properties"]["model"]["description"]
    peer = schema["$defs"]["train"]["properties"]["peer"]["description"]
    env = (REPO / "envs" / "peers.yaml").read_text().replace("\n#", "")
    lists = {
        "README.md, 'Your own slides' (the models and their extras)":
            _by_extra(readme.group(1), r"from\s+the\s+`(\w+)`\s+extra", r"`(\w+)`"),
        "config schema, methods.<name>.model's description":
            _by_extra(model, r"from\s+the\s+(\w+)\s+extra", r"(\w+) ="),
    }
    for where, found in lists.items():
        assert found == expected, f"{where} lists {found}; stcore/registry.py has {expected}"
    for where, text in {"config schema, train.peer's description": peer, "envs/peers.yaml's first lines": env}.items():
        named = re.search(r"\(models ([\w,\s]+?)[:;]", text)
        assert named, f"{where}: its '(models a, b, ...:' list moved"
        assert sorted(re.findall(r"\w+", named.group(1))) == peers, \
            f"{where} names the peer models {named.group(1)!r}; stcore/registry.py has {peers}"
    extras = sorted({METHODS[name].extra for name in peers})
    adding = (REPO / "docs" / "adding_a_method.md").read_text()
    sentences = {"README.md, 'Tests' (the extras test_peers.py names)":
                     re.search(r"naming its extra \((.*?)\), where", (REPO / "README.md").read_text(), re.S),
                 "docs/adding_a_method.md, 'from optional extras:'":
                     re.search(r"from optional extras:(.*?)\(exact pins", adding, re.S)}
    for where, m in sentences.items():
        assert m, f"{where}: the sentence moved"
        named = sorted(re.findall(r"'\.\[(\w+)\]'", m.group(1)))
        assert named == extras, f"{where} names the extras {named}; the registry's peers come from {extras}"
    for where, text in {"docs/cluster.md, 'Conda environments'": (REPO / "docs" / "cluster.md").read_text(),
                        "envs/peers.yaml's first lines": env}.items():
        m = re.search(r"the ((?:`\w+`(?:,|\s+and)?\s+)+)extras", text)
        assert m, f"{where}: its list 'the `a`, `b` and `c` extras' moved"
        named = sorted(re.findall(r"`(\w+)`", m.group(1)))
        assert named == extras, f"{where} names the extras {named}; the registry's peers come from {extras}"
    table = re.findall(r"^\| `(\w+)` \|", adding, re.M)
    assert sorted(table) == expected["peers"], \
        f"docs/adding_a_method.md's table of the peers extra's models: {table}; stcore/registry.py: {expected['peers']}"
    sparse = re.search(r"\*\*Sparse throughout\*\*(.*?)\n(?:- |\n)", (REPO / "docs" / "guarantees.md").read_text(),
                       re.S)
    assert sparse, "docs/guarantees.md: the guarantee 'Sparse throughout' moved"
    named = sorted(set(re.findall(r"`(\w+)`", sparse.group(1))) & set(METHODS))
    dense = sorted(name for name, f in METHODS.items() if f.dense_spots)
    assert named == dense, (f"docs/guarantees.md, 'Sparse throughout' names {named} as holding dense spots x spots "
                            f"matrices; the registry's dense_spots are {dense}")
    examples = re.findall(r"\{(\w+): [^{}]+\} for (\w+)", peer)
    assert examples, "config schema, train.peer's description: its examples '{key: value} for <model>' moved"
    wrong = [f"{{{key}: ...}} for {name}" for key, name in examples if key not in PEER_SETTINGS.get(name, {})]
    assert not wrong, f"config schema, train.peer's description: examples of keys the peer does not take: {wrong}"


def test_the_recommended_answer_in_a_notebook_is_the_recommended_config():
    """The README, docs/notebook.md and tl.domains' docstring give the recommended answer as a call,
    ``method=[...]`` with ``seed=range(n)``, said to be the workflow's; config/recommended.yaml is
    that answer.  A member or a seed count changed in one leaves the other giving another answer."""
    import yaml

    config = yaml.safe_load((REPO / "config" / "recommended.yaml").read_text())
    (members,) = [e["methods"] for e in config["ensembles"].values()]
    expected = ([config["methods"][m].get("model", m) for m in members], config["seeds"])
    call = re.compile(r"method=\[([^\]]*)\]\W*(?:with\W*)?seed=range\((\d+)\)")
    found = 0
    for path in (REPO / "README.md", REPO / "docs" / "notebook.md", REPO / "stcore" / "tl.py"):
        for m in call.finditer(path.read_text()):
            found += 1
            given = (re.findall(r"[\"'](\w+)[\"']", m.group(1)), list(range(int(m.group(2)))))
            assert given == expected, (f"{path.relative_to(REPO)}: {m.group(0)!r} is not config/recommended.yaml's "
                                       f"answer (models {expected[0]}, seeds {expected[1]})")
    assert found >= 4, "the recommended answer's calls moved: the pattern no longer finds them"

    # the install command given with it: the extras of its members (the registry's), no fewer, no more
    from stcore.registry import facts

    extras = sorted({facts(model).extra for model in expected[0]} - {None})
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Which domains to use on a new slide"):readme.index("## What it does")]
    for where, text in {"README.md, 'Which domains to use on a new slide'": section,
                        "config/recommended.yaml": (REPO / "config" / "recommended.yaml").read_text()}.items():
        named = re.search(r"pip install -e '\.\[([\w,]+)\]'", text)
        assert named, f"{where}: its install command moved"
        assert sorted(named.group(1).split(",")) == extras, \
            f"{where} installs {named.group(0)!r}; the answer's methods need the extras {extras}"


def test_ci_runs_the_readme_s_two_commands_as_written():
    """.ci/run says it runs the README's first two commands as written (the install with the demo, then
    the tests); a command changed in one and not the other leaves CI checking a command no newcomer runs."""
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert block, "README.md: its first bash block moved"
    commands = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(commands) == 2, commands
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if not line.lstrip().startswith("#")]
    missing = [command for command in commands if command not in ci]
    assert not missing, f".ci/run does not run these README commands as written: {missing}"


def test_every_section_the_docs_send_the_reader_to_is_in_its_file():
    """`benchmarks/README.md`, "On a GPU" or [guarantees.md](guarantees.md), "Results follow their inputs":
    a heading (or bullet) renamed in the file leaves the reference naming a section that is not there."""
    cite = re.compile(r"(?:`([\w./-]+\.md)`|\]\(([\w./-]+\.md)\))\)?,\s*\"([^\"]+)\"")
    cited, missing = 0, []
    for doc in DOCS:
        for m in cite.finditer(doc.read_text()):
            path, section = m.group(1) or m.group(2), " ".join(m.group(3).split())
            target = next((p for p in (REPO / path, doc.parent / path) if p.is_file()), None)
            cited += 1
            if target is None or section not in " ".join(target.read_text().split()):
                missing.append(f"{doc.relative_to(REPO)}: {path}, \"{section}\"")
    assert cited, "no section reference was read: the pattern no longer matches how the docs cite them"
    assert not missing, "sections the docs name that their file does not have:\n" + "\n".join(missing)


def test_every_default_the_docs_state_for_a_setting_is_the_schemas():
    """"`cluster.auto_range` (default 2 to 15)": a default written beside a setting's name in the docs
    is the config schema's (where every default is written); a changed default leaves the doc wrong."""
    import yaml

    schema = yaml.safe_load((REPO / "stcore/schemas/config.schema.yaml").read_text())
    stated, wrong = 0, []
    for doc in DOCS:
        for section, key, text in re.findall(r"`(\w+)\.(\w+)` \(default ([^),;]+)", doc.read_text()):
            spec = (schema["$defs"].get(section) or schema["properties"].get(section) or {}).get("properties", {})
            if key not in spec or "default" not in spec[key]:
                wrong.append(f"{doc.relative_to(REPO)}: {section}.{key} has no default in the schema")
                continue
            stated += 1
            span = re.fullmatch(r"(\d+) to (\d+)", text.strip())
            value = [int(span.group(1)), int(span.group(2))] if span else yaml.safe_load(text)
            if value != spec[key]["default"]:
                wrong.append(f"{doc.relative_to(REPO)}: {section}.{key} (default {text}); the schema: "
                             f"{spec[key]['default']!r}")
    assert stated, "no default stated beside a setting was read: the pattern no longer matches the docs"
    assert not wrong, "defaults the docs state that are not the schema's:\n" + "\n".join(wrong)


def test_every_list_of_the_slide_formats_is_stcore_formats():
    """stcore.formats.FORMATS is the one list of slide formats (the sample schema's enum and the
    readers are held to it); the README's list of formats, docs/formats.md's one section per format and
    the example sheet of both, "one row per format", write it again by hand."""
    from stcore.formats import FORMATS

    readme = (REPO / "README.md").read_text()
    formats_md = (REPO / "docs" / "formats.md").read_text()
    listed = re.search(r"Each format's files and reader \(([^)]*)\)", readme)
    assert listed, "README.md: 'Each format's files and reader (...)' moved"
    lists = {"README.md, 'Each format's files and reader'": re.findall(r"`(\w+)`", listed.group(1)),
             "docs/formats.md, '## Formats'": re.findall(r"^- `format: (\w+)`", formats_md, re.M)}
    for where, text in {"README.md": readme, "docs/formats.md": formats_md}.items():
        sheet = re.search(r"```\nsample\tpath\tformat\t[^\n]*\n(.*?)```", text, re.S)
        assert sheet, f"{where}: its example sample sheet moved"
        lists[f"{where}, the example sheet"] = [row.split("\t")[2] for row in sheet.group(1).splitlines() if row]
    for where, found in lists.items():
        assert sorted(found) == sorted(FORMATS), f"{where} lists the formats {found}; stcore.formats: {list(FORMATS)}"


def test_each_stage_is_one_rule_file_one_script_and_one_module_of_its_name():
    """The README: "one rule per stage (one rule file, one script and one `stcore` module of the same
    name)"; docs/method.md names each stage (its table, or the rule of the comparison's target).  A rule
    file whose rules run another stage's script, a stage without its module, or one the docs leave out
    makes the sentence untrue."""
    method_md = (REPO / "docs" / "method.md").read_text()
    stages, wrong = 0, []
    for smk in sorted((REPO / "rules").glob("*.smk")):
        if smk.stem == "common":                       # the glue to stcore/plan, no rule of its own
            continue
        stages += 1
        stage = smk.stem
        for path in (REPO / "scripts" / f"{stage}.py", REPO / "stcore" / f"{stage}.py"):
            if not path.is_file():
                wrong.append(f"rules/{smk.name}: no {path.relative_to(REPO)}")
        for rule, script in re.findall(r"^rule (\w+):\n(?:[ \t]+.*\n|\n)*?\s+script:\n\s+\"\.\./scripts/(\w+)\.py\"",
                                       smk.read_text(), re.M):
            if script != stage:
                wrong.append(f"rules/{smk.name}: rule {rule} runs scripts/{script}.py")
        names = {stage, f"rules/{stage}.smk", *re.findall(r"^rule (\w+):", smk.read_text(), re.M)}
        if not any(f"`{name}`" in method_md for name in names):
            wrong.append(f"docs/method.md names neither the stage `{stage}` nor a rule of rules/{smk.name}")
    assert stages >= 10, stages
    assert not wrong, "stages that are not one rule file, script and module of one name:\n" + "\n".join(wrong)


def _commands(doc):
    """The doc's text with shell line continuations joined, so a command written over lines is one."""
    return re.sub(r"\\\n\s*", " ", doc.read_text())


def test_every_option_the_docs_give_a_script_is_one_it_takes():
    """`nice -n 10 .venv/bin/python benchmarks/run.py --slide ...`: each `--option` written after a script
    of the repository (up to the end of its code span or line) is one its argument parser defines, there or
    in a module of its folder it imports (benchmarks/slide_args.py).  An option renamed in the script leaves
    the command failing with argparse's 'unrecognized arguments'.  A script the tree no longer has is the
    path test's to name (docs/compare/README.md cites one kept in git history)."""
    command = re.compile(r"((?:benchmarks|docs|scripts|studies)/[\w./-]+\.py)([^`\n]*)")
    read, wrong = 0, []
    for doc in DOCS:
        for script, args in command.findall(_commands(doc)):
            path = REPO / script
            if not path.is_file():
                continue
            source = path.read_text()
            for module in re.findall(r"^from (\w+) import", source, re.M):
                if (path.parent / f"{module}.py").is_file():
                    source += (path.parent / f"{module}.py").read_text()
            for option in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", args.split("#")[0]):
                read += 1
                if f'"{option}"' not in source and f"'{option}'" not in source:
                    wrong.append(f"{doc.relative_to(REPO)}: {script} {option}")
    assert read, "no option given to a script was read: the pattern no longer matches how the docs write commands"
    assert not wrong, "options the docs give a script that its argument parser does not define:\n" + "\n".join(wrong)


def test_a_folder_the_docs_extract_into_is_made_first():
    """`git archive HEAD | tar -x -C /tmp/head` stops with "Cannot open: No such file or directory" where
    the folder does not exist: each folder a fenced command extracts into (`tar -C DIR`) is made by the same
    block (`mkdir -p DIR`) or is one of the repository's."""
    wrong = []
    for doc in DOCS:
        for block in re.findall(r"^```\w*\n(.*?)^```", _commands(doc), re.S | re.M):
            for folder in re.findall(r"\btar\b[^\n|;&]*?\s-C\s+(\S+)", block):
                made = re.search(rf"mkdir\s+(?:-p\s+)?{re.escape(folder)}(?:\s|$)", block)
                if not made and not (REPO / folder).is_dir():
                    wrong.append(f"{doc.relative_to(REPO)}: tar -C {folder}")
    assert not wrong, "folders a fenced command extracts into that nothing makes first:\n" + "\n".join(wrong)


def test_the_product_reads_nothing_of_the_measurements():
    """The README's layout: the product (stcore/, scripts/, the Snakefile and rules/, the configs, profiles
    and envs) runs without studies/, benchmarks/ and docs/compare/ ("no run needs them").  A module that
    imports one of them, or a rule, script or config that names a file there (outside a comment or a
    docstring, which may cite a measurement), makes a run depend on the measurements."""
    import ast

    folders = ("studies", "benchmarks", "docs/compare")
    wrong = []
    for path in sorted({p.resolve() for top in ("stcore", "scripts") for p in (REPO / top).rglob("*.py")}):
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant) and isinstance(node.body[0].value.value, str)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                wrong += [f"{path.relative_to(REPO)}:{node.lineno}: imports {m}" for m in modules
                          if m.split(".")[0] in ("studies", "benchmarks")]
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                  and any(f"{f}/" in node.value for f in folders)):
                wrong += [f"{path.relative_to(REPO)}:{node.lineno}: {node.value[:80]!r}"]
    others = [REPO / "Snakefile", REPO / "config.yaml", *(REPO / "rules").glob("*.smk"), *(REPO / "config").glob("*"),
              *(REPO / "profiles").rglob("*.yaml"), *(REPO / "envs").glob("*.yaml")]
    for path in others:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if any(f"{f}/" in code for f in folders):
                wrong.append(f"{path.relative_to(REPO)}:{n}: {line.strip()[:80]}")
    assert not wrong, "the product names the measurements (studies/, benchmarks/, docs/compare/):\n" + "\n".join(wrong)


def test_every_setting_the_docs_name_is_one_of_the_schema():
    """`train.input_pcs`, `cluster.auto_range: [3, 9]`, `hvg.scale: false`: a setting named in code in the docs
    (section, dot, key) is a key of that section of the config schema, where the reader will look for it and a
    config will accept it.  A key renamed or removed leaves the doc sending the reader to a setting the
    config refuses; a doc may name a former one only on a line that says so (removed, not adopted, is now)."""
    import yaml

    schema = yaml.safe_load((REPO / "stcore/schemas/config.schema.yaml").read_text())

    def keys(section):
        spec = schema["properties"].get(section) or {}
        spec = schema["$defs"].get(spec["$ref"].split("/")[-1], spec) if "$ref" in spec else spec
        return set(spec.get("properties") or {})

    sections = {s: keys(s) for s in schema["properties"] if keys(s)}
    # `qc.h5ad`, `graph.npz`: the files the rules write are named by their stage too
    path = re.compile(r"\"[^\"\s]*/[^\"\s]*\.(\w+)\"")
    written = {ext for smk in (REPO / "rules").glob("*.smk") for ext in path.findall(smk.read_text())}
    read, wrong = 0, []
    for doc in DOCS:
        for n, line in enumerate(doc.read_text().splitlines(), 1):
            for code in re.findall(r"`([^`]+)`", line):
                for section, key in re.findall(r"(?<![\w./'\[-])(\w+)\.(\w+)\b(?![./(\w])", code):
                    if section not in sections or key in written:
                        continue
                    read += 1
                    if key not in sections[section] and not re.search(r"removed|not adopted|is now", line):
                        wrong.append(f"{doc.relative_to(REPO)}:{n}: {section}.{key}")
    assert read, "no setting named in the docs was read: the pattern no longer matches how the docs name them"
    assert not wrong, "settings the docs name that the config schema does not have:\n" + "\n".join(wrong)


def test_every_snakemake_option_the_docs_and_profiles_give_is_one_of_the_pinned_snakemake():
    """`snakemake --cores all --report report.html --report-after-run`: each option written after
    `snakemake` in the docs (code spans and fenced commands), and each key of a profile (an option without
    its leading dashes), is one the pinned Snakemake (with the SLURM executor plugin of requirements.txt)
    takes.  An option Snakemake renames or drops in a new version (as 8.0 did with --use-conda) leaves the
    command refused."""
    import yaml
    from snakemake.cli import get_argument_parser

    options = {o for action in get_argument_parser()._actions for o in action.option_strings}
    read, wrong = 0, []
    for doc in DOCS:
        text = _commands(doc)
        commands = re.findall(r"`([^`]*)`", text) + re.findall(r"^```\w*\n(.*?)^```", text, re.S | re.M)
        for command in commands:
            for line in command.splitlines():
                for run in re.findall(r"\bsnakemake\s([^|;&#]*)", line):
                    for option in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", run):
                        read += 1
                        if option not in options:
                            wrong.append(f"{doc.relative_to(REPO)}: snakemake {option}")
    for profile in sorted((REPO / "profiles").glob("*/config.yaml")):
        for key in yaml.safe_load(profile.read_text()):
            read += 1
            if f"--{key}" not in options:
                wrong.append(f"{profile.relative_to(REPO)}: {key}")
    assert read, "no snakemake option was read: the pattern no longer matches how the docs write commands"
    assert not wrong, "options Snakemake does not take:\n" + "\n".join(wrong)

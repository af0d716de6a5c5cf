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

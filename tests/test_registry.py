"""The registry declares every method's facts once; the workflow, the schema and the API read them."""
import dataclasses
import tomllib
from pathlib import Path

import pytest

from stcore.registry import METHODS, MethodFacts, facts

REPO = Path(__file__).resolve().parents[1]


def test_every_fact_is_stated_by_every_entry():
    """No fact has a default: an entry that leaves one out cannot be made (the workflow's plan
    needs them all: environment, built-in or peer, own labels, counts, n_clusters, groups, memory)."""
    fields = dataclasses.fields(MethodFacts)
    assert {f.name for f in fields} >= {"builtin", "env", "own_labels", "reads_counts", "wants_n_clusters",
                                        "allows_groups", "dense_spots", "extra", "requires"}
    assert all(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING for f in fields)
    with pytest.raises(TypeError):
        MethodFacts("a method without its facts", builtin=False)


@pytest.mark.parametrize("name", list(METHODS))
def test_each_entry_installs_and_runs_where_it_says(name):
    f = METHODS[name]
    assert (REPO / "envs" / f"{f.env}.yaml").is_file()
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    if f.builtin:
        assert f.extra is None and f.requires is None and f.allows_groups
    else:
        assert f.extra in extras and f.requires and f.install == f"pip install -e '.[{f.extra}]'"
        assert f.reads_counts and not f.allows_groups
    assert not f.own_labels or f.wants_n_clusters or f.builtin     # a peer that clusters itself is told how many
    assert not f.own_labels_optional or f.own_labels                # only a clustering of its own can be skipped
    assert (f.bytes_per_value == 0) == f.builtin                    # the built-in models' memory is budgeted apart


def _pins(path):
    """The ``name==version`` lines of a requirements file or of an env file's pip list."""
    lines = (line.strip().lstrip("- ").strip() for line in path.read_text().splitlines())
    return {line for line in lines if "==" in line and not line.startswith("#")}


@pytest.mark.parametrize("name", [m for m in METHODS if not METHODS[m].builtin])
def test_a_peers_conda_env_holds_its_extra_at_the_same_pins(name):
    """Under --sdm conda the train job runs in envs/<env>.yaml: it must install the method's extra (the
    cellcharter jobs of config/recommended.yaml had none there) and the main pins as requirements.txt."""
    f = METHODS[name]
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    env = _pins(REPO / "envs" / f"{f.env}.yaml")
    assert set(extras[f.extra]) <= env, set(extras[f.extra]) - env
    main = _job_pins()
    assert main <= env, main - env


def _job_pins():
    """requirements.txt's pins that a job's conda env needs: all but the workflow's and the tests' own."""
    return {p for p in _pins(REPO / "requirements.txt")
            if not p.startswith(("snakemake", "pytest", "jsonschema", "PyYAML", "pygments"))}


@pytest.mark.parametrize("env", sorted(p.name for p in (REPO / "envs").glob("*.yaml")))
def test_every_conda_env_pins_requirements_txts_versions(env):
    """envs/stcore.yaml and envs/stcore-cuda.yaml say their pins agree with requirements.txt (and
    docs/adding_a_method.md says so): a version moved in requirements.txt alone would give the jobs
    under --sdm conda another stack than the install the README gives."""
    pins = _pins(REPO / "envs" / env)
    names = {p.split("==")[0].lower(): p for p in pins}
    differ = sorted(f"{p} (env: {names.get(p.split('==')[0].lower(), 'none')})" for p in _job_pins() - pins)
    assert not differ, f"envs/{env} does not pin as requirements.txt does: {differ}"


def test_an_unknown_model_names_the_known_ones():
    with pytest.raises(KeyError, match="unknown method model 'nope'.*graphst"):
        facts("nope")


def test_every_install_command_the_docs_give_names_one_editable_target():
    """pip's -e takes one argument: `pip install -e '.[a]' '.[b]'` asks for an editable and a second,
    non-editable copy of the package, which pip refuses; several extras go in one: '.[a,b]'. Every
    such command in the README, docs, configs, studies and the package's messages names extras pyproject has."""
    import re

    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    files = [REPO / "README.md", *(REPO / "docs").rglob("*.md"), *(REPO / "config").glob("*.yaml"),
             *(REPO / "studies").glob("*.yaml"), *(REPO / "stcore").rglob("*.py"), *(REPO / "stcore").rglob("*.yaml")]
    seen = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"pip install -e ([\"']?\.\[[^\]]*\][\"']?)((?:\s+[\"']?\.\[[^\]]*\][\"']?)*)", text):
            seen += 1
            where = f"{path.relative_to(REPO)}: {m.group(0)}"
            assert not m.group(2).strip(), f"{where}: one target with every extra in it, '.[a,b]'"
            named = {e.strip() for e in re.search(r"\[([^\]]*)\]", m.group(1)).group(1).split(",")}
            named = {e for e in named if not re.search(r"[<{]", e)}          # a placeholder: '.[<extra>]'
            assert named <= extras, f"{where}: no such extra ({sorted(named - extras)})"
    assert seen > 10


def test_each_peer_declares_its_settings_once():
    """The keys a peer's train.peer takes are declared once (PEER_SETTINGS): the train job's fit
    reads them with their defaults, the workflow's plan refuses any other at parse time."""
    from stcore import peers
    from stcore.registry import PEER_SETTINGS, unknown_peer_settings

    assert set(PEER_SETTINGS) == {name for name, f in METHODS.items() if not f.builtin}
    assert peers.STAGATE_DEFAULTS is PEER_SETTINGS["stagate"] and peers.BANKSY_DEFAULTS is PEER_SETTINGS["banksy"]
    for name, defaults in PEER_SETTINGS.items():
        assert peers.settings_of(name, {}) == defaults
        assert unknown_peer_settings(name, defaults) == [] and unknown_peer_settings(name, None) == []
    assert unknown_peer_settings("stagate", {"n_epoch": 1, "lr": 0.1}) == ["n_epoch"]

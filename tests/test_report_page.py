"""`snakemake --report` opens on the results: the summary table is in the first page itself
(not a download), with the table's numbers, beside links to each run's figure."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"

CONFIG = {
    "samples": "samples.tsv",
    "seeds": [0, 1],
    "simulate": {"tiny_a": {"n_spots": 200, "n_genes": 120, "markers_per_domain": 20, "n_layers": 3,
                            "n_regions": 0, "seed": 1}},
    "hvg": {"n_top_genes": 100},
    "train": {"epochs": 2},
    "cluster": {"n_init": 1},
    "methods": {"graphst": {"model": "graphst"}, "expression": {"model": "expression"}},
    "ensembles": {"answer": {"methods": ["graphst", "expression"]}},
}
SHEET = "sample\tpath\tformat\tn_clusters\ttruth\ntiny_a\tresults/simulated/tiny_a.h5ad\th5ad\t3\tdomain\n"


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("report")
    (workdir / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    (workdir / "samples.tsv").write_text(SHEET)
    _snakemake(workdir, "--cores", "2")
    _snakemake(workdir, "--report", "report.html")
    return workdir


def _tables(html: str) -> list[list[list[str]]]:
    """The tables of an HTML text: rows of cell texts (the standard library's parser)."""
    from html.parser import HTMLParser

    class Tables(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tables, self.cell = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.tables.append([])
            elif tag == "tr" and self.tables:
                self.tables[-1].append([])
            elif tag in ("td", "th"):
                self.cell = ""

        def handle_endtag(self, tag):
            if tag in ("td", "th") and self.cell is not None:
                self.tables[-1][-1].append(self.cell.strip())
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

    parser = Tables()
    parser.feed(html)
    return parser.tables


def _first_page(html: str) -> str:
    """The HTML of the report's first page (Snakemake's ``workflow_desc``, a JSON string in the page)."""
    m = re.search(r"var workflow_desc = (\".*?(?<!\\)\");", html, re.S)
    assert m, "the report has no first-page text"
    return json.loads(m.group(1))


def test_the_first_page_shows_the_summary_table_with_the_tables_numbers(report):
    html = (report / "report.html").read_text()
    page = _first_page(html)
    ari = _answer_ari(report)
    tables = _tables(page)
    assert tables, page[:2000]
    head, *rows = tables[0]
    cell = dict(zip(head, next(r for r in rows if r[0] == "tiny_a")))["answer (consensus)"]
    assert cell.startswith(f"{ari:.3f}"), (tables[0], ari)
    assert "Domain maps" in page and "javascript:app.showCategory" in html
    # each slide's domain map in the page itself: the combination's answer (its one vote over every
    # member at every seed), its own domains.png embedded; every run's map and the votes' are in the menu
    import base64

    png = (report / "results" / "tiny_a" / "answer" / "consensus" / "domains.png").read_bytes()
    assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in page
    # the caption says what the map's own title (slide, method, seeds) does not
    assert "<figcaption>The slide&#x27;s answer (one vote over every member at every seed).</figcaption>" in page
    assert "<figcaption>tiny_a" not in page
    assert page.index("ARI against the manual annotation") < page.index("<h2>Domain maps</h2>") < page.index(
        "NMI against the manual annotation")                           # the maps right after the ARI table
    for combined in ("answer/seed0", "answer/seed1", "graphst/consensus", "graphst/seed1"):
        assert f"results/tiny_a/{combined}/domains.png" in html


def test_a_missing_first_page_is_made_again(report):
    """results/summary.html, the page `snakemake --report` opens on, is a target of the run: where it
    is missing (removed, or results of a version that did not write it) the run makes it again, and
    the report does not stop on it."""
    page = report / "results" / "summary.html"
    kept = page.read_bytes()
    page.unlink()
    try:
        dry = _snakemake(report, "-n", "--cores", "1")
        assert "rule table:" in dry.stdout + dry.stderr, dry.stdout[-3000:]
        _snakemake(report, "--cores", "1")
        assert page.exists()
    finally:
        if not page.exists():
            page.write_bytes(kept)


def _answer_ari(report: Path) -> float:
    """The ARI of the slide's answer (the combination's vote over every member at every seed) in the table."""
    table = pd.read_csv(report / "results" / "table.tsv", sep="\t", dtype={"seed": str})
    return float(table.loc[(table["method"] == "answer") & (table["seed"] == "consensus"), "ARI"].iloc[0])


def test_the_first_page_in_a_headless_browser(report, tmp_path):
    """The page as a browser draws it (Debian's chromium): the summary's number in the live DOM."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        why = "chromium is not installed (apt-get install chromium; .ci/chromium-up.sh)"
        if os.environ.get("STCORE_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"STCORE_REQUIRE_CHROMIUM=1 but {why}")
        pytest.skip(why)
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                           "--dump-dom", (report / "report.html").as_uri()],
                          capture_output=True, text=True, timeout=120)
    ari = _answer_ari(report)
    assert "stcore-summary" in proc.stdout and f"{ari:.3f}" in proc.stdout, proc.stderr[-2000:]
    assert 'class="stcore-domains"' in proc.stdout                     # the slide's map, drawn in the page
    # in a laptop's window the page opens at its top: the title and the ARI table are on screen, the
    # map below them within reach (Snakemake's box centres its content, which put a long page's top out
    # of reach above it); a script added to a copy of the report writes where they are drawn
    probe = tmp_path / "probe.html"
    where = ("setTimeout(function(){var out=[];document.querySelectorAll('h1,h2,h3').forEach(function(h){"
             "out.push(h.textContent.trim()+'@'+Math.round(h.getBoundingClientRect().top))});"
             "var box=document.querySelector('.grow.flex.items-center.justify-center.h-screen');"
             "var h=document.querySelector('.prose h1');"
             "out.push('title left of its box@'+Math.round(box.getBoundingClientRect().left-h.getBoundingClientRect().left));"
             "var c=document.querySelector('.prose code');"
             "out.push('code without backticks@'+(c&&getComputedStyle(c,'::before').content==='none'?1:0));"
             "var m=document.querySelector('img.stcore-domains');"
             "out.push('map scale@'+Math.round(100*m.getBoundingClientRect().width/m.naturalWidth));"
             "var p=document.createElement('pre');p.id='PROBE';p.textContent=out.join('|');"
             "document.body.appendChild(p)},3000);")
    html = (report / "report.html").read_text()
    end = html.rindex("</body>")
    probe.write_text(html[:end] + f"<script>{where}</script>" + html[end:])
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                           "--window-size=1400,900", "--dump-dom", probe.as_uri()],
                          capture_output=True, text=True, timeout=120)
    drawn = re.search(r'<pre id="PROBE">(.*?)</pre>', proc.stdout, re.S)
    assert drawn, proc.stderr[-2000:]
    top = {t.rsplit("@", 1)[0]: int(t.rsplit("@", 1)[1]) for t in drawn.group(1).split("|")}
    assert 0 <= top["Spatial domains (stcore)"] < top["ARI against the manual annotation"] < 900, top
    assert top["ARI against the manual annotation"] < top["Domain maps"], top
    # the summary's code spans (`table.tsv`) are drawn as code, without the backticks the report's
    # text style puts around them
    assert top["code without backticks"] == 1, top
    # a page wider than the window (a wide table beside the DAG of a combination's rules) starts at
    # its box's left edge, the rest reached by scrolling; centred, its left part lay under the menu
    assert top["title left of its box"] <= 0, top
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                           "--window-size=1000,900", "--dump-dom", probe.as_uri()],
                          capture_output=True, text=True, timeout=120)
    narrow = dict(t.rsplit("@", 1) for t in re.search(r'<pre id="PROBE">(.*?)</pre>', proc.stdout, re.S)[1].split("|"))
    assert int(narrow["title left of its box"]) <= 0, narrow
    # the domain map is drawn at 90% of its own size or more, its box scrolling sideways where the
    # text column is narrower: shrunk to the column (620 px of 918) its legends were 6 px high
    assert int(narrow["map scale"]) >= 90, narrow
    assert 90 <= top["map scale"] <= 100, top


def test_the_page_maps_pick_the_median_seed_and_need_no_annotation(tmp_path):
    """Each slide's map on the first page: the median seed by ARI, or the lowest seed on a slide
    without an annotation (its table has no ARI)."""
    from stcore.report import figures_html

    figures = []
    for seed in (0, 1, 2):
        (tmp_path / f"{seed}.png").write_bytes(f"png{seed}".encode())
        figures.append({"sample": "s", "method": "graphst", "seed": seed, "path": str(tmp_path / f"{seed}.png")})
    table = pd.DataFrame({"sample": ["s"] * 4, "method": ["graphst"] * 4, "seed": [0, 1, 2, "consensus"],
                          "ARI": [0.9, 0.1, 0.5, 0.6]})
    page = figures_html(table, figures)
    assert "<figcaption>Seed 2: the median by ARI of seeds 0, 1, 2.</figcaption>" in page and "cG5nMg==" in page
    page = figures_html(table.drop(columns="ARI"), figures)
    assert "<figcaption>" not in page and "cG5nMA==" in page      # the map's own title names the seed
    assert "s: graphst, seed" not in page
    assert figures_html(table, []) == ""
    # a combination's answer over its seeds is shown as it is, whatever the seeds' ARI
    (tmp_path / "answer.png").write_bytes(b"answer")
    answer = [{"sample": "s", "method": "recommended", "seed": "consensus", "path": str(tmp_path / "answer.png")}]
    page = figures_html(table, answer + [dict(f, sample="t") for f in figures])
    assert "<figcaption>The slide&#x27;s answer (one vote over every member at every seed).</figcaption>" in page
    assert "YW5zd2Vy" in page and page.count("<figcaption>") == 1    # base64 of b"answer"; t has no ARI


def test_the_page_puts_the_maps_after_the_first_table():
    from stcore.report import markdown_html, page_html

    summary = "# Results\n\nText.\n\n## ARI\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n## NMI\n\n| a |\n|---|\n| 3 |\n"
    page = page_html(summary, "<h2>Domain maps</h2>")
    assert page.index("<h3>ARI</h3>") < page.index("<td>2</td>") < page.index("Domain maps") < page.index("<h3>NMI</h3>")
    assert page_html(summary, "").endswith(markdown_html(summary))
    assert page_html("# Results\n\n## ARI\n\n| a |\n|---|\n| 1 |\n", "MAPS").endswith("MAPS\n")


def test_the_page_map_of_a_group_and_of_its_slide_alone_each_pick_their_own_median_seed(tmp_path):
    """A group's rows carry its slides' names (sample sa, group pair): the map of sa trained alone
    took them as its own, and the group's map had no row, so it was its lowest seed unexplained."""
    from stcore.report import figures_html

    figures = []
    for unit in ("sa", "pair"):
        for seed in (0, 1, 2):
            (tmp_path / f"{unit}{seed}.png").write_bytes(f"{unit}{seed}".encode())
            figures.append({"sample": unit, "method": "graphst", "seed": seed, "path": str(tmp_path / f"{unit}{seed}.png")})
    table = pd.DataFrame({"sample": ["sa"] * 6 + ["sb"] * 3, "group": [""] * 3 + ["pair"] * 6,
                          "method": ["graphst"] * 9, "seed": [0, 1, 2] * 3,
                          "ARI": [0.1, 0.2, 0.3, 0.7, 0.8, 0.9, 0.5, 0.0, 0.6]})
    page = figures_html(table, figures)
    alone, group = page.split('alt="domains of pair')
    assert "Seed 1: the median by ARI of seeds 0, 1, 2." in alone         # of sa's own 0.1, 0.2, 0.3
    assert "Seed 0: the median by ARI of seeds 0, 1, 2." in group         # of the slides' means 0.6, 0.4, 0.75


def test_the_loss_curves_tick_labels_are_plain_numbers(tmp_path, monkeypatch):
    """Losses spanning less than a decade (17 to 11) were labelled '1.7 x 10^1', '1.6 x 10^1', ..."""
    import numpy as np

    import stcore.report as report

    kept = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: kept.append(fig))
    epoch = np.arange(1, 51)
    total = 11 + 7 * np.exp(-epoch / 8)
    curves = {("graphst", 0): pd.DataFrame({"epoch": epoch, "total": total, "reconstruction": total / 10,
                                             "contrastive": 1.4 + 0 * epoch})}
    report.plot_losses(curves, tmp_path / "l.png", title="t")
    fig = kept[0]
    fig.canvas.draw()
    labels = [t.get_text() for ax in fig.axes[:2] for t in ax.get_yticklabels(minor=True) + ax.get_yticklabels()
              if t.get_text()]
    assert "17" in labels and "1.5" in labels, labels
    assert not [x for x in labels if "times" in x or "10^" in x], labels


def test_a_wide_map_is_drawn_whole_in_a_wide_window(tmp_path):
    """Maps are drawn at 90% of their own width or more, scrolling sideways in a narrow window; a
    group's map (three panels, 1,377 px) was then 1,239 px wide at least, its third panel out of view
    even in a 1,920 px window.  Past MAP_MIN_PX the map fits the text column of a 1,400 px window."""
    import re

    from stcore.report import MAP_MIN_PX, figures_html

    figures = []
    for name, width in (("one", 918), ("pair", 1377)):
        png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + width.to_bytes(4, "big") + (360).to_bytes(4, "big")
        (tmp_path / f"{name}.png").write_bytes(png)
        figures.append({"sample": name, "method": "graphst", "seed": 0, "path": str(tmp_path / f"{name}.png")})
    page = figures_html(pd.DataFrame({"sample": ["one"], "group": [""], "method": ["graphst"], "seed": [0]}), figures)
    assert [int(w) for w in re.findall(r"min-width:(\d+)px", page)] == [826, MAP_MIN_PX] and MAP_MIN_PX <= 918


def test_a_seed_without_an_ari_is_not_taken_as_the_lowest(tmp_path):
    """A slide without an annotation beside annotated ones has rows of NaN ARI in the table: its map was
    the middle seed, captioned 'Seed 1: the median by ARI of seeds 0, 1, 2.'; a seed whose ARI is NaN
    was sorted below every other, so the median of the others was not the one shown."""
    import numpy as np

    from stcore.report import figures_html, median_seed

    figures = []
    for seed in (0, 1, 2):
        (tmp_path / f"{seed}.png").write_bytes(f"png{seed}".encode())
        figures.append({"sample": "t", "method": "graphst", "seed": seed, "path": str(tmp_path / f"{seed}.png")})
    table = pd.DataFrame({"sample": ["s"] * 3 + ["t"] * 3, "group": [""] * 6, "method": ["graphst"] * 6,
                          "seed": [0, 1, 2] * 2, "ARI": [0.1, 0.2, 0.3] + [np.nan] * 3})
    assert median_seed(table, "t", "graphst") == 0
    page = figures_html(table, figures)
    assert "<figcaption>" not in page and "cG5nMA==" in page        # seed 0's map, no claim of an ARI
    # the median of the seeds that have an ARI: 0.5, 0.7, 0.9 -> seed 3 (0.7), whatever seed 1's NaN
    four = pd.DataFrame({"sample": ["s"] * 4, "method": ["graphst"] * 4, "seed": [0, 1, 2, 3],
                         "ARI": [0.5, np.nan, 0.9, 0.7]})
    assert median_seed(four, "s", "graphst") == 3


def test_the_loss_curves_are_of_this_configs_runs_only(tmp_path, monkeypatch):
    """A method that runs on some slides only (its ``samples``): the comparison's losses_<slide>.png of
    another slide drew that method's curves from files an earlier config's run left there (in a fresh
    folder the step stopped with FileNotFoundError), and its UMAP and loss figures were asked of every
    slide.  The curves are those of the runs in the table, the figures of the slides the methods run on."""
    from types import SimpleNamespace

    import numpy as np
    from slides import script, tiny_slide, write

    from stcore.plan.runs import Plan
    from stcore.plan.sheet import slides_and_groups
    from stcore.registry import METHODS

    monkeypatch.chdir(tmp_path)
    losses = pd.DataFrame({"epoch": [1, 2], "total": [2.0, 1.0], "reconstruction": [1.5, 0.8],
                           "contrastive": [0.5, 0.2]})
    for sample in ("A", "B"):
        (tmp_path / f"results/{sample}").mkdir(parents=True)
        slide = write(tiny_slide(), tmp_path / f"results/{sample}/hvg.h5ad")
        for method in ("graphst", "g2"):           # graphst's files on B: an earlier config's run
            run = tmp_path / f"results/{sample}/{method}/seed0"
            run.mkdir(parents=True)
            pd.DataFrame({"spot": tiny_slide().obs_names, "domain": np.arange(64) % 2}).to_csv(
                run / "labels.tsv", sep="\t", index=False)
            losses.to_csv(run / "losses.tsv", sep="\t", index=False)
    assert slide.is_file()
    pd.DataFrame({"sample": ["A", "A", "B"], "group": ["", "", ""], "method": ["graphst", "g2", "g2"],
                  "seed": [0, 0, 0], "ARI": [0.5, 0.4, 0.3]}).to_csv("table.tsv", sep="\t", index=False)
    drawn = {}
    module = script("report")
    monkeypatch.setattr(module, "plot_losses", lambda curves, path, title="": drawn.update({path: sorted(curves)}))
    monkeypatch.setattr(module, "plot_slide_domains", lambda *a, **k: None)
    monkeypatch.setattr(module, "plot_ari_boxplot", lambda *a, **k: None)
    module.main(SimpleNamespace(
        input=SimpleNamespace(table="table.tsv"),
        output=SimpleNamespace(boxplot="box.png", domains=["d_A.png", "d_B.png"], umap=[],
                               losses=["results/compare/figures/losses_A.png", "results/compare/figures/losses_B.png"]),
        params=SimpleNamespace(samples=[{"sample": "A", "truth": "domain"}, {"sample": "B", "truth": "domain"}],
                               figure_method="graphst", figure_source="graphst", loss_methods=["graphst", "g2"],
                               seeds={"graphst": [0], "g2": [0]}, run_dir="results/{sample}/{method}/seed{seed}")))
    assert drawn == {"results/compare/figures/losses_A.png": [("g2", 0), ("graphst", 0)],
                     "results/compare/figures/losses_B.png": [("g2", 0)]}
    # the figures asked of the comparison: graphst's UMAP of the slide it runs on only
    rows = [{"sample": s, "path": f"{s}.h5ad", "format": "h5ad", "n_clusters": 2, "truth": "domain"} for s in "AB"]
    config = {"methods": {"graphst": {"model": "graphst", "samples": ["A"]}, "g2": {"model": "graphst"}},
              "seeds": [0], "consensus": True, "train": {"device": "auto"}, "graph": {"mode": "knn"},
              "cluster": {"algorithm": "mclust"}, "compare": {}}
    plan = Plan(config, *slides_and_groups(rows, "sheet.tsv"), METHODS)
    assert plan.figure_slides(["graphst"]) == ["A"] and plan.figure_slides(["graphst", "g2"]) == ["A", "B"]
    assert plan.figure_slides(["not a method"]) == []


def test_the_ari_boxplot_says_a_slide_without_an_annotation_has_no_ari(tmp_path, monkeypatch):
    """A slide without an annotation (its rows' ARI NaN) beside annotated ones: its panel of the comparison's
    ari_boxplot.png was an empty frame whose axis ran from -0.04 to 0.04 around a tick '0.00', each method
    named under it, as if every method scored 0 there."""
    import numpy as np

    import stcore.report as report

    kept = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: kept.append(fig))
    table = pd.DataFrame({"sample": ["a"] * 4 + ["c"] * 4, "method": ["graphst", "graphst", "expression", "expression"] * 2,
                          "seed": [0, 1] * 4, "ARI": [0.4, 0.5, 0.1, 0.2] + [np.nan] * 4})
    report.plot_ari_boxplot(table, tmp_path / "box.png")
    a, c = kept[0].axes[:2]
    assert a.get_title() == "a" and c.get_title() == "c"
    assert not a.texts and len(a.get_yticks()) > 0
    assert [t.get_text() for t in c.texts] == ["no ARI: no annotation"] and len(c.get_yticks()) == 0


def test_a_figure_method_that_clusters_another_methods_training_is_drawn_from_that_training(tmp_path, monkeypatch):
    """compare.figure_method naming a method with train_from (it clusters graphst's embedding): the UMAP
    asked for a train.npz of its own, so the workflow trained it again as a model of its own (a third
    train job, the default graphst whatever its train_from trains) and drew that; the UMAP is drawn from
    the training its domains were clustered from, and no extra training runs."""
    from types import SimpleNamespace

    import numpy as np

    from slides import script, snakemake, tiny_slide, workdir, write
    from stcore.methods import MethodResult

    write(tiny_slide(), tmp_path / "a.h5ad")
    workdir(tmp_path, {"a": (str(tmp_path / "a.h5ad"), 2, "domain")}, extra_config="""methods:
  graphst: {model: graphst}
  emb: {train_from: graphst, cluster: {input: embedding}}
  expression: {model: expression}
compare: {figure_method: emb, baseline: expression}
""")
    dry = snakemake(tmp_path, "-n", "compare", "-p")
    assert dry.returncode == 0, dry.stderr[-2000:]
    jobs = dry.stdout + dry.stderr
    assert re.search(r"^train\s+2$", jobs, re.M) and "results/a/emb/seed0/train.npz" not in jobs
    # the script loads graphst's training for emb's UMAP
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results/a").mkdir(parents=True)
    slide = tiny_slide()
    slide.write_h5ad(tmp_path / "results/a/hvg.h5ad")
    for method in ("graphst", "emb"):
        run = tmp_path / f"results/a/{method}/seed0"
        run.mkdir(parents=True)
        pd.DataFrame({"spot": slide.obs_names, "domain": np.arange(64) % 2}).to_csv(run / "labels.tsv", sep="\t",
                                                                                     index=False)
    MethodResult(embedding=np.zeros((64, 2), np.float32), machine={}).save(
        tmp_path / "results/a/graphst/seed0/train.npz")
    pd.DataFrame({"sample": ["a", "a"], "group": ["", ""], "method": ["graphst", "emb"], "seed": [0, 0],
                  "ARI": [0.5, 0.4]}).to_csv("table.tsv", sep="\t", index=False)
    drawn = {}
    module = script("report")
    monkeypatch.setattr(module, "plot_umap", lambda emb, truth, found, path, title="", **k: drawn.update({path: title}))
    monkeypatch.setattr(module, "plot_slide_domains", lambda *a, **k: None)
    monkeypatch.setattr(module, "plot_ari_boxplot", lambda *a, **k: None)
    module.main(SimpleNamespace(
        input=SimpleNamespace(table="table.tsv"),
        output=SimpleNamespace(boxplot="box.png", domains=["d_a.png"], umap=["results/compare/figures/umap_a.png"],
                               losses=[]),
        params=SimpleNamespace(samples=[{"sample": "a", "truth": "domain"}], figure_method="emb",
                               figure_source="graphst", loss_methods=[], seeds={"graphst": [0], "emb": [0]},
                               run_dir="results/{sample}/{method}/seed{seed}")))
    assert drawn == {"results/compare/figures/umap_a.png": "a: emb embedding (seed 0, median ARI; trained by graphst)"}

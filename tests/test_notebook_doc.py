"""docs/notebook.py, the notebook as a script, on a tiny simulated slide written as a Space Ranger
folder: stcore.read.visium, the graph, domains with a progress bar, the figure, and squidpy's
neighbourhood enrichment on the stored graph, with no extra step."""
import importlib.util
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def test_the_notebook_script_reads_a_visium_folder_and_runs(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("stcore_notebook", REPO / "docs" / "notebook.py")
    notebook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(notebook)
    out = notebook.main(["--spots", "150", "--genes", "60", "--epochs", "2", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert "graphst seed 0" in captured.err and "2/2" in captured.err          # the progress bar
    assert (tmp_path / "demo_visium" / "outs" / "filtered_feature_bc_matrix.h5").is_file()
    adata = out["adata"]
    assert list(adata.uns["spatial"]) == ["demo_slide"]                        # the library id of the matrix file
    assert "library: demo_slide" in captured.out
    assert adata.obs["domain"].nunique() == 3 and adata.obs["annotation"].nunique() == 3
    assert adata.uns["stcore"]["graph"]["built"] is False                       # gr.spatial_graph's graph was used
    assert out["figure"].stat().st_size > 0 and 0 <= out["scores"]["NMI"] <= 1
    try:
        import squidpy  # noqa: F401
    except ImportError:
        assert out["nhood"] is None
    else:
        z = np.asarray(out["nhood"])
        assert z.shape == (3, 3) and np.isfinite(z).all()


def test_the_notebook_scripts_help_gives_each_default(capsys):
    """--help shows each option's default (the number of domains is 3 unless given) and that --out
    also holds the simulated slide's folder."""
    import pytest

    spec = importlib.util.spec_from_file_location("stcore_notebook", REPO / "docs" / "notebook.py")
    notebook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(notebook)
    with pytest.raises(SystemExit):
        notebook.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "number of domains (default: 3)" in text and "(default: 600)" in text
    assert "without --visium, of the simulated slide's folder (default: figures)" in text


def test_the_notebook_script_keeps_an_annotation_of_numbers_as_written(tmp_path):
    """--annotation of layer numbers (1, 2, 3) that names some spots only: the labels stay '1', '2', '3' in
    obs['annotation'] and in the figure's legend; the script's join (labels.reindex(adata.obs_names), which
    makes an integer column float where a spot is missing, then astype(str)) made them '1.0', '2.0', '3.0'."""
    import matplotlib.pyplot as plt
    import pandas as pd

    spec = importlib.util.spec_from_file_location("stcore_notebook", REPO / "docs" / "notebook.py")
    notebook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(notebook)
    outs, layers = notebook.demo_folder(tmp_path, 150, 60)
    labels = pd.read_csv(layers, index_col=0).iloc[:, 0]
    numbers = labels.str.lstrip("D").astype(int).iloc[5:]              # the first five spots unannotated
    numbers.to_csv(tmp_path / "numbers.csv", index_label="barcode")
    shown = []
    real = plt.Figure.savefig

    def keep(fig, *args, **kwargs):
        shown.append([t.get_text() for t in fig.axes[0].get_legend().get_texts()])
        return real(fig, *args, **kwargs)

    plt.Figure.savefig = keep
    try:
        out = notebook.main(["--visium", str(outs), "--annotation", str(tmp_path / "numbers.csv"), "--epochs", "2",
                             "--out", str(tmp_path), "--no-progress"])
    finally:
        plt.Figure.savefig = real
    annotation = out["adata"].obs["annotation"]
    assert sorted(annotation.dropna().unique()) == ["1", "2", "3"] and annotation.isna().sum() == 5
    assert shown == [["1", "2", "3", "NA"]]

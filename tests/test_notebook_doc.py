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

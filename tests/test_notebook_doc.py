"""docs/notebook.py, the notebook as a script, runs on a tiny simulated slide: graph, domains with
a progress bar, the figure, and squidpy's neighbourhood enrichment on the stored graph."""
import importlib.util
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def test_the_notebook_script_runs(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("stcore_notebook", REPO / "docs" / "notebook.py")
    notebook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(notebook)
    out = notebook.main(["--spots", "150", "--genes", "60", "--epochs", "2", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert "graphst seed 0" in err and "2/2" in err                      # the progress bar
    adata = out["adata"]
    assert "domain" in adata.obs and "stcore_domain" in adata.obs        # the annotation kept beside the domains
    assert adata.uns["stcore"]["graph"]["built"] is False         # gr.spatial_graph's graph was used
    assert out["figure"].stat().st_size > 0 and 0 <= out["scores"]["NMI"] <= 1
    try:
        import squidpy  # noqa: F401
    except ImportError:
        assert out["nhood"] is None
    else:
        z = np.asarray(out["nhood"])
        assert z.shape == (3, 3) and np.isfinite(z).all()

"""On the GPU (benchmarks/gpu/adam.sh runs it): DLPFC 151673 trained 600 epochs (seed 0) with stcore.train.Adam and with torch.optim.Adam
(torch's default on CUDA: the foreach form); are the outputs equal, and the ARIs."""
import sys, json
import numpy as np, scipy.sparse as sp, torch
sys.path.insert(0, ".")
import stcore.train as T
from stcore.io import read_h5ad_elems
from stcore.cluster import ClusterParams, cluster_features, run_cluster
from stcore.evaluate import domain_metrics
import anndata as ad
W = sys.argv[1]
slide = read_h5ad_elems(W + "/hvg.h5ad", "X", "obsm/spatial")
adj = sp.load_npz(W + "/graph.npz")
truth = ad.read_h5ad(W + "/hvg.h5ad", backed="r").obs["ground_truth"].to_numpy()
class TorchAdam(torch.optim.Adam):
    def zero_grad(self): super().zero_grad(set_to_none=True)
out = {}
for name, cls in (("stcore_adam", T.Adam), ("torch_adam", TorchAdam)):
    T.Adam = cls
    r = T.fit_graph_model(slide["X"], adj, T.TrainParams(epochs=600, seed=0, device="cuda", log_every=0))
    feats = cluster_features(r.embedding, r.decoded, r.decoder_weight, ClusterParams(seed=0))
    labels = run_cluster(feats, np.asarray(slide["obsm/spatial"]), 7, ClusterParams(seed=0))
    out[name] = (r, domain_metrics(truth, labels)["ARI"])
    print(name, "loop s", round(r.seconds, 2), "ARI", out[name][1], flush=True)
a, b = out["stcore_adam"][0], out["torch_adam"][0]
print(json.dumps({"decoded_equal": bool(np.array_equal(a.decoded, b.decoded)),
                  "max_abs_diff_decoded": float(np.abs(a.decoded - b.decoded).max()),
                  "final_loss": [float(a.losses.total.iloc[-1]), float(b.losses.total.iloc[-1])],
                  "ARI": [out["stcore_adam"][1], out["torch_adam"][1]], "gpu": torch.cuda.get_device_name()}))

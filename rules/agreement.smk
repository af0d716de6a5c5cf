AGREEMENT_METHOD = config.get("benchmark", {}).get("agreement_method", "graphst")


def agreement_runs():
    """(slide, seed) runs of the agreement method, with the files the features come from."""
    if AGREEMENT_METHOD not in METHODS:
        return []
    source = config["methods"][AGREEMENT_METHOD].get("train_from", AGREEMENT_METHOD)
    return [{"sample": s, "seed": seed, "truth": samples.loc[s, "truth"],
             "n_clusters": int(samples.loc[s, "n_clusters"]),
             "npz": f"results/{s}/{source}/seed{seed}/train.npz",
             "labels": f"results/{s}/{AGREEMENT_METHOD}/seed{seed}/labels.tsv",
             "hvg": f"results/{s}/hvg.h5ad"}
            for s in SAMPLES for seed in method_seeds(AGREEMENT_METHOD)]


AGREEMENT_RUNS = agreement_runs()


rule agreement:
    """R mclust (optional, through rpy2) against the Python mixture on the same features;
    without R the table says why it was skipped."""
    input:
        npz=sorted({r["npz"] for r in AGREEMENT_RUNS}),
        labels=[r["labels"] for r in AGREEMENT_RUNS],
        hvg=sorted({r["hvg"] for r in AGREEMENT_RUNS}),
    output:
        tsv=report("results/benchmark/agreement.tsv", category="Benchmark", labels={"table": "agreement.tsv"}),
    params:
        runs=AGREEMENT_RUNS,
        method=AGREEMENT_METHOD,
        r_mclust=config.get("benchmark", {}).get("r_mclust", True),
        cluster=dict(config["cluster"], **config["methods"].get(AGREEMENT_METHOD, {}).get("cluster", {})),
    log:
        "logs/benchmark/agreement.log",
    conda:
        "../envs/stcore.yaml"
    threads: 1
    script:
        "../scripts/agreement.py"

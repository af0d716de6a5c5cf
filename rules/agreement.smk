rule agreement:
    """R mclust (optional, through rpy2) against the R-free clusterings on the same features;
    without R the table says why it was skipped."""
    input:
        npz=sorted({r["npz"] for r in AGREEMENT_RUNS}),
        hvg=sorted({r["hvg"] for r in AGREEMENT_RUNS}),
    output:
        tsv=report("results/benchmark/agreement.tsv", category="Benchmark", labels={"table": "agreement.tsv"}),
    params:
        runs=AGREEMENT_RUNS,
        method=AGREEMENT_METHOD,
        r_mclust=BENCH.get("r_mclust", True),
        cluster=dict(config["cluster"], **config["methods"].get(AGREEMENT_METHOD, {}).get("cluster", {})),
    log:
        "logs/benchmark/agreement.log",
    benchmark:
        "results/benchmarks/benchmark/agreement.tsv"
    conda:
        "../envs/stcore.yaml"
    threads: 1
    script:
        "../scripts/agreement.py"

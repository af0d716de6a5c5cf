rule agreement:
    """R mclust (optional, through rpy2) against the R-free clusterings on the same features;
    without R the table says why it was skipped."""
    input:
        npz=sorted({r["npz"] for r in AGREEMENT_RUNS}),
        hvg=sorted({r["hvg"] for r in AGREEMENT_RUNS}),
        settings=settings_stamp("agreement"),
    output:
        tsv=report("results/compare/agreement.tsv", category="Results", labels={"table": "agreement.tsv"}),
    params:
        runs=AGREEMENT_RUNS,
        method=AGREEMENT_METHOD,
        r_mclust=COMPARE.get("r_mclust", True),
        cluster=PLAN.merged("cluster", AGREEMENT_METHOD) if AGREEMENT_RUNS else {},
    log:
        "logs/agreement.log",
    benchmark:
        record_file("agreement", "all")
    conda:
        "../envs/stcore.yaml"
    threads: 1
    script:
        "../scripts/agreement.py"

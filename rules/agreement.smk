rule agreement:
    """R mclust (optional, through rpy2) against the R-free clusterings on the same features;
    without R the table says why it was skipped."""
    input:
        npz=PLAN.agreement_files("npz"),
        hvg=PLAN.agreement_files("hvg"),
        settings=settings_stamp("agreement"),
    output:
        tsv=report("results/compare/agreement.tsv", category="Results", labels={"table": "agreement.tsv"}),
    params:
        runs=AGREEMENT_RUNS,
        method=AGREEMENT_METHOD,
        r_mclust=COMPARE.get("r_mclust", True),
        cluster=PLAN.agreement_cluster(),
    log:
        "logs/agreement.log",
    benchmark:
        record_file("agreement", "all")
    conda:
        "../envs/stcore.yaml"
    threads: 1
    script:
        "../scripts/agreement.py"

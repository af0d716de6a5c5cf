rule table:
    """One long results table over every slide, method and seed, and its summary."""
    input:
        metrics=[r["metrics"] for r in TABLE_RUNS],
        labels=[r["labels"] for r in TABLE_RUNS],
        records=sorted({r[k] for r in TABLE_RUNS for k in ("train_record", "cluster_record") if r[k]}),
        prep_records=[record_file("group" if stage == "qc" and s in GROUPS else stage, s)
                      for stage in ("qc", "hvg", "graph") for s in UNITS],
        agreement="results/compare/agreement.tsv" if AGREEMENT_RUNS else [],
        figures=[f["path"] for f in PAGE_FIGURES],
        settings=settings_stamp("table"),
    output:
        tsv=report("results/table.tsv", caption="../report/table.rst", category="Results",
                   labels={"table": "table.tsv (one row per run)"}),
        md=report("results/summary.md", caption="../report/summary.rst", category="Results",
                  labels={"table": "summary.md"}),
        html=report("results/summary.html", caption="../report/summary.rst", category="Results",
                    labels={"table": "summary (shown on the first page)"}),
    params:
        runs=TABLE_RUNS,
        samples=SAMPLES,
        compare=COMPARE,
        figures=PAGE_FIGURES,
    log:
        "logs/table.log",
    benchmark:
        record_file("table", "all")
    conda:
        "../envs/stcore.yaml"
    threads: 1
    script:
        "../scripts/table.py"

rule table:
    """One long results table over every slide, method and seed, and its summary."""
    input:
        metrics=PLAN.table_files("metrics"),
        labels=PLAN.table_files("labels"),
        records=PLAN.table_records(),
        prep_records=PLAN.prep_records(),
        agreement=PLAN.agreement_table(),
        figures=PLAN.page_figure_files(),
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

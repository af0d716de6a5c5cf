rule benchmark:
    """Target: the benchmark table, its summary and figures."""
    default_target: False
    input:
        "results/benchmark/ari.tsv",
        "results/benchmark/summary.md",
        rules.report_figures.output,


rule benchmark_table:
    """Long table (slide, variant, seed) and the wide summary next to published numbers."""
    input:
        metrics=[r["metrics"] for r in BENCHMARK_RUNS],
        labels=[r["labels"] for r in BENCHMARK_RUNS],
        npz=sorted({r["npz"] for r in BENCHMARK_RUNS}),
        hvg=expand("results/{sample}/hvg.h5ad", sample=SAMPLES),
        bench=sorted({r[k] for r in BENCHMARK_RUNS for k in ("train_bench", "cluster_bench")}),
        agreement="results/benchmark/agreement.tsv",
    output:
        tsv=report("results/benchmark/ari.tsv", category="Benchmark", labels={"table": "ari.tsv (long)"}),
        md=report("results/benchmark/summary.md", category="Benchmark", labels={"table": "summary.md"}),
    params:
        runs=BENCHMARK_RUNS,
        reference_dir=BENCH.get("reference_dir", "../shared/reference"),
        graph_method=BENCH.get("figure_method", "graphst"),
        baseline=BENCH.get("baseline", "expression"),
        ablation=BENCH.get("ablation", "recon_only"),
    log:
        "logs/benchmark/table.log",
    benchmark:
        "results/benchmarks/benchmark/table.tsv"
    conda:
        "../envs/stcore.yaml"
    threads: 1
    script:
        "../scripts/benchmark.py"

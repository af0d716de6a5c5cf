rule graph:
    """Spatial neighbour graph (sparse adjacency) from the coordinates."""
    input:
        h5ad="results/{sample}/hvg.h5ad",
        settings=settings_stamp("graph"),
    output:
        npz="results/{sample}/graph.npz",
        params="results/{sample}/graph.json",
    params:
        graph=config["graph"],
    log:
        "logs/graph/{sample}.log",
    benchmark:
        record_file("graph", "{sample}")
    conda:
        "../envs/stcore.yaml"
    threads: 1
    resources:
        mem_mb=RESOURCES.graph_mem_mb,
    script:
        "../scripts/graph.py"

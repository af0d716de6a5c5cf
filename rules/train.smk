rule train:
    """Fit one method of the registry (stcore.methods) for one slide and seed."""
    input:
        h5ad="results/{sample}/hvg.h5ad",
        graph=train_graph,
        settings=settings_stamp("train"),
    output:
        npz=run_file("train.npz"),
        losses=run_file("losses.tsv"),
    params:
        model=method_model,
        train=train_settings,
        seed=seed_param,
    log:
        "logs/train/{sample}.{method}.seed{seed}.log",
    benchmark:
        record_file("train", RUN_JOB)
    conda:
        env_for_train
    threads: 2
    resources:
        mem_mb=RESOURCES.train_mem_mb,
        runtime=RESOURCES.train_runtime,
        gpu=train_gpus,
    script:
        "../scripts/train.py"

"""The workflow's plan: what the Snakefile runs, on what, with which resources.

Standard library only (the Snakefile loads this package before any of the scientific stack, and
without running ``stcore/__init__.py``), so every part of the plan is an ordinary function with
ordinary unit tests (tests/test_plan.py):

- :mod:`.sheet`: the sample sheet as spreadsheets save it, checked against its schema, the names that
  become paths, groups;
- :mod:`.runs`: :class:`~.runs.Plan`, the runs of a config (methods, seeds, slides, ensembles),
  their files, the slides the simulate rule makes and each slide's qc inputs (its files, its input
  stamp), the settings each stage takes, the inputs and params of a run's consensus and export
  jobs, of the results table, the comparison's figures and agreement, and the checks a later step
  would otherwise fail;
- :mod:`.resources`: memory and time per job from the slide's size and the registry's facts, as
  the rules ask for them (:class:`~.resources.JobResources`);
- :mod:`.failures`: the one line per failed job repeated at the end of a run, and one per cause several jobs
  share (:func:`~.failures.end_of_run_lines`);
- :mod:`.stamps`: the settings each job ran with, so a changed setting reruns it without Snakemake's
  records, and ``snakemake --report`` refused where they are not this config's;
- :mod:`.settings`: the config checked as a run checks it (:func:`~.settings.checked_config`: keys given
  twice, renamed keys, the schema), values made what the schema means (``20.0`` -> 20), the allocator.

Every refusal is a :class:`PlanError` whose text is the one line the user reads; the Snakefile
raises it as Snakemake's WorkflowError.
"""


class PlanError(ValueError):
    """A config or sample sheet the workflow cannot run: one line naming what and the fix."""


__all__ = ["PlanError"]

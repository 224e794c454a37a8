"""The labs' MLflow experiments: the description `mlflow ui` shows on a lab's experiment and on its sweeps'.

Each study says what its lab asks (studies/<study>/record.py: ASKS) and names its experiment in the
registry (studies/__init__.py), which also names where its sweeps record (`<lab>-sweeps`).
"""
HOW_TO_READ = ("Open a run, then *Model metrics*: the capitalized section comes first and holds the lab's "
               "headline curves; lowercase sections hold the per-layer detail; one-value summaries "
               "(un-prefixed keys) come last. The run's description says what happened, and its artifacts hold "
               "the lab's plot, results document and manifest.json (what repeating it bit for bit needs). If the "
               "experiment opens on an empty GenAI overview, switch the *Model training* toggle at the top of the "
               "page (or add `?workflowType=machine_learning` to the address).")


def description(asks: str) -> str:
    """A lab experiment's description (tag mlflow.note.content): what it asks, then how to read it."""
    return f"{asks}\n\n{HOW_TO_READ}"


def sweep_description(experiment: str, entry: str) -> str:
    """The description of the experiment the sweeps of lab `experiment` (its entry point `entry`) record in."""
    return description(f"**Sweeps of {experiment}.** A grid of `{entry}` runs, inits x depths x seeds "
            f"(`mlflow run . -e sweep -P study={entry}`). The parent run holds the sweep's summary "
            "(sweep.png, sweep.json, the per-init medians against depth); each child is exactly the run that "
            f"`{entry}` with that config records alone, with the same metric keys as in {experiment}.")

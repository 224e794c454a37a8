"""The labs' MLflow experiments: the description `mlflow ui` shows on a lab's experiment and on its sweeps'.

Each study says what its lab asks and how its runs are drawn (studies/<study>/record.py: ASKS, VIEW and
SWEEP_MEDIAN) and names its experiment in the registry (studies/__init__.py), which also names where its
sweeps record (`<lab>-sweeps`).
"""
from dataclasses import dataclass


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


# ---- what a lab's experiment opens on: a plain sentence, two links, the shared chart view ----------
PER_LAYER = ("act_mean", "act_std", "sat", "grad_mean", "grad_std", "grad_data", "update_data", "lsuv")  # ablate, diagnose
SIGNAL = ("gradient", "correlation", "moments", "overflow", "lsuv")  # walk's sections after Variance
CHILDREN, PARENTS = "tags.`initstudy.role` != 'parent'", "tags.`initstudy.role` = 'parent'"
VIEW_KEY = "initstudy"  # the shared view's key: experiment tag mlflow.sharedViewState.initstudy


def view_path(experiment_id: str) -> str:
    """The address (relative to the UI's root) of an experiment's runs as charts in the lab's view."""
    return (f"#/experiments/{experiment_id}/runs?viewStateShareKey={VIEW_KEY}&compareRunsMode=CHART"
            "&workflowType=machine_learning")


@dataclass(frozen=True)
class View:
    plain: str  # one plain sentence (no markdown): the experiments list shows a description's start as text
    charts: tuple = ()  # the shared view's first charts: (metric keys drawn together, log y)
    folded: tuple = ()  # sections shown folded (per-layer detail)
    rows: str = CHILDREN  # the runs drawn (a filter: with an order other than by date, flat, not under parents)

    def state(self) -> dict:
        """The shared view: MLflow 3.17's search facets and ExperimentPageUIState, as JSON in the experiment
        tag mlflow.sharedViewState.<key>: our charts first with log y where asked, the per-layer sections
        folded. Metrics not named here get MLflow's own charts, appended to their sections."""
        sections, cards = {}, []
        for i, (metric_keys, log) in enumerate(self.charts):
            name = metric_keys[0].rsplit("/", 1)[0] if "/" in metric_keys[0] else "Model metrics"
            sid = sections.setdefault(name, f"s-{name}")
            cards.append({"type": "LINE", "uuid": f"c{i}", "metricKey": metric_keys[0],
                          "selectedMetricKeys": list(metric_keys), "scaleType": "log" if log else "linear",
                          "xAxisKey": "step", "xAxisScaleType": "linear", "useGlobalXaxisKey": False,
                          "lineSmoothness": 0, "metricSectionId": sid, "isGenerated": False, "deleted": False,
                          "runsCountToCompare": 10})
        order = [{"uuid": sid, "name": n, "display": True, "isReordered": True} for n, sid in sections.items()]
        order += [{"uuid": f"s-{n}", "name": n, "display": False, "isReordered": False} for n in self.folded]
        return {"searchFilter": self.rows, "orderByKey": "tags.`mlflow.runName`", "orderByAsc": True,
                "compareRunCharts": cards, "compareRunSections": order, "isAccordionReordered": True,
                "hideEmptyCharts": True, "runsHiddenMode": "FIRST_20_RUNS"}


@dataclass(frozen=True)
class Face:
    """What `mlflow ui` shows of a lab's experiment: its description and its shared chart view (or None)."""
    text: str
    view: View | None = None


def sweeps_view(lab: str, median: str | None) -> View:
    """The view of a lab's sweeps (`<lab>-sweeps`): the parents' per-init medians of `median` (sweep.png's
    first panel) against depth, step = depth, in one log chart."""
    charts = (((f"{median}_median/kaiming", f"{median}_median/xavier", f"{median}_median/uniform"), True),)
    return View(f"Sweeps of {lab}: how its finding moves across inits, depths and seeds.",
                charts if median else (), rows=PARENTS)


def full_description(view: View | None, experiment_id: str, text: str) -> str:
    """The description a lab's experiment gets: its view's plain sentence and the links (relative: any host
    and port; they need the experiment's id), then `text` (description())."""
    if view is None:
        return text
    links = (f"[Runs as charts, log scale]({view_path(experiment_id)}) · "
             f"[runs table](#/experiments/{experiment_id}/runs?workflowType=machine_learning)")
    return f"{view.plain} {links}\n\n{text}"

"""The one registry of studies: STUDIES, name -> Study. The CLI, the experiments, sweeps, export and reproduce read it.

A study is its folder initstudy/studies/<name>/, one entry here and its MLproject entry; nothing else
names it. An entry names its modules ("package.module" or "package.module:attr") and each loads on
first use, so `initstudy walk` imports walk's job alone and a sweep worker the numerics only; a test
may register a study whose parts are objects (register(Study(...))). Nothing here imports MLflow or Dask.
The sweep worker's task (machine, compute) sits here too: a worker imports this module and the numerics only.
"""
import importlib
import os
import signal
import time
from dataclasses import dataclass


def load(ref):
    """A "package.module[:attr]" reference, imported; anything else (a module, a class, a function) as is."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    out = importlib.import_module(module)
    return getattr(out, attr) if attr else out


@dataclass(frozen=True)
class Sweep:
    """What a sweep grids over (every field of config can be an axis) and what its workers compute."""
    config: object  # the config class
    compute: object  # (config, init) -> result, pure
    row: object  # result -> {summary key: number or None}: a child's row of sweep.json / sweep.png
    panels: tuple  # (row key, y label, log scale) of sweep.png


@dataclass(frozen=True)
class Lab:
    """A study's lab folder projects/<experiment>/: what export writes from the runs and reproduce re-runs.

    runs: what one folder is made of: "inits" (a parent with a child per init, or one single run per
    init), "run" (one run is the whole study), "parent" (one parent run; its children are cells)."""
    runs: str
    results: str  # the results document's file name
    block: str  # the key a results document must have (its main block)
    plot: str  # the figure's file name, re-drawn from the document: draw(doc, path)
    draw: object  # the function, or its "package.module:attr" (loaded when export draws)
    script: str  # the folder's script (re-runs the manifest, compares); script_doc: what it re-runs
    script_doc: str
    config: object = None  # the config class the manifest's config parses into
    seeds: object = None  # (config, inits, recorded seeds) -> {stream: seed} the manifest must hold
    rerun: object = None  # (config, inits) -> (results document, results_summary), recomputed
    series: object = None  # results document -> {name: array}, compared bit for bit
    align: object = None  # (recorded doc, recomputed doc) -> (doc, series, note): a document from before a block
    dataset: object = None  # config -> the dataset, checked against the manifest's data block where it has one
    check: object = None  # module: a study's own reproduce (prepare(path, spec) -> manifest, run(path, tol, spec))
    usage: str = ""  # the script's docstring, where not the shared one (publish/export.py: SCRIPT_DOC)
    prefer: object = None  # export: params -> True for the complete set to prefer (walk: the linear one)
    companion: object = None  # export: (params, other params) -> True for a set the README quotes beside


@dataclass(frozen=True)
class Study:
    name: str  # the command and entry point: `initstudy <name>`, `mlflow run . -e <name>`
    experiment: str  # its lab: the MLflow experiment, the manifest's "experiment", the initstudy.experiment tag
    job: object  # module: HELP, add_arguments(parser), main(args); a sweepable study's child_record(...)
    record: object  # module: ASKS (the experiment's description), note(results, child, artifacts) (a run's)
    sweep: Sweep | None = None  # set: `initstudy sweep --study <name>` grids it
    lab: object = None  # Lab: the exported folder (export writes it, reproduce checks it)
    readme: object = None  # module: numbers(doc, manifest, ...) for readme.md.j2 beside it (publish/readme.py)

    def part(self, name: str):
        """One of the study's parts, loaded: study.part("job"), study.part("record")."""
        return load(getattr(self, name))

    def sweep_part(self, name: str):
        return load(getattr(self.sweep, name))


def _here(study: str, module: str, attr: str = "") -> str:
    return f"initstudy.studies.{study}.{module}" + (f":{attr}" if attr else "")


def _study(name: str, experiment: str, sweep: Sweep | None = None, lab: bool = False) -> Study:
    """A study laid out as the folders here are: job.py, record.py (and lab.py, readme.py where it exports a folder)."""
    return Study(name, experiment, _here(name, "job"), _here(name, "record"), sweep,
                 _here(name, "lab", "LAB") if lab else None, _here(name, "readme") if lab else None)


STUDIES = {s.name: s for s in (
    _study("walk", "10-variance-walk", lab=True, sweep=Sweep(
        _here("walk", "compute", "WalkConfig"), _here("walk", "compute", "run_walk"), _here("walk", "record", "sweep_row"),
        (("final_layer_variance", "final-layer activation variance (log scale)", True),))),
    _study("ablate", "10-init-matters", lab=True, sweep=Sweep(
        _here("ablate", "compute", "AblateConfig"), _here("ablate", "compute", "train"),
        _here("ablate", "record", "sweep_row"),
        (("final_loss", "final training loss, runs that trained (log scale)", True),
         ("steps_to_nan", "steps to NaN, runs that diverged", False)))),
    _study("diagnose", "03-makemore"),
    _study("scaling", "02-why-sqrt-n", lab=True),
    _study("phase", "20-trainability", lab=True, sweep=Sweep(
        _here("phase", "compute", "CellConfig"), _here("phase", "compute", "train_cell"),
        _here("phase", "record", "sweep_row"),
        (("train_acc", "final training accuracy (whole training set)", False),))),
    _study("residual", "40-residual", lab=True, sweep=Sweep(
        _here("residual", "compute", "CellConfig"), _here("residual", "compute", "train_cell"),
        _here("residual", "record", "sweep_row"),
        (("train_acc", "final training accuracy (whole training set)", False),))),
    _study("transfer", "30-width-transfer", lab=True, sweep=Sweep(
        _here("transfer", "compute", "CellConfig"), _here("transfer", "compute", "train_cell"),
        _here("transfer", "record", "sweep_row"),
        (("train_loss", "final training loss (whole training set, log scale)", True),))),
    _study("coordcheck", "30-width-coordcheck"),
)}


def register(study: Study) -> Study:
    """Add a study at run time (a test's toy study); the folders here are registered above."""
    STUDIES[study.name] = study
    return study


def with_lab() -> dict:
    """{experiment: study} of the studies that export a lab folder, in the registry's order."""
    return {s.experiment: s for s in STUDIES.values() if s.lab is not None}


def by_experiment(experiment: str) -> Study | None:
    """The study whose lab is `experiment`, or None."""
    return next((s for s in STUDIES.values() if s.experiment == experiment), None)


SWEEP_DEFAULT = "ablate"  # `initstudy sweep`'s study when none is given


def sweepable() -> tuple:
    """The studies a sweep can grid, its default first (the order its messages list them in)."""
    names = [name for name, s in STUDIES.items() if s.sweep is not None]
    return tuple(sorted(names, key=lambda name: name != SWEEP_DEFAULT))


def sweep_experiment(experiment: str) -> str:
    """Where a sweep of the lab `experiment` records: its own experiment, so a sweep's 27+ children do
    not bury the lab's handful of runs, and the lab's experiment stays what projects/ was exported from."""
    return f"{experiment}-sweeps"


def _sweeps_of(experiment: str) -> Study | None:
    """The study whose sweeps record in `experiment`, or None."""
    return next((s for s in STUDIES.values() if s.sweep and sweep_experiment(s.experiment) == experiment), None)


def description(experiment: str) -> str | None:
    """The description `mlflow ui` shows on a lab's experiment or its sweeps' (None: not a lab's)."""
    from initstudy.record import labs

    study = by_experiment(experiment)
    if study is not None:
        return labs.description(study.part("record").ASKS)
    study = _sweeps_of(experiment)
    return None if study is None else labs.sweep_description(study.experiment, study.name)


def view(experiment: str):
    """The shared chart view of a lab's experiment (its record's VIEW) or of its sweeps' (labs.sweeps_view, for
    a lab that has a VIEW); None for any other experiment."""
    from initstudy.record import labs

    study = by_experiment(experiment)
    if study is not None:
        return getattr(study.part("record"), "VIEW", None)
    study = _sweeps_of(experiment)
    record = study.part("record") if study is not None else None
    if getattr(record, "VIEW", None) is None:
        return None
    return labs.sweeps_view(study.experiment, getattr(record, "SWEEP_MEDIAN", None))


def face(experiment: str):
    """What `mlflow ui` shows of a lab's experiment or its sweeps' (labs.Face: description and view); None
    for any other experiment. The tracker sets it on the experiments it creates."""
    from initstudy.record import labs

    text = description(experiment)
    return None if text is None else labs.Face(text, view(experiment))


# ---- on a worker ----

_machine = {}  # what this worker process computes on: its BLAS and machine, read on its first task


def machine() -> dict:
    """The kernel and machine recorded on every child this worker computes. Read on the first task, not
    at the worker's start (run/engine.start_worker): psutil's import and the reads take ~40 ms that a
    worker training ablate's inits never needs."""
    from initstudy.record import provenance

    if not _machine:
        _machine.update(blas=provenance.blas(), hardware=provenance.hardware())
    return dict(_machine)


def compute(study: str, config, init: str):
    """A sweep task: (result, the worker's {blas, hardware}, (wall, CPU) seconds of compute measured here)."""
    machine_ = machine()
    _fault_injection(config, init)
    run = STUDIES[study].sweep_part("compute")
    t0, c0 = time.perf_counter(), time.thread_time()
    r = run(config, init)
    return r, machine_, (time.perf_counter() - t0, time.thread_time() - c0)


def _fault_injection(config, init):
    """INITSTUDY_FAULT_KILL_WORKER="field=value": a task whose config has that value SIGKILLs its own
    worker, every time (the fault tests' crashing task; a real crash, not a mock). Unset: nothing."""
    spec = os.environ.get("INITSTUDY_FAULT_KILL_WORKER")
    if spec:
        key, _, value = spec.partition("=")
        have = init if key == "init" else getattr(config, key, None)
        if str(have) == value:
            os.kill(os.getpid(), signal.SIGKILL)

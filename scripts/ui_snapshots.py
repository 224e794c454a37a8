#!/usr/bin/env python
"""What a new user sees in `mlflow ui`, as screenshots in docs/ui/.

    python scripts/ui_snapshots.py [--out docs/ui] [--work DIR] [--source REPO] [--reuse]

1. clones this checkout's committed code into a fresh folder (`--work`, else a temporary one) and
   creates its SQLite store first (several processes creating a new store at once crash);
2. runs the README's commands there, as a user would: `mlflow run . -e walk`, `-e ablate`,
   `-e diagnose -P steps=1000` and a small sweep, all `--env-manager local`;
3. starts `mlflow ui` on 127.0.0.1, looks at it with headless Chromium (initstudy/chromium.py,
   waiting for each page to settle) and saves 1400x900 PNGs;
4. stops the server and the browser by their PIDs.

`--reuse` skips steps 1-2 on a `--work` folder already filled.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the DevTools client is test tooling (tests/chromium.py)
from chromium import Chromium, available  # noqa: E402

SIZE = (1400, 900)
SWEEP = {"inits": "uniform,xavier,kaiming", "depths": "6,12", "seeds": "0", "steps": "300"}


def commands() -> list[list[str]]:
    """The README's commands; the sweep with whichever worker parameter MLproject declares today."""
    import yaml  # comes with MLflow

    entries = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]
    sweep = {k: v for k, v in SWEEP.items() if k in entries["sweep"]["parameters"]}
    if "workers" in entries["sweep"]["parameters"]:
        sweep["workers"] = "2"
    run = [sys.executable, "-m", "mlflow", "run", ".", "--env-manager", "local", "-e"]  # `mlflow run . ...`
    return [run + ["walk"], run + ["ablate"], run + ["diagnose", "-P", "steps=1000"], run + ["scaling"],
            run + ["sweep"] + [a for k, v in sweep.items() for a in ("-P", f"{k}={v}")]] + \
        ([run + ["phase", "-P", "preset=small"]] if "phase" in entries else [])


def user_env(project: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(project)  # the clone's initstudy, not an installed one
    return env


def create_store(project: Path):
    """MLflow's default store, sqlite:///mlflow.db in the folder the user runs from, made before
    any run (several processes creating a new SQLite store at once crash)."""
    subprocess.run([sys.executable, "-c", "import mlflow; mlflow.MlflowClient().search_experiments()"],
                   cwd=project, env=user_env(project), check=True, capture_output=True, timeout=300)


def run_command(cmd: list[str], project: Path, timeout: float = 1800):
    """A user's command in the project folder; its output shown only when it fails."""
    t = time.monotonic()
    print("$", " ".join(cmd), flush=True)
    r = subprocess.run(cmd, cwd=project, env=user_env(project), capture_output=True, text=True, timeout=timeout)
    print(f"  exit {r.returncode} in {time.monotonic() - t:.0f} s", flush=True)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {r.returncode}):\n{r.stderr[-3000:]}")


def fill(source: Path, project: Path):
    if project.exists():
        sys.exit(f"ui_snapshots: error: {project} exists; pass --reuse to photograph it as it is")
    subprocess.run(["git", "clone", "--quiet", "--local", str(source), str(project)], check=True)
    create_store(project)
    for cmd in commands():
        run_command(cmd, project)


class UI:
    """`mlflow ui` on the project's store, on a free port of 127.0.0.1; stopped by its PID."""

    def __init__(self, project: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(project / "mlflow-ui.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--host", "127.0.0.1", "--port", str(self.port),
                                      "--backend-store-uri", f"sqlite:///{project / 'mlflow.db'}"],
                                     cwd=project, env=self.env(project), stdout=self.log, stderr=self.log)

    def wait(self, timeout: float = 120) -> "UI":
        """Until the server answers (it starts in ~10-40 s: meanwhile the caller can fill the store)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(self.url + "/health", timeout=2).read()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"mlflow ui did not start; see {self.log.name}")
                time.sleep(0.3)

    @staticmethod
    def env(project: Path) -> dict:
        # no job runner: it serves GenAI judges, and would start 8 more processes on our 2 cores
        return {**user_env(project), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}

    def api(self, endpoint: str, body: dict) -> dict:
        """MLflow's REST API, the endpoints the UI itself calls."""
        req = urllib.request.Request(f"{self.url}/api/2.0/mlflow/{endpoint}", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(req, timeout=30).read())

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


# -- what the UI shows: runs found through the REST API, pages read through the DOM -----------------
CARD = "[data-testid=experiment-view-compare-runs-card]"  # one chart on a run's "Model metrics" tab
# The chart cards rendered now (the page renders those near the window), with the metric key (the
# card's h4 title) and whether the card lies wholly inside the window.
CHARTS_JS = """[...document.querySelectorAll('%s')].map(c => {
  const h = c.querySelector('h4'), r = c.getBoundingClientRect();
  return {key: h ? (h.getAttribute('title') || h.textContent.trim()) : '', top: Math.round(r.top),
          bottom: Math.round(r.bottom), visible: r.top >= 0 && r.bottom <= innerHeight && r.height > 0};
})""" % CARD
# The experiments page's table: {name, description, visible} per row, as its cells show them.
EXPERIMENT_ROWS_JS = """(() => {
  const [head, ...rows] = document.querySelectorAll('[role=row]');
  const col = [...head.children].map(c => c.innerText.trim());
  return rows.map(r => {
    const cells = [...r.children].map(c => c.innerText.trim()), b = r.getBoundingClientRect();
    return {name: cells[col.indexOf('Name')], description: cells[col.indexOf('Description')],
            visible: b.top >= 0 && b.bottom <= innerHeight && b.height > 0};
  });
})()"""
SCROLLER_JS = """[...document.querySelectorAll('*')].find(e => e.scrollHeight > e.clientHeight + 50 &&
  ['auto', 'scroll'].includes(getComputedStyle(e).overflowY) && e.querySelector('%s'))""" % CARD


def all_runs(ui: "UI") -> list[dict]:
    """Every run of every experiment: {id, experiment_id, name, tags}."""
    exps = ui.api("experiments/search", {"max_results": 1000})["experiments"]
    runs = ui.api("runs/search", {"experiment_ids": [e["experiment_id"] for e in exps], "max_results": 1000})
    return [{"id": r["info"]["run_id"], "experiment_id": r["info"]["experiment_id"], "name": r["info"]["run_name"],
             "tags": {t["key"]: t["value"] for t in r["data"].get("tags", [])}} for r in runs.get("runs", [])]


def find_run(runs: list[dict], entry: str | None = None, parent_entry: str | None = None, **tags) -> dict:
    """The newest run with these tags (dots as `__`: initstudy__init=...), the top-level run of an
    `mlflow run -e ENTRY` (entry=), or a child of one (parent_entry=)."""
    def top(r, e):  # children may carry their parent's mlflow.project.* tags: a top run has no parent
        return r["tags"].get("mlflow.project.entryPoint") == e and "mlflow.parentRunId" not in r["tags"]
    want = {k.replace("__", "."): v for k, v in tags.items()}
    for r in runs:  # runs/search answers newest first
        if "initstudy.moved_to" in r["tags"]:  # the run `mlflow run` opened in Default, left as a pointer
            continue
        if entry and not top(r, entry):
            continue
        if parent_entry and not any(top(p, parent_entry) and p["id"] == r["tags"].get("mlflow.parentRunId")
                                    for p in runs):
            continue
        if all(r["tags"].get(k) == v for k, v in want.items()):
            return r
    raise LookupError(f"no run with entry={entry} parent_entry={parent_entry} {want}")


def run_url(ui: "UI", run: dict, tab: str = "model-metrics") -> str:
    return f"{ui.url}/#/experiments/{run['experiment_id']}/runs/{run['id']}/{tab}?workflowType=machine_learning"


def open_view(ui: "UI", page, experiment_id: str):
    """An experiment's runs as charts in the lab's shared view, as its description links it."""
    from initstudy.record.labs import view_path

    page.goto(f"{ui.url}/{view_path(experiment_id)}", ready=f"document.querySelector('{CARD} .js-plotly-plot')")


def open_charts(ui: "UI", page, run: dict):
    page.goto(run_url(ui, run), ready=f"document.querySelector('{CARD}')")


def is_chart(key: str, name: str) -> bool:
    """Whether a chart's metric key is `name`, in whichever section: `loss`, `Training/loss`."""
    return key.rsplit("/", 1)[-1] == name


def scroll_to_chart(page, name: str) -> bool:
    """Scroll the charts, a window at a time as a person would (cards are rendered only near the
    window), until the chart of `name` (any section) is near the top of the window; False if the
    page has no such chart (it is left scrolled to the bottom)."""
    height, step = page.eval(f"[({SCROLLER_JS}).scrollHeight, ({SCROLLER_JS}).clientHeight]")
    for y in range(0, height, step):
        page.scroll_to(y, SCROLLER_JS)
        found = [c for c in page.eval(CHARTS_JS) if is_chart(c["key"], name)]
        if found:
            pane = page.eval(f"(e => e.scrollTop - e.getBoundingClientRect().top)({SCROLLER_JS})")
            page.scroll_to(pane + found[0]["top"] - 60, SCROLLER_JS)  # the chart's section title above it
            return True
    return False


def close_assistant(ui: "UI", page):
    """A fresh browser opens MLflow's Assistant panel over a third of the window; close it as a
    user would once (the choice stays in the browser's local storage)."""
    page.goto(ui.url + "/#/experiments", ready="document.querySelector('[role=row]')")
    page.eval("localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false')")
    page.reload(ready="document.querySelector('[role=row]')")


def save(page, path: Path):
    """A screenshot, made small: PNG with a 256-colour palette (the UI's flat colours survive it)."""
    from io import BytesIO

    from PIL import Image  # comes with matplotlib

    img = Image.open(BytesIO(page.screenshot(None))).convert("RGB")
    img.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"  {path} ({path.stat().st_size // 1024} KB)", flush=True)


def shoot(ui: "UI", browser, out: Path):
    runs = all_runs(ui)
    page = browser.new_page(*SIZE)
    ablate = find_run(runs, parent_entry="ablate", initstudy__init="kaiming")
    # 1. what a new user sees: the experiment opens on MLflow's GenAI overview
    page.goto(f"{ui.url}/#/experiments/{ablate['experiment_id']}", ready="document.body.innerText.length > 200")
    save(page, out / "experiment_first_view.png")
    close_assistant(ui, page)
    # 2. the experiments page
    page.goto(ui.url + "/#/experiments", ready="document.querySelector('[role=row]')")
    save(page, out / "experiments.png")
    # 3. the runs of the ablate experiment, in the training view
    page.goto(f"{ui.url}/#/experiments/{ablate['experiment_id']}/runs?workflowType=machine_learning",
              ready="document.body.innerText.includes('matching runs')")
    save(page, out / "experiment_runs.png")
    # 4. a walk child's charts; the walk parent's (its Finding section); the lab's shared chart view
    open_charts(ui, page, find_run(runs, parent_entry="walk", initstudy__init="kaiming"))
    save(page, out / "walk_child.png")
    open_charts(ui, page, find_run(runs, entry="walk"))
    save(page, out / "walk_parent.png")
    open_view(ui, page, find_run(runs, entry="walk")["experiment_id"])
    save(page, out / "walk_charts.png")
    # 5. an ablate child's first screen (and its page's height); the parent; the lab's chart view
    open_charts(ui, page, ablate)
    save(page, out / "ablate_child.png")
    print(f"  ablate child: charts {page.eval(f'({SCROLLER_JS}).scrollHeight')} px tall", flush=True)
    open_charts(ui, page, find_run(runs, entry="ablate"))
    save(page, out / "ablate_parent.png")
    open_view(ui, page, ablate["experiment_id"])
    save(page, out / "ablate_charts.png")
    # 6. the diverged run's charts: its first screen says where it diverged
    open_charts(ui, page, find_run(runs, parent_entry="ablate", initstudy__init="uniform"))
    save(page, out / "diverged_run.png")
    # 6b. the scaling run: its Finding section first
    open_charts(ui, page, find_run(runs, entry="scaling"))
    save(page, out / "scaling_run.png")
    # 7. the sweep parent: its charts, and its summary picture
    sweep = find_run(runs, entry="sweep")
    open_charts(ui, page, sweep)
    save(page, out / "sweep_parent.png")
    page.goto(run_url(ui, sweep, "artifacts/sweep.png"), ready="[...document.images].some(i => i.naturalWidth > 300)")
    save(page, out / "sweep_parent_summary.png")
    # 8. the phase diagram's parent (small preset): its charts, and phase.png
    phase = next((r for r in runs if r["tags"].get("mlflow.project.entryPoint") == "phase"
                  and "mlflow.parentRunId" not in r["tags"] and "initstudy.moved_to" not in r["tags"]), None)
    if phase:
        open_charts(ui, page, phase)
        save(page, out / "phase_parent.png")
        page.goto(run_url(ui, phase, "artifacts/phase.png"), ready="[...document.images].some(i => i.naturalWidth > 300)")
        save(page, out / "phase_parent_summary.png")
        cell = next(r for r in runs if r["tags"].get("mlflow.parentRunId") == phase["id"])
        open_charts(ui, page, cell)
        save(page, out / "phase_cell.png")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(REPO / "docs" / "ui"))
    p.add_argument("--work", default=None, help="folder for the clone and its store (default: a temporary one)")
    p.add_argument("--source", default=str(REPO), help="the git checkout whose committed code runs")
    p.add_argument("--reuse", action="store_true", help="photograph --work as it is, without running anything")
    args = p.parse_args(argv)
    if not available():
        sys.exit("ui_snapshots: error: no /usr/bin/chromium (Debian: apt-get install chromium)")
    if args.reuse and not (args.work and (Path(args.work) / "project" / "mlflow.db").exists()):
        sys.exit("ui_snapshots: error: --reuse needs a --work folder filled by an earlier run")
    work = Path(args.work or tempfile.mkdtemp(prefix="ui-snapshots-")).resolve()
    project = work / "project"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        if not args.reuse:
            work.mkdir(parents=True, exist_ok=True)
            fill(Path(args.source).resolve(), project)
        ui = UI(project)
        try:
            ui.wait()
            with Chromium() as browser:
                shoot(ui, browser, out)
        finally:
            ui.stop()
    except (RuntimeError, LookupError, subprocess.SubprocessError) as e:  # CDPError is a RuntimeError
        sys.exit(f"ui_snapshots: error: {e}")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

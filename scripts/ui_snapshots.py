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
sys.path.insert(0, str(REPO))
from initstudy.chromium import Chromium, available  # noqa: E402

SIZE = (1400, 900)
SWEEP = {"inits": "uniform,xavier,kaiming", "depths": "6,12", "seeds": "0", "steps": "300"}


def commands() -> list[list[str]]:
    """The README's commands; the sweep with whichever worker parameter MLproject declares today."""
    import yaml  # comes with MLflow

    entries = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]
    sweep = {k: v for k, v in SWEEP.items() if k in entries["sweep"]["parameters"]}
    if "workers" in entries["sweep"]["parameters"]:
        sweep["workers"] = "2"
    run = ["mlflow", "run", ".", "--env-manager", "local", "-e"]
    return [run + ["walk"], run + ["ablate"], run + ["diagnose", "-P", "steps=1000"],
            run + ["sweep"] + [a for k, v in sweep.items() for a in ("-P", f"{k}={v}")]]


def user_env(project: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(project)  # the clone's initstudy, not an installed one
    return env


def fill(source: Path, project: Path):
    if project.exists():
        sys.exit(f"ui_snapshots: error: {project} exists; pass --reuse to photograph it as it is")
    subprocess.run(["git", "clone", "--quiet", "--local", str(source), str(project)], check=True)
    env = user_env(project)
    # the store first: MLflow's default, sqlite:///mlflow.db in the folder the user runs from
    subprocess.run([sys.executable, "-c", "import mlflow; mlflow.MlflowClient().search_experiments()"],
                   cwd=project, env=env, check=True, capture_output=True)
    for cmd in commands():
        t = time.monotonic()
        print("$", " ".join(cmd), flush=True)
        r = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
        print(f"  exit {r.returncode} in {time.monotonic() - t:.0f} s", flush=True)
        if r.returncode:
            sys.exit(f"ui_snapshots: error: {' '.join(cmd)} failed:\n{r.stderr[-3000:]}")


class UI:
    """`mlflow ui` on the project's store, on a free port of 127.0.0.1; stopped by its PID."""

    def __init__(self, project: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(project / "mlflow-ui.log", "w")
        self.proc = subprocess.Popen(["mlflow", "ui", "--host", "127.0.0.1", "--port", str(self.port),
                                      "--backend-store-uri", f"sqlite:///{project / 'mlflow.db'}"],
                                     cwd=project, env=user_env(project), stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(self.url + "/health", timeout=2).read()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"mlflow ui did not start; see {self.log.name}")
                time.sleep(0.3)

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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(REPO / "docs" / "ui"))
    p.add_argument("--work", default=None, help="folder for the clone and its store (default: a temporary one)")
    p.add_argument("--source", default=str(REPO), help="the git checkout whose committed code runs")
    p.add_argument("--reuse", action="store_true", help="photograph --work as it is, without running anything")
    args = p.parse_args(argv)
    if not available():
        sys.exit("ui_snapshots: error: no /usr/bin/chromium (Debian: apt-get install chromium)")
    work = Path(args.work or tempfile.mkdtemp(prefix="ui-snapshots-")).resolve()
    project = work / "project"
    if not args.reuse:
        work.mkdir(parents=True, exist_ok=True)
        fill(Path(args.source).resolve(), project)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ui = UI(project)
    try:
        with Chromium() as browser:
            shoot(ui, browser, out)
    finally:
        ui.stop()
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

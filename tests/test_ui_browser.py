"""`mlflow ui` as a person sees it, in a real headless Chromium: what the first screen holds.

A real store filled through the real command line in a copy of this checkout (`python -m initstudy
walk`, and one plain `mlflow run . -e ablate -P steps=30`, whose uniform child diverges at step 2),
a real `mlflow ui` on 127.0.0.1, the page's DOM read through the DevTools protocol
(initstudy/chromium.py). The assertions are issue 13's: the labs' experiments are listed with
their descriptions, an ablate child's `loss` chart shows without scrolling, and the diverged run
has a `loss` chart. Skipped where Chromium is missing (`.ci/run` installs Debian's `chromium`).
"""
import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import REPO
from initstudy.core import inits
from initstudy.record import keys, labs, palette, tracking
import chromium  # tests/chromium.py: the DevTools client

sys.path.insert(0, str(REPO / "scripts"))
import ui_snapshots as ui_lib  # noqa: E402  (one copy of the server and DOM helpers, shared with the script)

pytestmark = pytest.mark.skipif(not chromium.available(),
                                reason=f"no {chromium.CHROMIUM} (Debian: apt-get install chromium); .ci/run installs it")

LABS = ("10-variance-walk", "10-init-matters")  # the labs these runs belong to (issue 13's names)
# The user's files: code and project, not stores, caches or committed results.
IGNORE = shutil.ignore_patterns(".git", "mlruns", "mlartifacts", "*.db", "__pycache__", ".pytest_cache",
                                "projects", "docs", "tests")


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    project = tmp_path_factory.mktemp("ui") / "project"
    shutil.copytree(REPO, project, ignore=IGNORE)
    ui_lib.create_store(project)
    server = ui_lib.UI(project)  # starts while the runs are made
    python = [sys.executable, "-m"]
    try:
        with ThreadPoolExecutor(2) as pool:  # the two commands at once, into the store made above
            done = [pool.submit(ui_lib.run_command, cmd, project, timeout=300) for cmd in (
                python + ["initstudy", "walk"],
                python + ["mlflow", "run", ".", "-e", "ablate", "-P", "steps=30", "--env-manager", "local"])]
            for d in done:
                d.result()  # raises the failed command's stderr
        yield server.wait()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def page(ui):
    with chromium.Chromium() as browser:
        page = browser.new_page(*ui_lib.SIZE)
        ui_lib.close_assistant(ui, page)
        yield page


def words(text: str) -> str:
    """Text as the page shows it, for comparing with the markdown it came from."""
    return " ".join(re.findall(r"[A-Za-z0-9.]+", text or ""))


def test_the_labs_are_listed_with_their_descriptions(ui, page):
    experiments = {e["name"]: {t["key"]: t["value"] for t in e.get("tags", [])}
                   for e in ui.api("experiments/search", {"max_results": 1000})["experiments"]}
    page.goto(ui.url + "/#/experiments", ready="document.querySelector('[role=row]')")
    rows = {r["name"]: r for r in page.eval(ui_lib.EXPERIMENT_ROWS_JS)}
    for lab in LABS:
        assert lab in experiments, f"no experiment {lab!r} in the store; it has {sorted(experiments)}"
        description = experiments[lab].get("mlflow.note.content", "")
        assert len(words(description)) > 40, f"{lab}: no description (tag mlflow.note.content): {description!r}"
        assert lab in rows and rows[lab]["visible"], f"{lab} not on the experiments page's first screen: {rows}"
        shown = words(rows[lab]["description"])
        assert shown[:40] == words(description)[:40], f"{lab}: the page shows {shown!r}, not its description"


def test_an_ablate_child_shows_its_loss_chart_without_scrolling(ui, page):
    run = ui_lib.find_run(ui_lib.all_runs(ui), parent_entry="ablate", initstudy__init="kaiming")
    ui_lib.open_charts(ui, page, run)
    charts = page.eval(ui_lib.CHARTS_JS)
    shown = [c["key"] for c in charts if c["visible"]]
    assert any(ui_lib.is_chart(k, "loss") for k in shown), \
        f"the first screen of {run['name']}'s charts shows {shown}, not loss"


def test_the_diverged_run_has_a_loss_chart(ui, page):
    run = ui_lib.find_run(ui_lib.all_runs(ui), initstudy__init="uniform", initstudy__outcome="diverged")
    ui_lib.open_charts(ui, page, run)
    assert ui_lib.scroll_to_chart(page, "loss"), f"{run['name']} (diverged) has no loss chart on its page"


# issue 23: the page a user opens shows the finding
RUN_ROWS_JS = """[...document.querySelectorAll('[role=row]')].map(r => r.innerText.split('\\n').map(t => t.trim()))"""
CHART_AXES_JS = """[...document.querySelectorAll('%s')].map(c => ({
  title: (c.querySelector('h4') || {}).textContent || '',
  y: ((c.querySelector('.js-plotly-plot') || {})._fullLayout || {yaxis: {}}).yaxis.type || null}))""" % ui_lib.CARD


def lab_view(ui, page, experiment: str):
    """The lab's shared chart view, as its description's link opens it."""
    exps = {e["name"]: e for e in ui.api("experiments/search", {"max_results": 1000})["experiments"]}
    page.goto(f"{ui.url}/{labs.view_path(exps[experiment]['experiment_id'])}",
              ready=f"document.querySelector('{ui_lib.CARD} .js-plotly-plot')")


def test_walks_three_children_are_drawn_in_their_own_colours(ui, page):
    lab_view(ui, page, "10-variance-walk")
    rows = {cells[-1]: cells for cells in page.eval(RUN_ROWS_JS) if cells and cells[-1].startswith("walk-")}
    colours = {name[len("walk-"):]: next(c for c in cells if c.startswith("#")) for name, cells in rows.items()}
    assert colours == {i: palette.INIT_COLORS[i] for i in inits.LAB_INITS}, rows  # three, distinct: the PNGs'
    assert len(set(colours.values())) == 3


def test_a_parents_headline_section_has_charts(ui, page):
    parent = ui_lib.find_run(ui_lib.all_runs(ui), entry="ablate")
    ui_lib.open_charts(ui, page, parent)
    shown = [c["key"] for c in page.eval(ui_lib.CHARTS_JS) if c["visible"]]
    assert shown and all(k.startswith(keys.FINDING + "/") for k in shown), shown
    assert keys.finding("steps_to_nan_uniform") in shown or keys.finding("final_loss_kaiming") in shown, shown


def test_the_shared_view_opens_with_log_y(ui, page):
    lab_view(ui, page, "10-variance-walk")
    charts = page.eval(CHART_AXES_JS)
    first = charts[0]
    assert first["title"].startswith(keys.series("var")) and keys.series("var_theory") in first["title"], charts
    assert first["y"] == "log", charts
    assert page.eval("document.body.innerText.includes('shared view')")


def test_the_browser_client_reads_the_dom_and_is_stopped_by_its_pid(tmp_path):
    """initstudy/chromium.py alone: a page that shows its content only after a spinner is waited
    for, read through the DOM and photographed, and the browser process is gone after stop()."""
    html = tmp_path / "late.html"
    html.write_text("<div id=s class='du-bois-light-spin-spinning'>...</div><script>setTimeout(() => {"
                    "document.getElementById('s').remove(); document.body.insertAdjacentHTML('beforeend',"
                    " '<h1 id=done>loaded</h1>')}, 1500)</script>")
    browser = chromium.Chromium()
    try:
        page = browser.new_page(640, 480)
        page.goto(html.as_uri(), ready="true")  # settled: the spinner is gone, so the heading is there
        assert page.eval("document.querySelector('#done')?.textContent") == "loaded"
        assert page.eval("[innerWidth, innerHeight]") == [640, 480]
        png = page.screenshot(None)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 640
    finally:
        browser.stop()
    assert browser.proc.poll() is not None, f"chromium (pid {browser.pid}) still running after stop()"

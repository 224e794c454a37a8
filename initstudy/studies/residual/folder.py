"""projects/40-residual: export the residual study's parent run to a folder, and reproduce its cells.

    python -m initstudy.studies.residual.folder export RUN_ID [--out projects]   # the parent of `initstudy residual`
    python projects/40-residual/residual.py [--cells LABEL,...]              # re-train cells, compare bit for bit

The folder: residual.json and manifest.json as the parent recorded them (the manifest without the local
store's path), residual.png re-drawn from residual.json, README.md from its numbers (readme.py +
readme.md.j2), residual.py (the reproduce script). Reproduce re-trains each chosen cell from the manifest's
config and the cell's fields and compares train_acc, test_acc, steps_to_nan, weight_seed and the loss
series' sha256 with residual.json's, exact.
"""
import json
import sys
import tempfile
from pathlib import Path

from initstudy.core.config import ConfigError
from initstudy.studies.residual import compute as residual

FOLDER = "40-residual"
SCRIPT = '''"""Re-train the cells of the residual study from the manifest.json beside this file and compare each cell's
numbers in residual.json bit for bit (exit 0 if identical). Made by `python -m initstudy.studies.residual.folder export`.

    python residual.py                                  # every cell: costs what the study cost
    python residual.py --cells "model=zero d100 s0 lr=0.05"   # chosen cells by label, comma-separated
"""
import sys

from initstudy.studies.residual import folder

if __name__ == "__main__":
    sys.exit(folder.reproduce_cli(sys.argv[1:]))
'''
COMPARED = ("train_acc", "test_acc", "steps_to_nan", "weight_seed", "loss_sha256")


def folder_files(doc: dict, mf: dict) -> dict:
    """{name: bytes} of the lab folder, from the parent's residual.json and manifest.json."""
    from initstudy.publish import export, readme
    from initstudy.record import manifest
    from initstudy.record.results import dumps
    from initstudy.studies.residual import plot

    public = export.public_store(mf)
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "residual.png"
        plot.accuracy_vs_depth(doc, png)
        image = png.read_bytes()
    return {"residual.json": dumps(doc).encode(), "manifest.json": manifest.dumps(public).encode(),
            "residual.png": image, "README.md": readme.render("residual", doc, public).encode(),
            "residual.py": SCRIPT.encode()}


def export_run(run_id: str, out: str = "projects", tracking_uri: str | None = None) -> Path:
    from initstudy.publish import export
    from initstudy.record import tracking

    tracker = tracking.Tracker(tracking_uri)
    run = tracker.client.get_run(run_id)
    if run.data.tags.get(tracking.ROLE_TAG) != "parent" or "residual.json" not in {
            a.path for a in tracker.client.list_artifacts(run_id)}:
        raise ConfigError(f"run {run_id} is not a residual study's parent (no residual.json)")
    if run.info.status != "FINISHED":
        raise ConfigError(f"run {run_id} is {run.info.status}; export a FINISHED residual parent")
    with tempfile.TemporaryDirectory() as tmp:
        read = lambda name: json.loads(Path(tracker.client.download_artifacts(run_id, name, tmp)).read_text())  # noqa: E731
        doc, mf = read("residual.json"), read("manifest.json")
    target = Path(out) / FOLDER
    export.write_atomic(target, folder_files(doc, mf))
    return target


def cell_config(doc: dict, cell: dict) -> residual.CellConfig:
    """A cell's config: the study's shared fields (residual.json's config, as the parent recorded it) and its own."""
    shared = {k: doc["config"][k] for k in residual.SHARED}
    c = residual.CellConfig(model=cell["model"], depth=cell["depth"], seed=cell["seed"], lr=cell["lr"], **shared)
    c.validate()
    return c


def reproduce(manifest_path, cells: str = "all") -> int:
    """Re-train the chosen cells; print one line per cell that differs and the verdict; 0 if all bit for bit."""
    from initstudy.record import provenance

    path = Path(manifest_path)
    try:
        doc = json.loads(path.with_name("residual.json").read_text())
        json.loads(path.read_text())  # the manifest must be there and readable
    except (OSError, json.JSONDecodeError) as e:  # one line: which file, why
        raise ConfigError(f"cannot read {path} and the residual.json beside it: {e}") from None
    by_label = {c["label"]: c for c in doc["cells"]}
    chosen = list(by_label) if cells == "all" else [s.strip() for s in cells.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in by_label]
    if unknown or not chosen:
        raise ConfigError(f"cells must be 'all' or labels of residual.json (e.g. {next(iter(by_label), '')!r}); "
                          f"got {', '.join(unknown) or repr(cells)}")
    bad = []
    with provenance.pin_blas_threads():
        provenance.warm_up_blas()
        for label in chosen:
            cell = by_label[label]
            r = residual.train_cell(cell_config(doc, cell), doc["config"]["init"])
            now = {"train_acc": r.train_acc, "test_acc": r.test_acc, "steps_to_nan": r.steps_to_nan,
                   "weight_seed": r.weight_seed, "loss_sha256": residual.loss_digest(r.losses)}
            bad += [f"{label}: {k} recorded {cell[k]!r}, now {now[k]!r}" for k in COMPARED if now[k] != cell[k]]
    for line in bad:
        print(line)
    what = f"{len(chosen)} cell{'s' * (len(chosen) != 1)}"
    print(f"reproduced bit for bit: {what} ({path})" if not bad else f"NOT reproduced: {len(bad)} differences in {what}")
    return 1 if bad else 0


def reproduce_cli(argv=None) -> int:
    from initstudy.run.cli import run_tool

    def args(p):
        p.add_argument("--cells", default="all", help="'all' or cell labels from residual.json, comma-separated")
        p.add_argument("--manifest", default=str(Path(sys.argv[0]).with_name("manifest.json")))
    return run_tool("residual.py", "re-train the residual study's cells and compare bit for bit", args,
                    lambda a: reproduce(a.manifest, a.cells), argv)


def main(argv=None) -> int:
    from initstudy.run.cli import run_tool

    def args(p):
        p.add_argument("command", choices=("export",))
        p.add_argument("run_id")
        p.add_argument("--out", default="projects")
        p.add_argument("--tracking-uri", "--tracking_uri", dest="tracking_uri", default=None)
    return run_tool("initstudy.studies.residual.folder", "export the residual study's parent run to projects/40-residual",
                    args, lambda a: print(f"exported {export_run(a.run_id, a.out, a.tracking_uri)}"), argv)


if __name__ == "__main__":
    sys.exit(main())

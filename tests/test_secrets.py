"""Secrets and personal paths (issue 24): credentials in the tracking URI get one warning line (the
launcher has printed them) and are never shown by us; a dataset's source records neither the user nor
a home path."""
import getpass
import json
import os
from pathlib import Path

import numpy as np

from conftest import free_port, initstudy


def test_credentials_in_the_uri_warn_once_and_are_not_shown(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = f"http://alice:SECRET@127.0.0.1:{free_port()}"  # nothing listens there
    proc = initstudy("walk", "--init", "kaiming", "--depth", "2", "--width", "8", env=env, cwd=tmp_path)
    warnings = [l for l in proc.stderr.splitlines() if "warning" in l]
    assert len(warnings) == 1 and "MLFLOW_TRACKING_USERNAME" in warnings[0], proc.stderr
    assert "SECRET" not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr
    assert proc.returncode == 1 and "unreachable" in proc.stderr


def test_a_dataset_source_records_no_user_and_no_home_path(store):
    from initstudy.record import tracking

    tracker = tracking.Tracker(store.uri)
    rid = store.client.create_run(store.experiment_id).info.run_id
    tracker.log_dataset(rid, "toy", np.arange(6.0).reshape(2, 3))
    (ds,) = store.client.get_run(rid).inputs.dataset_inputs
    source = json.loads(ds.dataset.source)["tags"]
    assert set(source) <= {"mlflow.source.type", "mlflow.source.git.commit", "mlflow.source.name"}, source
    assert getpass.getuser() not in source.values() and not any(str(Path.home()) in v for v in source.values())

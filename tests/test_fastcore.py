"""The fast training core gives the reference's bits; init=all on the engine's workers gives the sequential bits.

The oracle is the straightforward loop written here with nn.py only (forward, cross_entropy,
backward, SGD.step, diagnostics.layer_stats on the reference model), independent of ablate.run_core
and fastmlp. Not timed: speed is scripts/bench.py's business.
"""
import multiprocessing
import os
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
import threadpoolctl

from initstudy.studies.ablate import compute as ablate

from initstudy.core import data, diagnostics, fastmlp, fastresnet, nn, resnet

from initstudy.record import keys

from initstudy.run import engine
from initstudy.studies.ablate.trainings import Trainings
from initstudy.studies.ablate.compute import AblateConfig


pytestmark = pytest.mark.usefixtures("one_blas_thread")


def reference(config, init, ds):
    """(losses, diag rows, [(val step, (loss, acc))], hidden outputs/grads at the end, model) by plain nn.py;
    validation every eval_every steps before the update and once more after the last update."""
    model = ablate.build_model(config, init)
    opt = nn.SGD(model.params(), config.lr, config.momentum)
    batches = data.batch_stream(config.data_seed, config.n_train, config.batch)
    losses, diag, val = [], [], []
    with np.errstate(all="ignore"):
        for s in range(config.steps):
            if s % config.eval_every == 0:
                val.append((s, nn.evaluate(model, ds.x_val, ds.y_val)))
            idx = next(batches)
            loss, dlogits = nn.cross_entropy(model.forward(ds.x_train[idx]), ds.y_train[idx])
            losses.append(loss)
            if not np.isfinite(loss):
                break
            model.backward(dlogits)
            opt.step(model.params())
            if s % config.diag_every == 0:
                diag.append(diagnostics.layer_stats(model, opt))
        hidden = [(last.out.copy(), last.grad_out.copy()) for _, last, _ in model.blocks[:-1]]
        updates = len(losses) - (not np.isfinite(losses[-1]))
        if val[-1][0] != updates:  # the model as training left it: where final_val_acc comes from
            val.append((updates, nn.evaluate(model, ds.x_val, ds.y_val)))
    return np.array(losses, float), diag, val, hidden, model


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


CONFIGS = [  # (config, init): each activation, both dtypes, a divergence, a narrower odd-shaped net, diagnostics
    # at steps whose grads the fast core keeps (every diag_every-th) between steps whose grads it does not
    (AblateConfig(steps=40, depth=6, width=64, input_dim=32), "kaiming"),
    (AblateConfig(steps=30, depth=6, width=64, input_dim=32, dtype="float64"), "xavier"),
    (AblateConfig(steps=30, depth=5, width=48, input_dim=40, classes=3, activation="tanh", gain=5 / 3,
                  momentum=0.0), "kaiming"),
    (AblateConfig(steps=30, depth=4, width=64, input_dim=32, activation="linear", batch=17, diag_every=7), "xavier"),
    (AblateConfig(steps=20), "uniform"),  # the lab's net: uniform diverges within a few steps
    # the Pointwise activations (fn and d1 on a kept pre-activation), float32 and float64
    (AblateConfig(steps=15, depth=4, width=32, input_dim=16, activation="selu", diag_every=4), "xavier"),
    (AblateConfig(steps=15, depth=4, width=32, input_dim=16, activation="gelu", dtype="float64"), "kaiming"),
    (AblateConfig(steps=15, depth=4, width=32, input_dim=16, activation="sigmoid", batch=17), "kaiming"),
    (AblateConfig(steps=15, depth=4, width=32, input_dim=16, activation="silu", momentum=0.0), "xavier"),
    (AblateConfig(steps=20, dtype="float64"), "uniform"),
]


@pytest.mark.parametrize("config,init", CONFIGS, ids=lambda c: getattr(c, "activation", c))
def test_fast_core_is_bit_identical_to_the_reference(config, init):
    ds = ablate.dataset(config)
    losses, diag, val, hidden, model = reference(config, init, ds)
    core = ablate.make_core(config, init)
    assert isinstance(core, fastmlp.FastMLP)
    r = ablate.run_core(config, init, ds, core)

    n = len(losses)
    assert same(r.losses[:n], losses) and np.all(np.isnan(r.losses[n:]))
    assert same(r.val_steps, [s for s, _ in val]) and val[-1][0] > val[-2][0]
    assert same(r.val_loss, [v for _, (v, _) in val]) and same(r.val_acc, [a for _, (_, a) in val])
    # the last validation point is the final accuracy, but not on a diverged run: a blown-up net's guess is no result
    want = val[-1][1][1] if r.steps_to_nan is None else float("nan")
    assert same(r.final_val_acc, want) and (r.steps_to_nan is not None) == (init == "uniform")
    for k in diagnostics.STATS:
        assert same(r.diag[k], np.array([d[k] for d in diag]).reshape(len(diag), config.depth)), k
    for lin, W, b in zip(model.linears, core.W, core.b):
        assert same(W, lin.weight) and same(b, lin.bias)
    for (out, grad), h, g in zip(hidden, *core.hidden()):
        assert same(h, out) and same(g, grad)
    if init == "uniform":
        assert r.outcome == "diverged" and r.steps_to_nan == n - 1 and r.steps_to_nan < config.steps


def test_train_uses_the_fast_core_and_keeps_batchnorm_on_the_reference():
    config = AblateConfig(steps=12, depth=4, width=32, input_dim=16)
    assert isinstance(ablate.make_core(config, "kaiming"), fastmlp.FastMLP)
    bn = AblateConfig(steps=12, depth=4, width=32, input_dim=16, norm="batchnorm")
    assert isinstance(ablate.make_core(bn, "kaiming"), ablate.ReferenceCore)
    ds = ablate.dataset(bn)
    assert same(ablate.train(bn, "kaiming", ds).losses, reference(bn, "kaiming", ds)[0])
    with pytest.raises(ValueError, match="batchnorm"):
        fastmlp.FastMLP(ablate.build_model(bn, "kaiming"), bn.lr, bn.momentum, bn.batch)


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_parallel_inits_are_bit_identical_to_sequential(start, monkeypatch):
    if start not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {start} on this platform")
    monkeypatch.setattr(engine, "FORK", start == "fork")  # the LocalCluster's workers, forked or spawned
    config = AblateConfig(steps=25, depth=5, width=64, input_dim=32)
    ds = ablate.dataset(config)
    names = ["uniform", "xavier", "kaiming"]
    seen = {n: [] for n in names}
    with Trainings(config, ds, names) as t:
        par = t.results({n: (lambda s, v, n=n: seen[n].append((s, v))) for n in names})
    assert list(par) == names
    for n in names:
        seq = ablate.train(config, n, ds)
        for field in ("losses", "val_loss", "val_acc", "diag_steps"):
            assert same(getattr(par[n], field), getattr(seq, field)), (n, field)
        for k in diagnostics.STATS:
            assert same(par[n].diag[k], seq.diag[k]), (n, k)
        assert par[n].outcome == seq.outcome and par[n].steps_to_nan == seq.steps_to_nan
        # every computed loss reached the parent's on_step, in order
        steps = [s for s, _ in seen[n]]
        assert steps == list(range(len(steps))) and len(steps) == np.sum(~np.isnan(seq.losses))


def _sleep_then_say_where(seconds, send):
    send(["slept", seconds])
    time.sleep(seconds)
    return engine.worker_address()


def test_a_stream_hands_its_next_task_to_the_worker_that_freed_up():
    """Engine.stream submits as many tasks as there are threads and the next one as one finishes: the
    third of (short, long, short) on 2 workers runs on the short one's worker, never queued behind the
    long one; each task's message arrives."""
    with engine.Engine(2) as e:
        stream = e.stream(_sleep_then_say_where, [(0.2,), (3.0,), (0.2,)])
        assert stream.futures[2] is None  # not submitted: both workers are busy
        while not stream.done():
            stream.refill()
            time.sleep(0.02)
        where = [f.result() for f in stream.futures]
        assert where[2] == where[0] != where[1]
        assert sorted(stream.inbox.get(timeout=10)[1] for _ in range(3)) == [0.2, 0.2, 3.0]


def test_engine_workers_are_forked_on_linux_only():
    """A forked LocalCluster worker is ready in ~0.45 s against ~3.7 spawned (run/engine.FORK): it holds
    what its parent imported before the cluster started; off Linux it is spawned and does not."""
    code = ("import sys, types; sys.modules['initstudy_fork_mark'] = types.ModuleType('initstudy_fork_mark')\n"
            "from initstudy.run import engine\n"
            "if __name__ == '__main__':\n"
            "    with engine.Engine(1) as e:\n"
            "        print(engine.FORK, e.submit(lambda: 'initstudy_fork_mark' in sys.modules).result(timeout=120))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == (["True", "True"] if sys.platform == "linux" else ["False", "False"])


def test_a_failing_worker_raises_in_the_parent():
    config = AblateConfig(steps=5, depth=3, width=16, input_dim=8)
    with Trainings(config, ablate.dataset(config), ["no-such-init"]) as t:
        with pytest.raises(Exception, match="no-such-init"):
            t.results()


def test_a_training_whose_worker_dies_is_run_again_and_each_point_reaches_the_parent_once():
    """SIGKILL the worker training an init after its first chunk arrived: the scheduler runs the task
    again on the other worker (engine.ALLOWED_FAILURES), which sends steps 0.. again; on_step still sees
    every step once, in order, and the result is the sequential one."""
    import signal as sig

    config = AblateConfig(steps=1500, depth=3, width=32, input_dim=16)
    ds = ablate.dataset(config)
    seen, killed = [], []
    with Trainings(config, ds, ["kaiming"], workers=2) as t:
        pids = t.engine.client.run(os.getpid)  # {worker address: pid}
        future = t.pending["kaiming"]

        def on_step(s, v):
            seen.append((s, v))
            if not killed:
                worker = next(w for w, keys in t.engine.client.processing().items() if future.key in keys)
                killed.append(pids[worker])
                os.kill(pids[worker], sig.SIGKILL)
        r = t.results({"kaiming": on_step})["kaiming"]
    assert killed, "the worker was never killed"
    assert [s for s, _ in seen] == list(range(config.steps))
    seq = ablate.train(config, "kaiming", ds)
    assert same(r.losses, seq.losses) and same(np.array([v for _, v in seen]), seq.losses)


def test_figures_are_drawn_on_a_worker_that_started_like_every_engine_worker():
    """draw() runs on a worker of the trainings' cluster: its BLAS has one thread (start_worker, and the
    environment it started in), this process's environment is as it was, the figure has the bytes it
    has here, and the workers end with the block."""
    from initstudy.studies.ablate.job import diagnostics_png

    config = AblateConfig(steps=50, depth=4, width=32, input_dim=16)
    ds = ablate.dataset(config)
    env_before = os.environ.get("OPENBLAS_NUM_THREADS")
    with Trainings(config, ds, ["kaiming"]) as t:
        worker_pid = t.draw(os.getpid).result(timeout=120)
        assert worker_pid != os.getpid()
        assert {i["num_threads"] for i in t.draw(threadpoolctl.threadpool_info).result(timeout=120)
                if i["user_api"] == "blas"} == {1}
        assert os.environ.get("OPENBLAS_NUM_THREADS") == env_before
        r = t.results()["kaiming"]
        assert t.draw(diagnostics_png, r).result(timeout=120) == diagnostics_png(r)  # same bytes there as here
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not gone(worker_pid):
        time.sleep(0.1)
    assert gone(worker_pid)  # the worker ended with the block


def test_a_one_init_run_draws_its_figures_on_a_spare_worker_warmed_while_it_trains():
    """figures=True with a core left: one worker more, which loads matplotlib while the init trains
    (warm_figures), and draw() runs there; with as many inits as cores there is no spare worker."""
    if engine.workers_for(2) < 2:
        pytest.skip("one core: no spare worker")
    config = AblateConfig(steps=400, depth=4, width=32, input_dim=16)
    ds = ablate.dataset(config)
    with Trainings(config, ds, ["kaiming"], figures=True) as t:
        assert t.spare and len(t.engine.client.nthreads()) == 2
        warm = t.warm_figures()
        address = warm.result(timeout=120)
        assert t.draw(engine.worker_address).result(timeout=120) == address
        assert t.draw(lambda: "matplotlib.pyplot" in sys.modules).result(timeout=120)
        t.results()
    with Trainings(config, ds, ["xavier", "kaiming"], workers=2, figures=True) as t:
        assert not t.spare and t.warm_figures() is None
        t.results()


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_streamed_recording_logs_every_point_once(store, monkeypatch):
    """init=all trains in workers and logs loss and diagnostics while they train: read back from a real
    store, every run holds exactly the points of a full, sequential recording (_ablate_metrics), and
    the figures the workers drew."""
    from initstudy.studies.ablate import job

    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", store.experiment_id)
    config = AblateConfig(steps=30, depth=4, width=32, input_dim=16, diag_every=5)
    out = job.run(config, "all", store.uri)
    for name, r in out["results"].items():
        expected = {}
        for key, value, step in job._ablate_metrics(r):
            if value is not None and np.isfinite(value):  # what the store keeps: finite points only
                expected.setdefault(key, []).append((step, float(value)))
        run_id = out["run_ids"][name]
        # a child's figures are drawn in a worker: there, and real PNGs
        assert {"diagnostics.png", "loss_curves.png", "losses.json"} <= set(store.artifact_names(run_id))
        assert store.download(run_id, "diagnostics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert set(store.client.get_run(run_id).data.metrics) == set(expected), name
        for key in (keys.series("loss"), "grad_std/L01", "update_data/L04", keys.series("val_acc"),
                    keys.profile("act_std", "end"), "final_loss"):
            if key not in expected:  # final_loss of a diverged init: absent on both sides (set equality above)
                continue
            got = sorted((m.step, m.value) for m in store.client.get_metric_history(run_id, key))
            want = sorted(expected[key])
            assert len(got) == len(want) and all(s == t and (v == w or (np.isnan(v) and np.isnan(w)))
                                                 for (s, v), (t, w) in zip(got, want)), (name, key)


# --- the resnet's fast core (core/fastresnet.py) against the same loop written with nn.py and resnet.py only ---

def resnet_reference(model, x, y, lr, momentum, batch, steps):
    """(losses, eval (loss, acc) at the end) of plain SGD on the reference model, batches from data.batch_stream."""
    opt, batches, losses = nn.SGD(model.params(), lr, momentum), data.batch_stream(7, len(x), batch), []
    with np.errstate(all="ignore"):
        for _ in range(steps):
            idx = next(batches)
            loss, dlogits = nn.cross_entropy(model.forward(x[idx]), y[idx])
            losses.append(loss)
            if not np.isfinite(loss):
                break
            model.backward(dlogits)
            opt.step(model.params())
        return np.array(losses), nn.evaluate(model, x, y)


def resnet_fast(model, x, y, lr, momentum, batch, steps):
    core, batches, losses = fastresnet.FastResNet(model, lr, momentum, batch), data.batch_stream(7, len(x), batch), []
    with np.errstate(all="ignore"):
        for _ in range(steps):
            loss, dlogits = core.loss(x, y, next(batches))
            losses.append(loss)
            if not np.isfinite(loss):
                break
            core.backward_update(dlogits)
        return np.array(losses), core.evaluate(x, y)


RESNETS = [  # (branch, branch_layers, activation, dtype, lr): every scheme, both branch lengths, each kind of
    # activation path (ReLU, Tanh, a Pointwise, Identity), both dtypes, and a divergence (none at a large lr)
    (b, m, act, dt, 0.02) for b in resnet.BRANCHES for m in (1, 2) if not (b == "fixup" and m == 1)
    for act, dt in (("relu", "float32"), ("tanh", "float64"))] + [
    ("fixup", 2, "gelu", "float32", 0.02), ("zero", 1, "linear", "float64", 0.02), ("sqrt_depth", 2, "silu", "float32", 0.05),
    ("none", 2, "relu", "float32", 0.5)]


@pytest.mark.parametrize("branch,m,activation,dtype,lr", RESNETS)
def test_fast_resnet_is_bit_identical_to_the_reference(branch, m, activation, dtype, lr):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((96, 12)).astype(dtype), rng.integers(0, 3, 96)
    runs = []
    for train in (resnet_reference, resnet_fast):
        model = resnet.ResNet.build(np.random.default_rng(5), depth=5, width=24, input_dim=12, classes=3, branch=branch,
                                    branch_layers=m, activation=activation, dtype=np.dtype(dtype))
        runs.append((*train(model, x, y, lr, 0.9, 16, 25), model))
    (la, ea, ma), (lb, eb, mb) = runs
    assert same(la, lb) and same(ea, eb)
    assert len(ma.params()) == len(mb.params()) and all(same(p, q) for (p, _), (q, _) in zip(ma.params(), mb.params()))
    assert len(la) < 25 or lr != 0.5  # the unscaled net at a large lr blows up: the NaN path is covered
    if branch in ("zero", "fixup"):  # they left their zero init: the fast core did train alpha, W_2, the scalars
        assert all(np.any(p != 0) for (p, _) in mb.params())


def test_fast_resnet_refuses_batchnorm_and_residual_cells_use_the_fast_cores():
    from initstudy.studies.residual import compute as residual

    bn = resnet.ResNet.build(np.random.default_rng(0), depth=2, width=8, input_dim=4, classes=2, norm="batchnorm")
    with pytest.raises(ValueError, match="batchnorm"):
        fastresnet.FastResNet(bn, 0.1, 0.9, 4)
    kinds = {m: type(residual.make_core(residual.CellConfig(model=m, depth=2, width=16),
                                        residual.build_model(residual.CellConfig(model=m, depth=2, width=16),
                                                             "kaiming", 40, 10)))
             for m in residual.MODELS}
    assert kinds == {"mlp": fastmlp.FastMLP, "mlp_bn": ablate.ReferenceCore,
                     **{b: fastresnet.FastResNet for b in resnet.BRANCHES}}

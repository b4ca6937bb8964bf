"""A local run's Ray: its DDP workers listen on the loopback interface only, and after its driver is
killed hard, ``python -m tune.search --stop-local --name NAME`` ends exactly its leftover processes
while another Ray on the machine (the session's cluster) keeps running (:mod:`tune.local_ray`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from importlib.util import find_spec
from pathlib import Path

import psutil
import pytest

from emohrnet.io.orphans import still_running
from tune.local_ray import _ident, record_path, session_processes
from tune.search import main

LOOPBACK = ("127.0.0.1", "::ffff:127.0.0.1", "::1")


def _holder(open_path: Path, *extra: str) -> subprocess.Popen:
    """A process that holds ``open_path`` open until killed; ``extra`` words end its command line."""
    code = "import sys, time; f = open(sys.argv[1], 'a'); print('ready', flush=True); time.sleep(120)"
    p = subprocess.Popen([sys.executable, "-c", code, str(open_path), *extra], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def test_the_processes_of_a_session_are_told_apart(tmp_path):
    """Selected: a recorded process with its start time unchanged, and a Ray process (Ray's package in its
    command line) with a file open in the session folder. Not selected: the same in another session's
    folder, a non-Ray process reading the session's log (``tail -f``), a recorded pid whose start time
    differs (a reused pid), and the recorded driver."""
    ray_dir = os.path.dirname(find_spec("ray").origin)
    ours, other = tmp_path / "session_a" / "logs", tmp_path / "session_b" / "logs"
    ours.mkdir(parents=True)
    other.mkdir(parents=True)
    procs = {"worker": _holder(ours / "worker-1.out", f"{ray_dir}/_private/workers/default_worker.py"),
             "other_ray": _holder(other / "worker-2.out", f"{ray_dir}/_private/workers/default_worker.py"),
             "tail": _holder(ours / "raylet.out"),
             "recorded": _holder(tmp_path / "elsewhere.log"),
             "reused_pid": _holder(tmp_path / "elsewhere2.log")}
    try:
        ident = {k: _ident(psutil.Process(p.pid)) for k, p in procs.items()}
        record = {"session_dir": str(ours.parent), "driver": {"pid": 1, "create_time": 0.0},
                  "processes": [ident["recorded"], {**ident["reused_pid"], "create_time": 1.0}]}
        found = {p.pid for p in session_processes(record)}
        assert found == {procs["worker"].pid, procs["recorded"].pid}
    finally:
        for p in procs.values():
            p.kill()
            p.wait()


def test_stop_local_needs_a_recorded_search(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--stop-local"])
    assert stop.value.code == 2 and "--stop-local: needs --name NAME" in capsys.readouterr().err
    assert main(["--stop-local", "--name", "never-ran"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --stop-local --name never-ran: no local Ray of this search is recorded in ")
    assert len(err.splitlines()) == 1


LOCAL_RUN = textwrap.dedent("""
    import json, os, sys
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from tune.local_ray import record_local_ray
    from tune.ray_start import start_local_ray
    from tune.rendezvous import BoundTorchConfig

    name, out = sys.argv[1], sys.argv[2]

    def hold(config):  # each rank says who it is, then keeps its process group up until killed
        import time
        import torch.distributed as dist
        with open(os.path.join(config["out"], f"rank{dist.get_rank()}.json"), "w") as f:
            json.dump({"pid": os.getpid(), "master": [os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])]}, f)
        time.sleep(300)

    start_local_ray(3)
    record_local_ray(name)
    TorchTrainer(hold, train_loop_config={"out": out}, torch_config=BoundTorchConfig(backend="gloo"),
                 scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 1}),
                 run_config=RunConfig(name=name, storage_path=os.path.join(out, "runs"))).fit()
""")


def _listening(p: psutil.Process) -> list[tuple[str, int]]:
    return [(c.laddr.ip, c.laddr.port) for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]


@pytest.mark.ray
def test_a_local_run_listens_on_loopback_and_stop_local_ends_only_its_ray(tmp_path, ray_cluster, capsys):
    """A local Ray started and recorded as a search does, running a 2-worker Ray Train job through
    :class:`tune.rendezvous.BoundTorchConfig`: while the process group is up, every process of that Ray
    (workers included, found by their pids) listens on loopback only, rank 0's rendezvous among them.
    Then the driver is killed with SIGKILL and ``--stop-local`` ends what it left, while the session's
    cluster (another Ray on this machine) keeps running."""
    name = "local-run"
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    env.pop("RAY_ADDRESS", None)
    driver = subprocess.Popen([sys.executable, "-c", LOCAL_RUN, name, str(tmp_path)], env=env, cwd=repo,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    other = [info.process.pid for infos in ray_cluster.head_node.all_processes.values() for info in infos]
    try:
        deadline = time.monotonic() + 150
        ranks = [tmp_path / f"rank{r}.json" for r in range(2)]
        while not all(r.is_file() and r.stat().st_size for r in ranks) and time.monotonic() < deadline:
            assert driver.poll() is None, driver.stderr.read()[-3000:]
            time.sleep(0.2)
        workers = [json.loads(r.read_text()) for r in ranks]
        record = json.loads(record_path(name).read_text())
        procs = session_processes(record)
        names = {p.pid: p.name() for p in procs}
        assert {w["pid"] for w in workers} <= set(names)  # the workers are found as the session's
        listening = {pid: _listening(psutil.Process(pid)) for pid in names}
        assert workers[0]["master"][0] == "127.0.0.1" and tuple(workers[0]["master"]) in listening[workers[0]["pid"]]
        assert {"raylet", "gcs_server"} <= set(names.values())
        assert all(ip in LOOPBACK for socks in listening.values() for ip, _ in socks), (listening, names)

        assert main(["--stop-local", "--name", name]) == 2  # refused while the run is alive
        assert "still running" in capsys.readouterr().err
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
        left = session_processes(record)
        assert left  # what a hard kill leaves behind (Ray's agents at least)
        assert main(["--stop-local", "--name", name]) == 0
        assert not still_running(procs + left, 5.0), [p.pid for p in still_running(procs + left, 0)]
        assert not record_path(name).exists()
        assert all(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in other)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        if record_path(name).exists():  # a failed test leaves nothing running
            for p in session_processes(json.loads(record_path(name).read_text())):
                p.kill()

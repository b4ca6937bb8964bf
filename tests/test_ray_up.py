"""`ray up` for real (issue 25): Ray's cluster launcher starts ``cluster-onprem.yaml`` over SSH on three hosts,
a search runs across them as a Ray job, a worker host is lost mid-search and the search still finishes,
a host without the token is refused, and ``ray down`` leaves nothing behind.

The hosts are Linux network namespaces on a bridge of this machine (:mod:`netns_hosts`), each with its
own ``sshd``, ``/tmp``, home folder, host name and PID namespace: ``head`` (10.213.7.10), ``w1`` and ``w2``
(the workers) and ``x`` (an intruder with a route to the head but no token). The shared storage is an
S3-protocol server (moto's server mode) on the bridge's address, named in the storage URI as a MinIO
would be. This machine is the launcher: ``ray up``, ``ray dashboard`` (SSH port forwarding) and ``ray job
submit`` run here with a home folder of the test's own.

What the test changes in ``cluster-onprem.yaml`` is what a user fills in (the addresses, the SSH user and
key, the bucket and the store's address) plus three things this machine needs: the hosts have no
internet, so the setup links the Python environment this test runs in instead of installing one (the
three install commands are checked to be the ones removed); each ``ray start`` gets ``--num-cpus`` (the
head 2, each worker 1: a 2-worker trial cannot fit on one host) and a small object store (three Ray nodes
share this machine's memory).

Runs only with ``EMOHRNET_MULTIHOST=1`` as root (``.ci/run``'s multi-host step, after the README's test
command): it takes minutes and needs ``openssh-server``. Its figures (the wall time, ``ray status``, the
hosts of each rank, the epoch the restarted trial resumed after, the refused connections' errors) go to
``$EMOHRNET_MULTIHOST_REPORT`` (default ``multihost-report.json`` in the work folder).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fixtures import free_port
from netns_hosts import Hosts, missing_tools

ROOT = Path(__file__).resolve().parent.parent
ENABLED = os.environ.get("EMOHRNET_MULTIHOST") == "1"
pytestmark = [
    pytest.mark.multihost,
    pytest.mark.skipif(not ENABLED, reason="the multi-host step of .ci/run (EMOHRNET_MULTIHOST=1, as root)"),
    pytest.mark.timeout(1800),
]

BUCKET = "emohrnet-onprem"
HEAD, WORKERS, INTRUDER = "head", ("w1", "w2"), "x"
HOST_CPUS = {"head": 2, "w1": 1, "w2": 1}
INSTALL_LINES = ("uv/0.8.0/install.sh", "uv venv", "pip install -e ~/emohrnet-src")
"""The setup commands that need the internet (uv, Python, the project's dependencies), replaced here."""
SEARCH = ["--dataset", "synthetic", "--num-samples", "2", "--epochs", "20", "--workers", "2", "--cpus-per-worker", "1",
          "--max-concurrent", "1", "--widths", "4,6", "--stem-channels", "8", "--blocks", "1", "--modules", "1,1,1,1",
          "--build-workers", "1", "--name", "onprem", "--verbose"]
"""The search the job runs: two trials one after the other, each with 2 DDP workers of 1 CPU; ``--verbose``
puts Ray's output (each rank's line naming its host) in the job's log."""


class Cluster:
    """The launcher's side: the hosts, the storage, the test's cluster config and the commands run here."""

    def __init__(self, work: Path):
        self.work = work
        self.start = time.monotonic()
        self.report: dict = {"hosts": {}}
        self.home = work / "launcher"
        self.config = work / "cluster-onprem.yaml"
        self.hosts: Hosts | None = None
        self.s3 = None
        self.forward: subprocess.Popen | None = None
        self.dashboard_port = free_port()
        self.name = f"emohrnet-ci-{os.getpid()}"

    # ------------------------------------------------------------------ commands run on the launcher
    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_"))}
        env.update(HOME=str(self.home), PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
                   RAY_AUTH_MODE="token", RAY_USAGE_STATS_ENABLED="0", **extra)
        return env

    def ray(self, *args: str, timeout: float = 600, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        done = subprocess.run([str(Path(sys.executable).parent / "ray"), *args], cwd=ROOT, env=self.env(**env),
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"ray {' '.join(args)} exited {done.returncode}:\n{done.stdout[-4000:]}\n"
                                 f"{done.stderr[-4000:]}")
        return done

    # ------------------------------------------------------------------ set up
    def storage(self) -> str:
        return (f"s3://{BUCKET}/emohrnet?endpoint_override={self.hosts.gateway}:{self.s3_port}&scheme=http"
                "&region=us-east-1")

    def up(self) -> None:
        from moto.server import ThreadedMotoServer

        self.hosts = Hosts(self.work / "hosts", (HEAD, *WORKERS, INTRUDER), ssh=(HEAD, *WORKERS),
                           keep_visible=(ROOT, Path(sys.prefix), Path(sys.base_prefix)))
        self.hosts.__enter__()
        self.s3_port = free_port(self.hosts.gateway)
        self.s3 = ThreadedMotoServer(ip_address=self.hosts.gateway, port=self.s3_port, verbose=False)
        self.s3.start()
        import boto3

        boto3.client("s3", endpoint_url=f"http://{self.hosts.gateway}:{self.s3_port}", region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)
        (self.home / ".aws").mkdir(parents=True, exist_ok=True)
        (self.home / ".aws" / "credentials").write_text(
            "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
        self.ray("get-auth-token", "--generate")
        self.token = (self.home / ".ray" / "auth_token").read_text().strip()
        self.config.write_text(yaml.safe_dump(self.test_config(), sort_keys=False))
        t0 = time.monotonic()
        done = self.ray("up", "-y", "--no-config-cache", str(self.config), timeout=900)
        self.report["ray_up_s"] = round(time.monotonic() - t0, 1)
        (self.work / "ray-up.log").write_text(done.stdout + done.stderr)

    def test_config(self) -> dict:
        """``cluster-onprem.yaml`` with this machine's hosts (see the module docstring for every change)."""
        config = yaml.safe_load((ROOT / "cluster-onprem.yaml").read_text())
        h = self.hosts
        config["cluster_name"] = self.name
        config["provider"].update(head_ip=h[HEAD].ip, worker_ips=[h[w].ip for w in WORKERS])
        config["auth"] = {"ssh_user": "root", "ssh_private_key": str(h.key)}
        config["metadata"]["emohrnet"]["storage_path"] = self.storage()
        setup = config["setup_commands"]
        dropped = [c for c in setup if any(m in c for m in INSTALL_LINES)]
        assert len(dropped) == len(INSTALL_LINES), f"cluster-onprem.yaml's install commands changed: {setup}"
        config["setup_commands"] = [f"ln -sfn {sys.prefix} ~/venv" if c == dropped[0] else c
                                    for c in setup if c not in dropped[1:]]

        def sized(commands: list[str], cpus: int) -> list[str]:
            return [c + f" --num-cpus={cpus} --object-store-memory=200000000 --disable-usage-stats"
                    if "ray start" in c else c for c in commands]

        config["head_start_ray_commands"] = sized(config["head_start_ray_commands"], HOST_CPUS[HEAD])
        config["worker_start_ray_commands"] = sized(config["worker_start_ray_commands"], HOST_CPUS[WORKERS[0]])
        return config

    def forward_dashboard(self) -> str:
        """``ray dashboard``: the head's 127.0.0.1:8265 forwarded to a local port over SSH."""
        self.forward = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "dashboard", "--port",
                                         str(self.dashboard_port), str(self.config)], cwd=ROOT, env=self.env(),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.dashboard_port)) == 0:
                    return f"http://127.0.0.1:{self.dashboard_port}"
            time.sleep(0.5)
        raise AssertionError("ray dashboard did not forward the dashboard's port within 60 s")

    # ------------------------------------------------------------------ tear down
    def down(self) -> None:
        if self.forward is not None and self.forward.poll() is None:
            os.killpg(self.forward.pid, 9)
            self.forward.wait(timeout=30)
        if self.hosts is not None:
            self.hosts.close()
        if self.s3 is not None:
            self.s3.stop()
        self.report["wall_s"] = round(time.monotonic() - self.start, 1)
        out = Path(os.environ.get("EMOHRNET_MULTIHOST_REPORT", self.work / "multihost-report.json"))
        out.write_text(json.dumps(self.report, indent=1))
        print(f"\nmulti-host report: {out}\n{json.dumps(self.report, indent=1)}")


@pytest.fixture(scope="module")
def cluster():
    """Three hosts, the storage, and the cluster ``ray up`` started on them; everything removed at the end,
    by the PIDs the test started, whatever failed."""
    if missing_tools() is not None:  # asked for (EMOHRNET_MULTIHOST=1) but impossible here: a failure, not a skip
        pytest.fail(f"the multi-host test {missing_tools()}")
    work = Path(os.environ.get("EMOHRNET_MULTIHOST_WORK", f"/var/tmp/emohrnet-multihost-{os.getpid()}"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    c = Cluster(work)
    try:
        c.up()
        yield c
    finally:
        c.down()
        left = c.hosts.leftovers() if c.hosts is not None else []
        assert not left, f"left behind: {left}"


def ray_status(c: Cluster) -> str:
    return c.ray("exec", "--no-config-cache", str(c.config), "ray status", timeout=120).stdout


def test_ray_up_starts_the_head_and_both_workers(cluster):
    deadline = time.monotonic() + 300
    while True:
        status = ray_status(cluster)
        active = re.search(r"Active:\s*\n((?:\s+\d+ \S+\n)+)", status)
        nodes = sum(int(n) for n in re.findall(r"^\s+(\d+) ", active.group(1), re.M)) if active else 0
        if nodes == 3 or time.monotonic() > deadline:
            break
        time.sleep(5)
    cluster.report["ray_status"] = status
    assert nodes == 3, status
    assert f"{sum(HOST_CPUS.values())}.0 CPU" in status.replace("0.0/", "/").replace("/", " ") or \
        re.search(rf"/{sum(HOST_CPUS.values())}\.0 CPU", status), status
    for name in (HEAD, *WORKERS):
        procs = "\n".join(cluster.hosts[name].processes())
        assert "raylet" in procs, f"no raylet on {name}:\n{procs}"


def test_a_host_without_the_token_is_refused(cluster):
    h = cluster.hosts
    intruder = h[INTRUDER]
    home = cluster.work / "intruder-home"
    home.mkdir(exist_ok=True)
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "RAY_USAGE_STATS_ENABLED": "0"}
    join = (f"import ray; ray.init(address='{h[HEAD].ip}:6379'); "
            "print('JOINED', ray.cluster_resources())")
    refused = {}
    for label, extra in (("no token", {}), ("a wrong token", {"RAY_AUTH_MODE": "token",
                                                               "RAY_AUTH_TOKEN": "0" * len(cluster.token)})):
        done = intruder.exec(sys.executable, "-c", join, env={**env, **extra}, timeout=120)
        out = done.stdout + done.stderr
        assert "JOINED" not in out and done.returncode != 0, out[-3000:]
        refused[f"GCS, {label}"] = _last_error(out)
    # the dashboard listens on the head's 127.0.0.1 only: the intruder cannot even connect
    probe = (f"import urllib.request as u\ntry:\n u.urlopen('http://{h[HEAD].ip}:8265/api/jobs/', timeout=5)\n"
             "except Exception as e: print(type(e).__name__, e)\nelse: print('ANSWERED')")
    done = intruder.exec(sys.executable, "-c", probe, env=env)
    assert "ANSWERED" not in done.stdout and "refused" in done.stdout.lower(), done.stdout + done.stderr
    refused["dashboard from the intruder"] = done.stdout.strip()
    # through the forwarded port, from another host: the job API answers 401 without the token, 200 with it
    url = cluster.forward_dashboard()
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{url}/api/jobs/", timeout=10)
    assert err.value.code == 401
    refused["job API without the token"] = f"HTTP {err.value.code} {err.value.reason}"
    with_token = urllib.request.Request(f"{url}/api/jobs/", headers={"Authorization": f"Bearer {cluster.token}"})
    ok = urllib.request.urlopen(with_token, timeout=10)
    assert ok.status == 200
    cluster.report["refused"] = refused


def _last_error(out: str) -> str:
    """The line that says why (an authentication message if there is one, else the last error)."""
    lines = out.strip().splitlines()
    why = [ln for ln in lines if re.search(r"uthenticat|UNAUTHENTICATED|token", ln)] or \
        [ln for ln in lines if "Error" in ln] or lines[-1:]
    return why[-1].strip()[:400]


def test_a_search_across_the_hosts_survives_a_lost_worker_host(cluster):
    h = cluster.hosts
    url = cluster.forward_dashboard() if cluster.forward is None else f"http://127.0.0.1:{cluster.dashboard_port}"
    t0 = time.monotonic()
    cluster.ray("job", "submit", "--address", url, "--no-wait", "--submission-id", "onprem-search", "--",
                "python", "-m", "tune.search", "--address", "auto", "--storage-path", cluster.storage(),
                *SEARCH, timeout=120)
    lost, logs = None, ""
    deadline = time.monotonic() + 1200
    while time.monotonic() < deadline:
        logs = cluster.ray("job", "logs", "--address", url, "onprem-search", timeout=120, check=False).stdout
        done = cluster.ray("job", "status", "--address", url, "onprem-search", timeout=120, check=False)
        status = done.stdout + done.stderr  # "Job 'onprem-search' succeeded" (or failed, stopped) goes to stderr
        if lost is None:
            # once the first trial has checkpointed epoch 2 or later, cut off the worker host of one of its ranks
            ranks = re.findall(r"rank (\d) of 2 on host (\S+) \(([\d.]+)\), starting at epoch 1", logs)
            if ranks and re.search(r"Reporting training result [2-9]: TrainingReport\(checkpoint=Checkpoint", logs):
                on_workers = [host for _, host, _ in ranks if host in WORKERS]
                assert on_workers, f"no rank of the first trial on a worker host: {ranks}"
                lost = on_workers[0]
                cluster.report["first_trial_ranks"] = {f"rank {r}": f"{host} ({ip})" for r, host, ip in ranks}
                cluster.report["lost_host"] = lost
                cluster.report["lost_at_s"] = round(time.monotonic() - t0, 1)
                cluster.report["lost_processes"] = len(h.cut_off(lost))
        if re.search(r"Job '\S+' (succeeded|failed|stopped)", status):
            break
        time.sleep(3)
    cluster.report["search_s"] = round(time.monotonic() - t0, 1)
    (cluster.work / "job.log").write_text(logs)
    assert re.search(r"Job '\S+' succeeded", status), f"{status[-6000:]}\n{logs[-6000:]}"
    assert lost is not None, f"the search ended before a host could be cut off:\n{logs[-4000:]}"

    resumed = re.findall(r"rank (\d) of 2 on host (\S+) \(([\d.]+)\), resuming after epoch (\d+)", logs)
    assert resumed, f"no rank resumed from a checkpoint after {lost} was lost:\n{logs[-6000:]}"
    assert all(host != lost for _, host, _, _ in resumed)
    cluster.report["resumed_ranks"] = {f"rank {r}": f"{host} ({ip}), after epoch {e}" for r, host, ip, e in resumed}
    all_ranks = re.findall(r"rank (\d) of 2 on host (\S+) \(", logs)
    assert len({host for _, host in all_ranks}) >= 2, all_ranks

    # the experiment is in the shared storage, and tune.report reads it back from there
    import boto3

    s3 = boto3.client("s3", endpoint_url=f"http://{h.gateway}:{cluster.s3_port}", region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="emohrnet/onprem/")
            for o in page.get("Contents", [])]
    best = json.loads(s3.get_object(Bucket=BUCKET, Key="emohrnet/onprem/best.json")["Body"].read())
    statuses = [t["status"] for t in best["trials"]]  # every trial ran to its end (or ASHA stopped it)
    assert len(statuses) == 2 and all(s in ("completed", "stopped early (ASHA)") for s in statuses), best["trials"]
    assert best["trials"][0]["status"] == "completed" and best["trials"][0]["epochs_run"] == 20, best["trials"][0]
    events = [k for k in keys if "events.out.tfevents" in k]
    checkpoints = [k for k in keys if k.endswith("/checkpoint.pt") or "/checkpoint_" in k]
    assert events and checkpoints, keys[:50]
    cluster.report["storage"] = {"objects": len(keys), "tensorboard_event_files": len(events),
                                 "checkpoint_files": len(checkpoints)}
    cluster.report["trials"] = [{k: t.get(k) for k in ("trial_id", "status", "best_val_ua", "best_epoch",
                                                      "epochs_run")} for t in best["trials"]]
    env = {**cluster.env(), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    experiment = cluster.storage().replace("/emohrnet?", "/emohrnet/onprem?")
    done = subprocess.run([sys.executable, "-m", "tune.report", experiment, "--out", str(cluster.work / "report")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    cluster.report["tune_report"] = done.stdout.strip().splitlines()[-3:]


def test_ray_down_leaves_no_ray_process_on_any_host(cluster):
    # `ray down` of Ray 2.60's local provider runs `ray stop` on the head only and marks the workers
    # terminated in its node list: Ray's agents stayed up on the workers. docs/cluster.md's order: stop
    # Ray on each worker over SSH (the lost host refuses the connection), then `ray down`.
    stopped = {w: cluster.hosts.ssh(w, "~/venv/bin/ray stop", timeout=120).returncode for w in WORKERS}
    cluster.report["worker_ray_stop_exit"] = stopped
    cluster.ray("down", "-y", str(cluster.config), timeout=600)
    deadline = time.monotonic() + 60
    left = {}
    while time.monotonic() < deadline:
        left = {name: [p for p in cluster.hosts[name].processes() if "ray" in p.split(" ", 1)[-1]]
                for name in (HEAD, *WORKERS)}
        if not any(left.values()):
            break
        time.sleep(1)
    assert not any(left.values()), left
    cluster.report["after_ray_down"] = {n: len(cluster.hosts[n].processes()) for n in (HEAD, *WORKERS)}

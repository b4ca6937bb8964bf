"""Stopping what a local search's Ray leaves behind when the search is killed hard, and nothing else.

A search that starts its own Ray (:func:`tune.ray_start.start_local_ray`) records it in
``$EMOHRNET_HOME/local-ray/<name>.json`` (:func:`record_local_ray`): the search's process, Ray's
session folder, its GCS address and Ray's own processes (GCS, raylet, dashboard, monitors, agents),
each with its start time. A clean end removes the record. After a SIGKILL the kernel ends the GCS
and the raylet with the search, but Ray's agents (hundreds of MB, deaf to SIGTERM) and sometimes
workers stay; ``ray stop`` would end them and every other Ray on the machine too (other searches
running side by side). ``python -m tune.search --stop-local --name NAME`` (:func:`stop_local_ray`)
ends exactly that search's Ray: the recorded processes still running under the same start time,
and the Ray processes holding files open in its session folder (every Ray process writes its logs
there; another Ray has its own folder).
"""

from __future__ import annotations

import json
import os
import signal
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from emohrnet.io import paths
from emohrnet.io.orphans import still_running
from emohrnet.io.storage import atomic_write_text

RECORDS = "local-ray"
"""The folder under ``$EMOHRNET_HOME`` holding one record per running local search."""

STOP_WAIT_S = 5.0
"""How long :func:`stop_local_ray` waits after SIGTERM before it sends SIGKILL (Ray's agents ignore SIGTERM)."""


def record_path(name: str) -> Path:
    """Where the local Ray of the search ``name`` is recorded."""
    return paths.home() / RECORDS / f"{name}.json"


def record_local_ray(name: str) -> Path:
    """Record the local Ray this process started (after ``ray.init``) under the search's ``name``.

    Returns:
        the record's path (written atomically).
    """
    import psutil
    import ray

    node = ray._private.worker._global_node
    procs = [info.process.pid for infos in node.all_processes.values() for info in infos]
    found = []
    for pid in procs:
        try:
            p = psutil.Process(pid)
            found += [p, *p.children(recursive=True)]  # the raylet's agents and workers
        except psutil.Error:
            continue
    me = psutil.Process()
    record = {"name": name, "driver": _ident(me), "session_dir": node.get_session_dir_path(),
              "gcs_address": node.gcs_address, "processes": [_ident(p) for p in found]}
    path = record_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1))
    return path


def forget_local_ray(name: str) -> None:
    """Remove the record of ``name``'s local Ray (its search shut it down)."""
    record_path(name).unlink(missing_ok=True)


def _ident(p) -> dict[str, Any]:
    return {"pid": p.pid, "create_time": p.create_time(), "name": p.name()}


def _alive(ident: dict[str, Any]):
    """The process ``ident`` names if it still runs (same pid and start time, so not a reused pid), else ``None``."""
    import psutil

    try:
        p = psutil.Process(ident["pid"])
        return p if abs(p.create_time() - ident["create_time"]) < 0.01 else None
    except psutil.Error:
        return None


def session_processes(record: dict[str, Any]) -> list:
    """The processes of the recorded local Ray that still run (``psutil.Process`` list), never this one
    nor the recorded search: the recorded ones with their start time unchanged, and every Ray process
    (``ray::...``, ``raylet``, ``gcs_server``, Ray's Python services) with a file open in the session folder."""
    import psutil

    session = os.path.realpath(record["session_dir"]) + os.sep
    ray_dir = os.path.dirname(find_spec("ray").origin) + os.sep
    skip = {os.getpid(), record["driver"]["pid"]}
    found = {p.pid: p for p in map(_alive, record["processes"]) if p is not None and p.pid not in skip}
    for p in psutil.process_iter(["name", "cmdline"]):
        if p.pid in skip or p.pid in found:
            continue
        try:
            name, cmd = p.info["name"] or "", " ".join(p.info["cmdline"] or ())
            ours = name.startswith("ray") or name == "gcs_server" or ray_dir in cmd
            if ours and any(os.path.realpath(f.path).startswith(session) for f in p.open_files()):
                found[p.pid] = p
        except psutil.Error:
            continue
    return sorted(found.values(), key=lambda p: p.pid)


def stop_local_ray(name: str, log=print) -> list[int]:
    """Stop what the local Ray of the search ``name`` left running (SIGTERM, then SIGKILL after
    :data:`STOP_WAIT_S`); other Rays on the machine are not touched. Removes the record.

    Returns:
        the process ids it stopped.

    Raises:
        ValueError: no record of ``name`` (it never started a local Ray here, or ended cleanly), or
            the search is still running (stop it with Ctrl+C or ``kill PID`` first).
    """
    import psutil

    path = record_path(name)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"--stop-local --name {name}: no local Ray of this search is recorded in {path.parent} "
                         "(it ended cleanly, or ran on a cluster); nothing was stopped") from None
    driver = _alive(record["driver"])
    if driver is not None:
        raise ValueError(f"--stop-local --name {name}: the search is still running (pid {driver.pid}); stop it "
                         f"with Ctrl+C or `kill {driver.pid}` (it shuts its Ray down); nothing was stopped")
    procs = session_processes(record)
    for p in procs:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    alive = still_running(procs, STOP_WAIT_S)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    still_running(alive, STOP_WAIT_S)
    path.unlink(missing_ok=True)
    log(f"stopped {len(procs)} processes of the local Ray of {name} (session {record['session_dir']})"
        + (f": {', '.join(str(p.pid) for p in procs)}" if procs else ""))
    return [p.pid for p in procs]


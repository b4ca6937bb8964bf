"""Starting or joining Ray for a search or a cross-fold run, and how many trials fit at once.

A local Ray listens on 127.0.0.1 only and gets a spare logical CPU; a cluster is joined with
``--address`` (or ``$RAY_ADDRESS``), as after ``ray up cluster.yaml``. The trials' DDP rendezvous
follows the node's address (:mod:`tune.rendezvous`); a search records its local Ray so that
``--stop-local`` can end it after a hard kill (:mod:`tune.local_ray`).
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any


def init_ray(resources: Any, address: str | None = None) -> dict[str, float]:
    """Join the cluster at ``address`` (``--address``, else ``$RAY_ADDRESS``) or start a local Ray.

    ``resources`` is a trial's (anything with ``workers`` and ``cpus_per_worker``, e.g.
    :class:`emohrnet.config.experiment.ResourcesConfig`).

    A local Ray gets :func:`local_cpus` logical CPUs (the cores, or at least one trial's workers, plus
    a share for the trials' drivers), so the worker group starts on a 2-core machine; its dashboard binds
    to 127.0.0.1 only, and its GCS address is pinned (:func:`pin_local_gcs_address`) so several local searches can
    run side by side.

    Returns:
        the cluster's total resources.
    """
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address)
        return ray.cluster_resources()
    start_local_ray(local_cpus(resources))
    total = dict(ray.cluster_resources())
    total["CPU"] = total.get("CPU", 0) - SPARE_CPUS  # the trials' concurrency is sized without the spare
    return total


def shutdown_local_ray(environment: dict[str, str]) -> None:
    """Shut down the local Ray this process started and give the process back the Ray settings it had
    before the start (``environment``: ``dict(os.environ)`` from before it).

    Ray 2.60's ``ray.init`` of a new local Ray turns token authentication on for the whole process:
    it sets ``RAY_AUTH_MODE=token`` in the environment and leaves it there, so every process started
    afterwards (a search joining a cluster that runs without tokens, say) would fail every RPC ("The
    actor never ran - it was cancelled before it started running"). The ``RAY_*`` variables go back
    to their values before the start and Ray's cached settings are reloaded from them. (Ray also
    keeps token state in this process that cannot be reset: a later ``ray.init`` of the *same*
    process joining a cluster without tokens still fails; start a new process for it.)
    """
    import ray

    ray.shutdown()
    changed = {k for k in {*os.environ, *environment} if k.startswith("RAY_")
               and os.environ.get(k) != environment.get(k)}
    for key in changed:
        if key in environment:
            os.environ[key] = environment[key]
        else:
            del os.environ[key]
    if changed:
        from ray._raylet import Config  # what Ray itself calls after changing RAY_AUTH_MODE

        Config.initialize("")


def local_cpus(resources: Any) -> int:
    """Logical CPUs of a local Ray for trials of ``resources`` (``workers``, ``cpus_per_worker``): the
    machine's cores, or one trial's workers where they need more; one more for the trials' drivers
    (:data:`tune.trial.DRIVER_CPUS` each: they wait on their Ray Train runs and compute nothing), and
    :data:`SPARE_CPUS`. On 2 cores: two 1-worker trials at once, or one 2-worker trial."""
    workers = resources.workers * resources.cpus_per_worker
    return max(os.cpu_count() or 1, math.ceil(workers)) + DRIVERS_SHARE + SPARE_CPUS


DRIVERS_SHARE = 1
"""Logical CPUs a local Ray gets for the trials' drivers (20 drivers at :data:`tune.trial.DRIVER_CPUS`)."""

SPARE_CPUS = 1
"""Logical CPUs a local search's Ray gets beyond what it sizes its trials for. Ray Train can leave a
worker group's placement group reserved when its controller dies during shutdown (seen on a 2-core
machine: the next trial's "worker group startup timed out" over and over); with no spare, that one
CPU would stall every later trial."""


def start_local_ray(num_cpus: int) -> None:
    """Start a local Ray with ``num_cpus`` logical CPUs, every listener on 127.0.0.1 only
    (:func:`loopback_only`: GCS, raylet, workers, agents, dashboard) and its GCS address pinned
    (:func:`pin_local_gcs_address`), so Ray Train finds it beside other local Rays."""
    import ray

    with loopback_only():
        gcs = pin_local_gcs_address()
        try:
            ray.init(address="local", num_cpus=num_cpus, dashboard_host="127.0.0.1", log_to_driver=True,
                     runtime_env={"env_vars": {"RAY_ADDRESS": gcs}})
        finally:
            os.environ.pop("RAY_GCS_SERVER_PORT", None)


@contextlib.contextmanager
def loopback_only():
    """While a local Ray starts, make it take 127.0.0.1 as its node address, so its gRPC servers
    (GCS, raylet, workers) and agents bind there and nothing listens on the machine's other
    interfaces. Ray does this itself where it supports no clusters (macOS, Windows), under the
    switch ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``; Ray reads the switch when imported, so an
    already imported Ray is told too. Both are restored once Ray has started (its processes keep it)."""
    import ray._private.ray_constants as constants

    name = constants.ENABLE_RAY_CLUSTERS_ENV_VAR
    old_env, old_flag = os.environ.get(name), constants.ENABLE_RAY_CLUSTER
    os.environ[name], constants.ENABLE_RAY_CLUSTER = "0", False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = old_flag
        if old_env is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old_env


def pin_local_gcs_address() -> str:
    """Choose the GCS port of the local Ray about to start and return its address.

    Ray Train 2.60 releases a finished trial's workers from an actor that finds its cluster by
    scanning the machine; with another local Ray instance running it gives up ("Found multiple
    active Ray instances") and the next trial waits forever. Starting Ray on a known GCS port
    (``RAY_GCS_SERVER_PORT``) and giving every worker ``RAY_ADDRESS`` (job runtime env) lets it
    find its own.
    """
    import socket

    from ray._private.services import get_node_ip_address

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ["RAY_GCS_SERVER_PORT"] = str(port)
    return f"{get_node_ip_address()}:{port}"


def max_concurrent(resources: Any, total: dict[str, float]) -> int:
    """Trials that fit at once: limited by CPUs (workers + :data:`tune.trial.DRIVER_CPUS` for the driver) and
    GPUs per trial. ``resources``
    has ``workers``, ``cpus_per_worker`` and ``gpus_per_worker`` (a
    :class:`emohrnet.config.experiment.ResourcesConfig`, or the parsed options)."""
    from .trial import DRIVER_CPUS

    by_cpu = total.get("CPU", 1) // (resources.workers * resources.cpus_per_worker + DRIVER_CPUS)
    fits = by_cpu
    if resources.gpus_per_worker:
        fits = min(fits, total.get("GPU", 0) // (resources.workers * resources.gpus_per_worker))
    return max(1, int(fits))

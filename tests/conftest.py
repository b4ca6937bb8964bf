"""Shared test settings and fixtures: an isolated ``EMOHRNET_HOME``, Ray Train's worker polling
every 0.1 s (its 2 s default adds seconds to every trial's start and end) and no preemption watcher
(a cloud spot-instance feature: one more actor process per Ray Train run), one Ray cluster that the
in-process searches join with ``--address`` (a Ray start costs about 7 s on 2 cores), one tiny real
search shared by the test files that read a finished experiment, a tiny model, two torch threads.

The local Ray that a search starts itself (loopback listeners, spare CPU, shut down at the end) is
exercised by the search test_object_store runs as a subprocess (never in this process: Ray 2.60
turns token authentication on in a process that starts a local Ray, and the session's cluster runs
without tokens). One S3 server serves the session (started before the cluster)."""

from __future__ import annotations

import contextlib
import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory):
    """Everything emohrnet writes by default goes to a temporary folder; Ray Train polls its workers
    every 0.1 s and starts no preemption watcher (inherited by every Ray the tests start, in-process
    or as a subprocess)."""
    home = tmp_path_factory.mktemp("emohrnet_home")
    settings = {"EMOHRNET_HOME": str(home), "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.1",
                "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0"}
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


CLUSTER_CPUS = 4
"""Logical CPUs of the shared cluster: one trial of 2 DDP workers (its driver and its workers), or two
trials of 1 worker, at a time."""


S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
          "AWS_EC2_METADATA_DISABLED": "true"}
"""Credentials and region of the session's S3 server (test values; moto accepts any)."""


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3-protocol HTTP server (moto's server mode) on a free localhost port for the whole
    session, with the environment pointing pyarrow and boto3 at it (``AWS_ENDPOINT_URL`` and test
    credentials). The session's cluster starts after it, so its workers reach the buckets as a cloud
    cluster's nodes do with their instance profile. Yields the endpoint URL; no bucket is made here."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in (*S3_ENV, "AWS_ENDPOINT_URL")}
    os.environ.update(S3_ENV, AWS_ENDPOINT_URL=endpoint)
    try:
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@pytest.fixture(scope="session")
def ray_cluster(_isolated_home, s3_endpoint):
    """One Ray cluster (``ray.cluster_utils.Cluster``: a real GCS, raylet and dashboard; a head node
    of :data:`CLUSTER_CPUS` logical CPUs) for the whole session, started on first use after the
    settings above and the S3 server (:func:`s3_endpoint`; its workers inherit both). A test joins it
    with ``--address`` (or ``ray.init(address=...)``) and leaves it with ``ray.shutdown()``; a test
    that adds a node removes it; the cluster stops at the end."""
    import socket

    from ray.cluster_utils import Cluster

    with socket.socket() as sock:  # a free dashboard port: 8265 may be taken by another Ray here
        sock.bind(("127.0.0.1", 0))
        dashboard_port = sock.getsockname()[1]
    cluster = Cluster(initialize_head=True, connect=False,
                      head_node_args={"num_cpus": CLUSTER_CPUS, "dashboard_port": dashboard_port,
                                      "dashboard_host": "127.0.0.1"})
    try:
        yield cluster
    finally:
        cluster.shutdown()


@pytest.fixture(scope="session")
def ray_address(ray_cluster):
    """The GCS address of the session's cluster (:func:`ray_cluster`)."""
    return ray_cluster.address


@pytest.fixture(scope="session")
def tiny_search(tmp_path_factory, ray_address):
    """One tiny real search on the synthetic corpus, shared by the tests that read a finished
    experiment (test_search, test_evaluate_report): 3 trials x 3 epochs, 2 DDP workers, ASHA with
    grace period 1, on the session's cluster. Returns ``(summary, experiment folder)``."""
    import ray
    from fixtures import SEARCH_EPOCHS, SEARCH_TRIALS, TINY_SEARCH

    from tune.search import parse_args, run_search

    out = tmp_path_factory.mktemp("search")
    args = parse_args([*TINY_SEARCH, "--num-samples", str(SEARCH_TRIALS), "--epochs", str(SEARCH_EPOCHS),
                       "--grace-period", "1", "--storage-path", str(out), "--name", "tiny",
                       "--address", ray_address])
    try:
        summary = run_search(args, log=lambda *a: None).to_dict()  # best.json's form
    finally:
        ray.shutdown()
    return summary, out / "tiny"


@contextlib.contextmanager
def torch_threads(n: int):
    """``n`` intra-op torch threads inside the block, the number before it restored after."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a test module (``pytestmark = pytest.mark.usefixtures("one_thread")``): its
    tensors are small, and on a shared 2-core machine two threads contend (up to 100x slower)."""
    with torch_threads(1):
        yield


@pytest.fixture
def two_threads():
    """Two torch threads for a test (the training-step tests that exercise intra-op parallelism)."""
    with torch_threads(2):
        yield



@pytest.fixture
def tree(tmp_path):
    """A small RAVDESS folder (corpus_trees.py): actors 1-3 with 3 of its 8 emotions (neutral, happy,
    angry), so 5 classes have no utterance; 0.4 s per file (test_shards, test_build_reliability)."""
    from corpus_trees import write_ravdess_tree

    root = tmp_path / "ravdess"
    write_ravdess_tree(root, actors=(1, 2, 3), emotions=(1, 3, 5), seconds=0.4)
    return root

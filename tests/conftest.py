"""Shared test settings and fixtures: an isolated ``EMOHRNET_HOME``, Ray Train's worker polling
every 0.1 s (its 2 s default adds seconds to every trial's start and end) and no preemption watcher
(a cloud spot-instance feature: one more actor process per Ray Train run), one tiny real search
shared by the test files that read a finished experiment, a tiny model, two torch threads."""

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


@pytest.fixture(scope="session")
def tiny_search(tmp_path_factory):
    """One tiny real search on the synthetic corpus, shared by the tests that read a finished
    experiment (test_search, test_evaluate_report): 4 trials x 3 epochs, 2 DDP workers, ASHA with
    grace period 1. Returns ``(summary, experiment folder)``."""
    import ray
    from fixtures import SEARCH_EPOCHS, SEARCH_TRIALS, TINY_SEARCH

    from tune.search import parse_args, run_search

    out = tmp_path_factory.mktemp("search")
    args = parse_args([*TINY_SEARCH, "--num-samples", str(SEARCH_TRIALS), "--epochs", str(SEARCH_EPOCHS),
                       "--grace-period", "1", "--storage-path", str(out), "--name", "tiny"])
    try:
        summary = run_search(args, log=lambda *a: None)
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

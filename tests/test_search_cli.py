"""The search's command line, without starting Ray."""

from __future__ import annotations

import pytest

from tune.search import main, parse_args
from tune.space import PAPER_SETTINGS, baseline_point


def test_missing_corpus_says_where_to_get_it_and_how_to_name_it(capsys, monkeypatch):
    monkeypatch.delenv("EMOHRNET_IEMOCAP_ROOT", raising=False)
    assert main(["--dataset", "iemocap"]) == 2
    err = capsys.readouterr().err
    assert "--data-root DIR" in err and "EMOHRNET_IEMOCAP_ROOT" in err
    assert "IEMOCAP_full_release" in err and "sail.usc.edu" in err.lower()


def test_unknown_dataset_is_refused(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--dataset", "nope"])
    assert "allowed: cremad" in capsys.readouterr().err


def test_profiles_and_defaults():
    synthetic = parse_args([])
    assert synthetic.dataset == "synthetic" and synthetic.protocol == "speaker"
    assert synthetic.epochs == 5 and synthetic.batch_size == 16 and synthetic.widths == (8, 12, 18)
    real = parse_args(["--dataset", "ravdess", "--widths", "4,6", "--modules", "1,1,1,1"])
    assert real.epochs == 100 and real.batch_size == 64 and real.n_mels == 128
    assert real.widths == (4, 6) and real.modules == [1, 1, 1, 1]


def test_baseline_is_the_papers_point():
    point, deviations = baseline_point((12, 18, 24))
    assert point == PAPER_SETTINGS == {"lr": 1e-3, "freq_mask": 27, "time_mask": 100, "width": 18}
    assert deviations == []
    point, deviations = baseline_point((4, 6))
    assert point["width"] == 6 and deviations


def test_fractional_gpus_per_trial_pack_trials_on_one_gpu(capsys):
    from tune.ray_start import max_concurrent
    from tune.trial import TrialResources

    packed = parse_args(["--gpus-per-trial", "0.25", "--workers", "1", "--cpus-per-worker", "2"])
    assert packed.gpus_per_worker == 0.25
    assert max_concurrent(packed, {"CPU": 16, "GPU": 1}) == 4  # four trials share the GPU
    assert max_concurrent(packed, {"CPU": 6, "GPU": 1}) == 2  # CPUs limit: driver + worker per trial
    whole = parse_args(["--gpus-per-trial", "1", "--workers", "1"])
    assert max_concurrent(whole, {"CPU": 16, "GPU": 1}) == 1
    shared = parse_args(["--gpus-per-trial", "0.5", "--workers", "2"])
    assert shared.gpus_per_worker == 0.25
    # two ranks of one trial on one GPU cannot use NCCL; whole GPUs and CPUs keep their backends
    assert TrialResources(2, 1, shared.gpus_per_worker).backend == "gloo"
    assert TrialResources(1, 1, 0.25).backend == "nccl"
    assert TrialResources(4, 2, 1.0).backend == "nccl"
    assert TrialResources(2, 1, 0.0).backend == "gloo"
    assert parse_args(["--gpus-per-trial", "4", "--workers", "4"]).gpus_per_worker == 1


def test_the_tensorboard_hint_copies_a_bucket_with_its_own_cloud_tool():
    from types import SimpleNamespace

    from tune.summary import tensorboard_command

    def bucket(uri):  # what tensorboard_command reads of a Location, without reaching the cloud
        return SimpleNamespace(is_local=False, uri=uri, name=uri.rsplit("/", 1)[1])

    assert "gcloud storage rsync -r gs://b/emohrnet/x ./x" in tensorboard_command(bucket("gs://b/emohrnet/x"))
    assert "aws s3 sync s3://b/emohrnet/x ./x" in tensorboard_command(bucket("s3://b/emohrnet/x?region=eu"))
    assert "aws s3" not in tensorboard_command(bucket("gs://b/emohrnet/x"))


def test_compile_is_a_search_option_passed_to_training():
    assert parse_args(["--compile"]).compile is True and parse_args([]).compile is False


def test_a_local_rays_settings_are_undone_when_it_stops(monkeypatch):
    """Ray 2.60's start of a local Ray sets ``RAY_AUTH_MODE=token`` in the process's environment and
    leaves it (seen: a later process joining a cluster without tokens then failed every RPC); the
    search's shutdown puts the process's ``RAY_*`` variables back as they were before the start."""
    import os

    import ray

    from tune.ray_start import shutdown_local_ray

    monkeypatch.setattr(ray, "shutdown", lambda: None)  # no Ray is running here
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.setenv("RAY_ADDRESS_KEPT", "x")
    before = dict(os.environ)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # what the local start did
    monkeypatch.setenv("RAY_ADDRESS_KEPT", "changed")
    monkeypatch.setenv("OTHER_SETTING", "kept")  # not Ray's: left alone
    shutdown_local_ray(before)
    assert "RAY_AUTH_MODE" not in os.environ and os.environ["RAY_ADDRESS_KEPT"] == "x"
    assert os.environ["OTHER_SETTING"] == "kept"

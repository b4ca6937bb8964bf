"""Cross-fold evaluation (``tune.evaluate``) and the search report (``tune.report``).

Without Ray: macro-F1 against scikit-learn, fold parsing, protocol names, and a report of a
hand-made experiment folder. With Ray (one module fixture, one Ray instance): a tiny real search
on the synthetic corpus, the cross-fold evaluation of its best.json on folds 0 and 1, and the
report of that experiment with its TensorBoard confusion image.
"""

from __future__ import annotations

import _thread
import base64
import json
import math
import re
import statistics
import threading
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from sklearn.metrics import f1_score
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from emohrnet.metrics import confusion_matrix, unweighted_accuracy, weighted_accuracy
from tune import evaluate, report

PAPER_NUMBERS = ("92.45", "80.06", "92.77", "97.49", "99.23", "89.31", "99.82", "99.53", "96.39")
IMG = '<img src="data:image/png;base64,'


# --------------------------------------------------------------------------- no Ray
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_macro_f1_matches_sklearn():
    rng = np.random.default_rng(0)
    for _ in range(200):
        c = int(rng.integers(2, 8))
        n = int(rng.integers(1, 40))
        y = rng.integers(0, c, n)
        # skewed predictions: some classes never predicted, some predicted but absent from y
        p = np.where(rng.random(n) < 0.5, y, rng.integers(0, c, n))
        cm = confusion_matrix(torch.as_tensor(y), torch.as_tensor(p), c)
        assert evaluate.macro_f1(cm) == pytest.approx(f1_score(y, p, average="macro"), abs=1e-12)
        assert evaluate.macro_f1(cm.tolist()) == pytest.approx(f1_score(y, p, average="macro"), abs=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_macro_f1_edge_cases():
    # class 2 is predicted but never in the reference (F1 0, counted); class 3 is absent from both (not counted)
    y, p = [0, 0, 1, 1], [0, 2, 1, 1]
    cm = confusion_matrix(torch.tensor(y), torch.tensor(p), 4)
    assert evaluate.macro_f1(cm) == pytest.approx(f1_score(y, p, average="macro"))
    assert evaluate.macro_f1(cm) == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)
    assert evaluate.macro_f1([[3, 0], [0, 5]]) == 1.0
    assert math.isnan(evaluate.macro_f1([[0, 0], [0, 0]]))
    with pytest.raises(ValueError, match="square"):
        evaluate.macro_f1([[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match="negative"):
        evaluate.macro_f1([[1, -1], [0, 1]])


def test_mean_std_is_sample_std():
    assert evaluate.mean_std([0.5, 0.7, 0.9]) == (pytest.approx(0.7), pytest.approx(0.2))
    assert evaluate.mean_std([0.4]) == (0.4, None)
    assert evaluate.mean_std([]) == (None, None)


def test_parse_folds_and_protocol_names():
    assert evaluate.parse_folds("all", "speaker", 6) == [0, 1, 2, 3, 4, 5]
    assert evaluate.parse_folds("5,0,2,2", "speaker", 6) == [0, 2, 5]
    assert evaluate.parse_folds("all", "random", 6) == list(range(evaluate.RANDOM_SEEDS))
    assert evaluate.parse_folds("7,11", "random", 6) == [7, 11]  # random folds are seeds: any
    for bad in ("6", "-1", "a,b", ","):
        with pytest.raises(ValueError):
            evaluate.parse_folds(bad, "speaker", 6)
    assert evaluate.protocol_name("speaker", list(range(6)), 6) == "speaker-independent, 6 folds"
    assert evaluate.protocol_name("speaker", [0, 2], 6) == "speaker-independent, 2 folds (0,2 of 6)"
    assert evaluate.protocol_name("random", [0, 1, 2]).startswith("random split, seeds 0,1,2")


def test_parse_args_needs_dataset_and_config():
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--config", "best.json"])
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--dataset", "synthetic"])
    args = evaluate.parse_args(["--dataset", "synthetic", "--config", "b.json", "--folds", "0,2", "--epochs", "3"])
    assert (args.folds, args.epochs, args.workers) == ("0,2", 3, None)


def test_wrong_dataset_is_refused_before_ray(tmp_path):
    (tmp_path / "best.json").write_text(json.dumps({"dataset": "ravdess", "best_config": {}, "protocol": "speaker"}))
    args = evaluate.parse_args(["--dataset", "synthetic", "--config", str(tmp_path / "best.json")])
    with pytest.raises(ValueError, match="searched on ravdess"):
        evaluate.run_crossfold(args, log=lambda *a: None)
    assert evaluate.main(["--dataset", "synthetic", "--config", str(tmp_path / "missing.json")]) == 2


def test_missing_shards_are_rebuilt_with_the_search_settings(tmp_path):
    from shards.build import read_manifest
    from tune.search import parse_args

    exp_dir = tmp_path / "exp"
    exp_dir.mkdir()
    args = parse_args(["--n-mels", "24", "--corpus-option", "n_speakers=6", "--corpus-option", "n_per_class=2"])
    (exp_dir / "search_args.json").write_text(json.dumps(vars(args)))
    summary = {"shard_dirs": {"emohrnet": str(tmp_path / "gone")}}
    logs: list[str] = []
    rebuilt = evaluate.ensure_shards(summary, "emohrnet", exp_dir, log=logs.append)["emohrnet"]
    assert rebuilt != str(tmp_path / "gone") and "rebuilding" in logs[0]
    manifest = read_manifest(rebuilt)
    assert manifest["features"]["n_mels"] == 24 and manifest["num_utterances"] == 6 * 4 * 2
    assert manifest["corpus"]["options"]["n_speakers"] == 6
    logs.clear()
    assert evaluate.ensure_shards({"shard_dirs": {"emohrnet": rebuilt}}, "emohrnet", exp_dir,
                                  log=logs.append) == {"emohrnet": rebuilt}
    assert logs[0].startswith("reusing")
    with pytest.raises(evaluate.ShardError, match="search_args.json"):
        evaluate.ensure_shards(summary, "emohrnet", tmp_path, log=logs.append)


def _fake_experiment(exp_dir: Path) -> dict:
    """A finished one-trial search, written by hand (no Ray, no Optuna study)."""
    exp_dir.mkdir(parents=True)
    classes = ["neutral", "happy", "angry", "sad"]
    confusion = [[3, 1, 0, 0], [0, 4, 0, 0], [1, 0, 2, 1], [0, 0, 0, 4]]
    trial = {"trial_id": "abc123", "model": "emohrnet", "baseline": True,
             "params": {"lr": 1e-3, "freq_mask": 27, "time_mask": 100, "width": 6}, "best_val_ua": 0.5,
             "best_val_wa": 0.5, "best_epoch": 1, "epochs_run": 3, "status": "completed", "test_ua": 0.8125,
             "test_wa": 0.8125, "test_confusion": confusion, "path": str(exp_dir / "trial_abc123")}
    summary = {"dataset": "synthetic", "model": "emohrnet", "protocol": "random", "fold": 0,
               "split": "random stratified utterance split (seed 0; NOT speaker-independent)", "protocol_note": "",
               "baseline": {"points": [], "deviations_from_paper": []}, "best_trial": "abc123",
               "best_model": "emohrnet", "best_config": {"lr": 1e-3, "model": "emohrnet", "epochs": 3},
               "best_val_ua": 0.5, "best_val_wa": 0.5, "best_epoch": 1, "test_ua": 0.8125, "test_wa": 0.8125,
               "test_confusion": confusion, "classes": classes, "test_source": "final report",
               "experiment_dir": str(exp_dir), "trials": [trial]}
    (exp_dir / "best.json").write_text(json.dumps(summary))
    tdir = exp_dir / "trial_abc123"
    tdir.mkdir()
    # result.json only (no progress.csv): the learning curves must come from it
    lines = [{"epoch": e, "train_loss": 1.4 - 0.1 * e, "val_loss": 1.5 - 0.05 * e, "val_ua": 0.3 + 0.1 * e,
              "training_iteration": e + 1, "config": {"lr": 1e-3}} for e in range(3)]
    (tdir / "result.json").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    return summary


def test_report_of_a_handmade_experiment(tmp_path):
    exp_dir = tmp_path / "exp"
    summary = _fake_experiment(exp_dir)
    history = report.trial_history(exp_dir / "trial_abc123")
    assert list(history["val_ua"]) == pytest.approx([0.3, 0.4, 0.5])
    imp, message = report.param_importances(exp_dir, summary)
    assert imp is None and message.startswith("not enough trials")

    assert report.main([str(exp_dir), "--out", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count(IMG) == 3 and "param_importances" not in page
    assert "not enough trials" in page
    assert "random utterance split" in page and "NOT speaker-independent" in page
    assert "81.25" in page  # the best trial's test UA, beside the papers' numbers
    assert all(n in page for n in PAPER_NUMBERS)
    assert "Cross-fold" not in page  # no crossfold.json in this experiment
    assert (tmp_path / "out" / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "out" / "param_importances.png").exists()
    assert report.main([str(tmp_path / "nothing")]) == 2


def test_importances_need_two_complete_trials(tmp_path):
    exp_dir = tmp_path / "one"
    exp_dir.mkdir()
    study = optuna.create_study(study_name="one", storage=f"sqlite:///{exp_dir / 'optuna.db'}", direction="maximize")
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1e-2), n_trials=1)
    imp, message = report.param_importances(exp_dir, {"experiment_dir": str(exp_dir)})
    assert imp is None and "1 complete" in message and message.startswith("not enough trials")
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1e-2), n_trials=3)
    imp, _ = report.param_importances(exp_dir, {"experiment_dir": str(exp_dir)})
    assert imp is not None and set(imp) == {"lr"} and sum(imp.values()) == pytest.approx(1.0)


# --------------------------------------------------------------------------- with Ray
FIXTURE_BUDGET_S = 540
"""The search and the cross-fold run together; past this the fixture interrupts them (as Ctrl+C
would) so that a stuck Ray run fails the tests instead of hanging them."""


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """A tiny real search, then ``tune.evaluate --folds 0,1 --epochs 1`` on its best.json (one Ray)."""
    import ray

    from tune.search import parse_args, run_search

    out = tmp_path_factory.mktemp("evaluate_report")
    args = parse_args([
        "--num-samples", "2", "--epochs", "2", "--workers", "1", "--widths", "4,6", "--stem-channels", "8",
        "--blocks", "1", "--modules", "1,1,1,1", "--n-mels", "32", "--segment-seconds", "1.0",
        "--storage-path", str(out), "--name", "tiny", "--grace-period", "2",
        "--corpus-option", "n_speakers=6", "--corpus-option", "n_per_class=4",
    ])
    logs: list[str] = []
    watchdog = threading.Timer(FIXTURE_BUDGET_S, _thread.interrupt_main)
    watchdog.start()
    try:
        summary = run_search(args, log=lambda *a: None)
        exp_dir = out / "tiny"
        eargs = evaluate.parse_args(["--dataset", "synthetic", "--config", str(exp_dir / "best.json"),
                                     "--folds", "0,1", "--epochs", "1"])
        crossfold = evaluate.run_crossfold(eargs, log=lambda *a: logs.append(" ".join(map(str, a))))
    finally:
        watchdog.cancel()
        ray.shutdown()
    return summary, exp_dir, crossfold, "\n".join(logs)


@pytest.fixture(scope="module")
def reported(done):
    _, exp_dir, _, _ = done
    assert report.main([str(exp_dir)]) == 0
    return exp_dir


@pytest.mark.ray
def test_crossfold_rows_and_mean_std(done):
    summary, exp_dir, cf, _ = done
    assert [r["fold"] for r in cf["folds"]] == [0, 1]
    assert cf["n_completed"] == 2 and all(r["status"] == "completed" for r in cf["folds"])
    assert cf["epochs"] == 1 and cf["config"]["width"] == summary["best_config"]["width"]
    for r in cf["folds"]:
        cm = torch.tensor(r["test_confusion"])
        assert r["test_ua"] == pytest.approx(unweighted_accuracy(cm))
        assert r["test_wa"] == pytest.approx(weighted_accuracy(cm))
        assert r["test_macro_f1"] == pytest.approx(evaluate.macro_f1(cm))
        assert r["best_epoch"] == 0 and r["epochs_run"] == 1
        assert f"speaker-independent fold {r['fold']}" in r["split"]
    for key in ("test_ua", "test_wa", "test_macro_f1", "best_val_ua"):
        values = [r[key] for r in cf["folds"]]
        assert cf["mean"][key] == pytest.approx(statistics.fmean(values))
        assert cf["std"][key] == pytest.approx(statistics.stdev(values))
    # the two folds test on different speakers
    assert cf["folds"][0]["split"].split("test speakers")[1] != cf["folds"][1]["split"].split("test speakers")[1]


@pytest.mark.ray
def test_crossfold_files_name_the_protocol(done):
    _, exp_dir, cf, logs = done
    saved = json.loads((exp_dir / "crossfold.json").read_text())
    assert saved["mean"] == cf["mean"] and saved["std"] == cf["std"] and len(saved["folds"]) == 2
    assert saved["protocol_name"].startswith("speaker-independent, 2 folds")
    md = (exp_dir / "crossfold.md").read_text()
    assert "speaker-independent, 2 folds" in md and "validation split" in md
    assert re.search(r"^\| 0 \|.*\n\| 1 \|", md, re.M)
    mean_ua = f"{100 * cf['mean']['test_ua']:.2f} ± {100 * cf['std']['test_ua']:.2f}"
    assert f"**{mean_ua}**" in md and "README" in md
    assert "Model selection: inside each fold" in logs and "speaker-independent, 2 folds" in logs
    assert mean_ua in logs


@pytest.mark.ray
def test_every_fold_logs_to_tensorboard(done):
    _, _, cf, _ = done
    for r in cf["folds"]:
        files = sorted(Path(r["path"]).glob("events.out.tfevents.*"))
        assert files, r["path"]
        acc = EventAccumulator(str(files[0]))
        acc.Reload()
        assert "ray/tune/val_ua" in acc.Tags()["scalars"]


@pytest.mark.ray
def test_report_html_is_self_contained(done, reported):
    summary, exp_dir, cf, _ = done
    page = (exp_dir / "report.html").read_text()
    assert page.count(IMG) >= 3
    for alt in ("learning curves", "test confusion matrix", "per-class recall"):
        m = re.search(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="' + alt + '">', page)
        assert m, alt
        assert base64.b64decode(m.group(1))[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<script" not in page and 'src="http' not in page and "href=" not in page
    for t in summary["trials"]:
        assert f"<td>{t['trial_id']}</td>" in page
    assert all(n in page for n in PAPER_NUMBERS)
    assert "random utterance split" in page and "speaker-independent fold 0" in page
    assert "Cross-fold evaluation" in page and f"{100 * cf['mean']['test_ua']:.2f}" in page
    assert "HParams" in page and "found in 2 of 2" in page
    assert "Best configuration" in page and "Parameter importances" in page


@pytest.mark.ray
def test_report_md_and_its_pngs(reported):
    md = (reported / "report.md").read_text()
    images = re.findall(r"!\[[^]]*\]\(([^)]+\.png)\)", md)
    assert {"learning_curves.png", "confusion_matrix.png", "per_class_recall.png"} <= set(images)
    for name in images:
        assert (reported / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "| trial |" in md and "92.45" in md and "Cross-fold evaluation" in md


@pytest.mark.ray
def test_hparams_and_confusion_image_in_tensorboard(done, reported):
    summary, exp_dir, _, _ = done
    for t in summary["trials"]:
        files = sorted((exp_dir / f"trial_{t['trial_id']}").glob("events.out.tfevents.*"))
        acc = EventAccumulator(str(files[0]))
        acc.Reload()
        assert acc.PluginTagToContent("hparams"), t["trial_id"]  # Ray Tune's TBX logger, at trial end
    acc = EventAccumulator(str(reported / report.BEST_TRIAL_LOGDIR))
    acc.Reload()
    assert report.CONFUSION_TAG in acc.Tags()["images"]
    image = acc.Images(report.CONFUSION_TAG)[0]
    assert image.width > 100 and image.height > 100
    assert base64.b64encode(image.encoded_image_string)[:8] == base64.b64encode(b"\x89PNG\r\n\x1a\n")[:8]

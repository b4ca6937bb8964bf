"""Cross-fold evaluation (``tune.evaluate``) and the search report (``tune.report``).

Without Ray: macro-F1 against scikit-learn, fold parsing, protocol names, and a report of a
hand-made experiment folder. With Ray: the cross-fold evaluation, on folds 0 and 1, of the best.json
of the session's tiny real search (conftest.py ``tiny_search``, shared with test_search), the
``tune.evaluate`` command line on it, and the report of that experiment with its TensorBoard
confusion image.
"""

from __future__ import annotations

import _thread
import base64
import json
import re
import statistics
import threading
from pathlib import Path

import optuna
import pytest
import torch
from fixtures import fake_experiment
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from emohrnet.inference.metrics import macro_f1, unweighted_accuracy, weighted_accuracy
from tune import evaluate, report

PAPER_NUMBERS = ("92.45", "80.06", "92.77", "97.49", "99.23", "89.31", "99.82", "99.53", "96.39")
IMG = '<img src="data:image/png;base64,'


# --------------------------------------------------------------------------- no Ray
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
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


def test_a_config_that_is_not_a_search_summary_is_one_line_naming_it(tmp_path, capsys):
    """A JSON without best.json's fields used to end in ``error: 'dataset'``, naming no file."""
    fix = "pass the best.json written by python -m tune.search (or its experiment folder)"
    probes = {
        "fields.json": ('{"foo": 1}', "not a search summary (no dataset, protocol, best_config)"),
        "config.json": (json.dumps({"data": {"dataset": "synthetic"}, "search": {}}),
                        "not a search summary (no dataset, protocol, best_config)"),
        "list.json": ("[1, 2]", "not a search summary (a JSON list)"),
        "text.json": ("not json", "not JSON (Expecting value: line 1 column 1 (char 0))"),
        "no_model.json": (json.dumps({"dataset": "synthetic", "protocol": "speaker", "best_config": {}}),
                          "not a search summary (no fold, best_config.model)"),
    }
    for name, (text, problem) in probes.items():
        (tmp_path / name).write_text(text)
        assert evaluate.main(["--dataset", "synthetic", "--config", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err == f"error: {tmp_path / name}: {problem}; {fix}\n", err


def test_report_out_on_a_file_is_one_line(tmp_path, capsys):
    """``--out`` on an existing file (or below one) used to end in a FileExistsError traceback."""
    exp_dir = tmp_path / "exp"
    fake_experiment(exp_dir)
    mine = tmp_path / "notes.txt"
    mine.write_text("mine\n")
    for out in (mine, mine / "report"):
        assert report.main([str(exp_dir), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err == f"error: argument --out: {mine} is a file (allowed: a folder, made if missing)\n", err
    assert mine.read_text() == "mine\n"


def test_missing_shards_are_rebuilt_with_the_search_settings(tmp_path):
    from emohrnet.shards import Manifest
    from tune.experiment import Experiment
    from tune.options import config_from_args
    from tune.search import parse_args

    exp_dir = tmp_path / "exp"
    exp_dir.mkdir()
    args = parse_args(["--n-mels", "24", "--corpus-option", "n_speakers=6", "--corpus-option", "n_per_class=2"])
    Experiment(exp_dir).write_config(config_from_args(args))
    summary = {"shard_dirs": {"emohrnet": str(tmp_path / "gone")}}
    logs: list[str] = []
    rebuilt = evaluate.ensure_shards(summary["shard_dirs"], "emohrnet", exp_dir, log=logs.append)["emohrnet"]
    assert rebuilt != str(tmp_path / "gone") and "rebuilding" in logs[0]
    manifest = Manifest.read(rebuilt)
    assert manifest.features["n_mels"] == 24 and manifest.num_utterances == 6 * 4 * 2
    assert manifest.corpus["options"]["n_speakers"] == 6
    logs.clear()
    assert evaluate.ensure_shards({"emohrnet": rebuilt}, "emohrnet", exp_dir,
                                  log=logs.append) == {"emohrnet": rebuilt}
    assert logs[0].startswith("reusing")
    with pytest.raises(evaluate.ShardError, match="no config.json to rebuild them"):
        evaluate.ensure_shards(summary["shard_dirs"], "emohrnet", tmp_path, log=logs.append)


def test_report_of_a_handmade_experiment(tmp_path):
    exp_dir = tmp_path / "exp"
    summary = fake_experiment(exp_dir)
    history = report.trial_history(exp_dir / "trial_abc123")
    assert list(history["val_ua"]) == pytest.approx([0.3, 0.4, 0.5])
    imp, message = report.param_importances(exp_dir, summary["experiment_dir"])
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
    imp, message = report.param_importances(exp_dir, str(exp_dir))
    assert imp is None and "1 complete" in message and message.startswith("not enough trials")
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1e-2), n_trials=3)
    imp, _ = report.param_importances(exp_dir, str(exp_dir))
    assert imp is not None and set(imp) == {"lr"} and sum(imp.values()) == pytest.approx(1.0)


# --------------------------------------------------------------------------- with Ray
FIXTURE_BUDGET_S = 420
"""The cross-fold run; past this the fixture interrupts it (as Ctrl+C would) so that a stuck Ray run
fails the tests instead of hanging them."""


@pytest.fixture(scope="module")
def done(tiny_search, ray_address):
    """``python -m tune.evaluate --folds 0,1 --epochs 1 --workers 1`` (its command line, exit status 0)
    on the best.json of the session's tiny search (conftest.py, shared with test_search), on the
    session's cluster (the two folds at once); returns the search's summary, the experiment folder,
    the crossfold.json it wrote and what it printed."""
    import contextlib
    import io

    import ray

    summary, exp_dir = tiny_search
    printed = io.StringIO()
    watchdog = threading.Timer(FIXTURE_BUDGET_S, _thread.interrupt_main)
    watchdog.start()
    try:
        with contextlib.redirect_stdout(printed):
            code = evaluate.main(["--dataset", "synthetic", "--config", str(exp_dir / "best.json"),
                                  "--folds", "0,1", "--epochs", "1", "--workers", "1", "--address", ray_address])
    finally:
        watchdog.cancel()
        ray.shutdown()
    assert code == 0, printed.getvalue()[-3000:]
    crossfold = json.loads((exp_dir / "crossfold.json").read_text())
    return summary, exp_dir, crossfold, printed.getvalue()


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
        assert r["test_macro_f1"] == pytest.approx(macro_f1(cm))
        assert r["best_epoch"] == 1 and r["epochs_run"] == 1  # epochs count from 1
        assert f"speaker-independent fold {r['fold']}" in r["split"]
    # the search ran on fold 0, which validates on the speakers fold 1 tests on: fold 1 took part in the choice
    assert summary["fold"] == 0 and cf["search_fold"] == 0
    assert [r["used_in_selection"] for r in cf["folds"]] == [False, True]
    assert cf["selection_folds"] == [1] and cf["n_clean"] == 1
    for key in ("test_ua", "test_wa", "test_macro_f1", "best_val_ua"):
        values = [r[key] for r in cf["folds"]]
        assert cf["mean_all"][key] == pytest.approx(statistics.fmean(values))
        assert cf["std_all"][key] == pytest.approx(statistics.stdev(values))
        assert cf["mean"][key] == pytest.approx(cf["folds"][0][key]) and cf["std"][key] is None
    # the two folds test on different speakers
    assert cf["folds"][0]["split"].split("test speakers")[1] != cf["folds"][1]["split"].split("test speakers")[1]


@pytest.mark.ray
def test_crossfold_files_name_the_protocol(done):
    _, exp_dir, cf, logs = done
    saved = json.loads((exp_dir / "crossfold.json").read_text())
    assert saved["mean"] == cf["mean"] and saved["std"] == cf["std"] and len(saved["folds"]) == 2
    assert saved["mean_all"] == cf["mean_all"] and saved["selection_folds"] == [1] and saved["n_clean"] == 1
    assert [r["used_in_selection"] for r in saved["folds"]] == [False, True]
    assert saved["protocol_name"].startswith("speaker-independent, 2 folds")
    md = (exp_dir / "crossfold.md").read_text()
    assert "speaker-independent, 2 folds" in md and "validation split" in md
    assert re.search(r"^\| 0 \|.*\n\| 1\\\* \|", md, re.M)
    mean_ua = f"{100 * cf['mean']['test_ua']:.2f} ± n/a"  # the headline: fold 0 alone
    all_ua = f"{100 * cf['mean_all']['test_ua']:.2f} ± {100 * cf['std_all']['test_ua']:.2f}"
    assert f"**{mean_ua}**" in md and "README" in md and all_ua in md
    assert "mean ± std over the 1 fold not used in selection (headline)" in md
    assert "mean ± std over all 2 folds (includes fold 1, whose test speakers were" in md
    assert "Model selection: inside each fold" in logs and "speaker-independent, 2 folds" in logs
    assert mean_ua in logs and all_ua in logs and "Used in selection (marked *" in logs


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
    n = len(summary["trials"])
    assert "HParams" in page and f"found in {n} of {n}" in page
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


def test_one_list_of_sections_renders_as_markdown_and_html():
    from tune.reporting.render import Bullets, Image, Section, Table, Text, render_html, render_markdown

    lead = [Bullets([("Corpus", "x")])]
    sections = [Section("A", [Text("x **b**"), Bullets([("k", "v"), "plain"]), Table(["h"], [["c|d"]]),
                              Image("learning_curves")]),
                Section("B", [Text("html only", only="html"), Text("md only", only="md")])]
    md = render_markdown("T", "now", lead, sections)
    assert md == ("# T\n\nGenerated now.\n\n- **Corpus**: x\n\n## A\n\nx **b**\n\n- **k**: v\n- plain\n\n"
                  "| h |\n|---|\n| c\\|d |\n\n![learning curves](learning_curves.png)\n\n## B\n\nmd only\n")
    page = render_html("T", "now", lead, sections, {"learning_curves": b"PNG"})
    body = page.split("</head><body>\n", 1)[1]
    assert body == ("<h1>T</h1>\n<p>Generated now.</p>\n<ul><li><b>Corpus</b>: x</li></ul>\n<h2>A</h2>\n"
                    "<p>x <b>b</b></p>\n<ul><li><b>k</b>: v</li><li>plain</li></ul>\n"
                    "<table><thead><tr><th>h</th></tr></thead><tbody><tr><td>c|d</td></tr></tbody></table>\n"
                    '<img src="data:image/png;base64,UE5H" alt="learning curves">\n<h2>B</h2>\n<p>html only</p>\n'
                    "</body></html>\n")

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
import html
import json
import re
import statistics
import threading
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from emohrnet.metrics import macro_f1, unweighted_accuracy, weighted_accuracy
from emohrnet.splits import make_split
from tune import crossfold_text, evaluate, report
from tune.reporting.render import _md_to_html_table

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


def test_missing_shards_are_rebuilt_with_the_search_settings(tmp_path):
    from emohrnet.shards import read_manifest
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


# --------------------------------------------------------------------------- folds used in selection (no Ray)
def _manifest(n_groups: int = 4, per_class: int = 30) -> dict:
    """A shard manifest's split inputs: 2 speakers per group, 4 classes, ``per_class`` utterances per
    speaker and class (960 utterances with the defaults: random 10% parts of two seeds always overlap)."""
    speakers = [f"s{i:02d}" for i in range(2 * n_groups)]
    utterances = [{"key": f"{s}_{c}_{j:02d}", "speaker": s, "label": c}
                  for s in speakers for c in range(4) for j in range(per_class)]
    return {"utterances": utterances, "folds": [speakers[2 * g:2 * g + 2] for g in range(n_groups)],
            "classes": ["neutral", "happy", "angry", "sad"]}


def _crossfold(manifest: dict, protocol: str, search_fold: int, test_ua: dict[int, float],
               dataset: str = "ravdess") -> dict:
    """A cross-fold result as run_crossfold assembles it, from hand-made per-fold scores (no Ray)."""
    folds = sorted(test_ua)
    used = evaluate.selection_folds(manifest, protocol, search_fold, folds)
    rows = []
    for f in folds:
        metrics = {"test_ua": test_ua[f], "test_wa": test_ua[f] + 0.01, "best_val_ua": test_ua[f] - 0.02,
                   "best_epoch": 2, "training_iteration": 4, "test_confusion": [[8, 2], [1, 9]]}
        split = make_split(manifest["utterances"], manifest["folds"], protocol, f).describe()
        rows.append(evaluate.fold_row(f, split, SimpleNamespace(metrics=metrics, error=None, path=f"/runs/{f}"),
                                       used_in_selection=f in used))
    n_total = len(manifest["folds"]) if protocol == "speaker" else None
    return {"dataset": dataset, "model": "emohrnet", "best_trial": "abc123", "protocol": protocol,
            "protocol_name": evaluate.protocol_name(protocol, folds, n_total), "protocol_note": "",
            "model_selection": evaluate.MODEL_SELECTION, "n_folds_total": n_total, "search_fold": search_fold,
            "folds": rows, "epochs": 4, "source": "best.json", **evaluate.fold_statistics(rows)}


SPEAKER_UA = {0: 0.60, 1: 0.90, 2: 0.50, 3: 0.55}
"""Fold 1 (the one the search on fold 0 validated on) scores far higher than the others."""


def test_speaker_protocol_marks_the_fold_the_search_validated_on():
    manifest = _manifest(n_groups=4)
    # fold k validates on group k+1 (mod 4): the search on fold 0 chose on fold 1's test speakers
    assert evaluate.selection_folds(manifest, "speaker", 0, [0, 1, 2, 3]) == {1}
    assert evaluate.selection_folds(manifest, "speaker", 3, [0, 1, 2, 3]) == {0}
    assert evaluate.selection_folds(manifest, "speaker", 0, [0, 2, 3]) == set()
    # two groups: validation is 10% of the other group's utterances, which the other fold tests on
    assert evaluate.selection_folds(_manifest(n_groups=2), "speaker", 0, [0, 1]) == {1}

    cf = _crossfold(manifest, "speaker", 0, SPEAKER_UA)
    assert [r["used_in_selection"] for r in cf["folds"]] == [False, True, False, False]
    assert cf["selection_folds"] == [1] and cf["n_clean"] == 3 and cf["n_completed"] == 4
    clean = [SPEAKER_UA[f] for f in (0, 2, 3)]
    assert cf["mean"]["test_ua"] == pytest.approx(statistics.fmean(clean))
    assert cf["std"]["test_ua"] == pytest.approx(statistics.stdev(clean))
    assert cf["mean"]["test_wa"] == pytest.approx(statistics.fmean(clean) + 0.01)
    assert cf["mean_all"]["test_ua"] == pytest.approx(statistics.fmean(SPEAKER_UA.values()))
    assert cf["std_all"]["test_ua"] == pytest.approx(statistics.stdev(SPEAKER_UA.values()))
    assert cf["mean"]["test_ua"] != pytest.approx(cf["mean_all"]["test_ua"])
    head = crossfold_text.headline(cf)
    assert head.startswith(f"UA {100 * statistics.fmean(clean):.2f} ± {100 * statistics.stdev(clean):.2f} %")
    assert "3 folds not used in selection" in head and "left out: fold 1" in head
    assert json.loads(json.dumps(cf))["folds"][1]["used_in_selection"] is True  # crossfold.json keeps the flag


def test_random_protocol_marks_every_seed_but_the_searchs_own():
    manifest = _manifest()
    assert evaluate.selection_folds(manifest, "random", 0, list(range(5))) == {1, 2, 3, 4}
    assert evaluate.selection_folds(manifest, "random", 2, list(range(5))) == {0, 1, 3, 4}

    cf = _crossfold(manifest, "random", 0, {0: 0.7, 1: 0.9, 2: 0.85, 3: 0.8, 4: 0.95})
    assert cf["selection_folds"] == [1, 2, 3, 4] and cf["n_clean"] == 1
    assert cf["mean"]["test_ua"] == pytest.approx(0.7) and cf["std"]["test_ua"] is None
    assert cf["mean_all"]["test_ua"] == pytest.approx(statistics.fmean([0.7, 0.9, 0.85, 0.8, 0.95]))
    text = crossfold_text.format_table(cf)
    assert "mean ± std over the 1 seed not used in selection (headline)" in text
    assert "every seed other than the search's own (seed 0)" in text and "only that seed is clean" in text

    # without the search's own seed every fold is marked: the headline is n/a, and says why
    cf = _crossfold(manifest, "random", 0, {1: 0.9, 2: 0.85})
    assert cf["n_clean"] == 0 and cf["mean"]["test_ua"] is None and cf["std"]["test_ua"] is None
    assert cf["mean_all"]["test_ua"] == pytest.approx(0.875)
    head = crossfold_text.headline(cf)
    assert head.startswith("UA n/a") and "every completed seed (1, 2) took part in choosing" in head
    for table in (crossfold_text.format_table(cf), crossfold_text.markdown_table(cf)):
        assert "no unbiased cross-fold figure and the headline is n/a" in table
        assert "include the search's own seed 0" in table
    assert "**n/a**" in crossfold_text.markdown_table(cf)


def test_tables_show_both_means_and_mark_the_selection_fold():
    cf = _crossfold(_manifest(), "speaker", 0, SPEAKER_UA)
    clean = [SPEAKER_UA[f] for f in (0, 2, 3)]
    pm_clean = f"{100 * statistics.fmean(clean):.2f} ± {100 * statistics.stdev(clean):.2f}"
    pm_all = f"{100 * statistics.fmean(SPEAKER_UA.values()):.2f} ± {100 * statistics.stdev(SPEAKER_UA.values()):.2f}"
    head_label = "mean ± std over the 3 folds not used in selection (headline)"
    all_label = ("mean ± std over all 4 folds (includes fold 1, whose test speakers were the search's validation "
                 "speakers)")

    text = crossfold_text.format_table(cf)
    assert re.search(r"^ +1\* s02,s03 ", text, re.M) and re.search(r"^ +0  s00,s01 ", text, re.M)
    assert f"{head_label} (%): val UA" in text and f"{all_label} (%): val UA" in text
    head_line = next(ln for ln in text.splitlines() if ln.startswith(head_label))
    all_line = next(ln for ln in text.splitlines() if ln.startswith(all_label))
    assert f"test UA {pm_clean};" in head_line and f"test UA {pm_all};" in all_line
    assert "* used in selection: the search chose its configuration on the validation part of fold 0" in text

    md = crossfold_text.markdown_table(cf)
    assert re.search(r"^\| 1\\\* \| s02,s03 \|", md, re.M) and re.search(r"^\| 0 \| s00,s01 \|", md, re.M)
    assert f"| **headline** | {head_label} |" in md and f"**{pm_clean}**" in md
    assert f"| all folds | {all_label} |" in md and f"| {pm_all} |" in md
    assert "\n\n\\* used in selection: " in md  # the footnote, escaped so Markdown does not make it a list item
    page = crossfold_text.format_markdown(cf)
    assert md in page and f"**{crossfold_text.headline(cf)}**" in page
    html_table = _md_to_html_table(md)
    assert "<td>1*</td>" in html_table and "<td>0</td>" in html_table and "<p>* used in selection" in html_table

    # no fold used in selection: one (headline) mean, over all folds, said so
    cf = _crossfold(_manifest(), "speaker", 0, {0: 0.6, 2: 0.5})
    assert cf["mean"] == cf["mean_all"] and cf["selection_folds"] == []
    for table in (crossfold_text.format_table(cf), crossfold_text.markdown_table(cf)):
        assert "mean ± std over all 2 folds, none used in selection (headline)" in table
        assert "all folds |" not in table and "*" not in table.replace("**", "")

    # a crossfold.json written before folds were marked still renders, and says it does not know
    old = _crossfold(_manifest(), "speaker", 0, SPEAKER_UA)
    for key in ("selection_folds", "n_clean", "mean_all", "std_all"):
        del old[key]
    for r in old["folds"]:
        del r["used_in_selection"]
    for table in (crossfold_text.format_table(old), crossfold_text.markdown_table(old)):
        assert "is not recorded in this result" in table


def test_report_sets_ours_beside_the_fields_speaker_independent_figures(tmp_path):
    cf = _crossfold(_manifest(), "speaker", 0, SPEAKER_UA)
    header, rows = report.paper_table({"dataset": "ravdess", "protocol": "speaker", "fold": 0, "test_ua": 0.6}, cf)
    ravdess = dict(zip(header, next(r for r in rows if r[0] == "RAVDESS"), strict=True))
    assert ravdess["EmoBox, frozen Whisper-large-v3, UA (%) [speaker-independent]"] == "75.32"
    assert ravdess["TIM-Net, corrected (%) [random split]"] == "90.04"
    assert ravdess["Lee & Nadeem paper, accuracy (%) [random split of feature rows]"] == "99.23"
    ours = ravdess["ours: cross-fold test UA (%) [headline: folds not used in selection]"]
    clean = [SPEAKER_UA[f] for f in (0, 2, 3)]
    assert ours.startswith(f"{100 * statistics.fmean(clean):.2f} ± ") and "not used in selection" in ours
    assert {r[0]: r[3] for r in rows if r[0] in ("IEMOCAP", "EMOVO")} == {"IEMOCAP": "73.54", "EMOVO": "57.82"}

    exp_dir = tmp_path / "exp"
    _fake_experiment(exp_dir)  # a random-protocol search on seed 0
    cf = _crossfold(_manifest(), "random", 0, {0: 0.7, 1: 0.9, 2: 0.85}, dataset="synthetic")
    (exp_dir / "crossfold.json").write_text(json.dumps(cf))
    assert report.main([str(exp_dir)]) == 0
    md = (exp_dir / "report.md").read_text()
    page = (exp_dir / "report.html").read_text()
    published = md.split("## Published numbers beside ours", 1)[1].split("\n## ", 1)[0]
    for figure in ("75.32", "73.54", "57.82", "90.04", "[speaker-independent]", "[random split]"):
        assert figure in published, figure
    sentence = ("Lee & Nadeem's published notebooks split feature rows at random (368,640 rows for the 1440 "
                "RAVDESS recordings), so pieces of one recording sit in both training and test")
    assert sentence in published and html.escape(sentence) in page
    assert "EmoBox" in published and "TIM-Net" in published
    # our cross-fold figure there is the clean headline (seed 0 alone), not the all-seeds mean
    assert "| 70.00 ± n/a, mean ± std over the 1 seed not used in selection (headline);" in published
    assert f"{100 * statistics.fmean([0.7, 0.9, 0.85]):.2f}" not in published
    assert "<td>1*</td>" in page and "mean ± std over all 3 seeds (includes seeds 1, 2," in page


def test_run_crossfold_marks_the_selection_fold_in_its_files(tmp_path, monkeypatch):
    """run_crossfold's summary and files, with Ray Tune's grid replaced by canned fold results (no Ray)."""
    import ray
    from ray import tune

    from tune.search import parse_args

    exp_dir = tmp_path / "exp"
    exp_dir.mkdir()
    search_args = parse_args(["--n-mels", "24", "--corpus-option", "n_speakers=8", "--corpus-option", "n_per_class=2"])
    (exp_dir / "search_args.json").write_text(json.dumps(vars(search_args)))
    shards = evaluate.ensure_shards({}, "emohrnet", exp_dir, log=lambda *a: None)  # built from search_args.json
    best = {"dataset": "synthetic", "protocol": "speaker", "fold": 2, "best_trial": "abc123", "shard_dirs": shards,
            "best_config": {"model": "emohrnet", "epochs": 3, "fold": 2, "lr": 1e-3}}
    (exp_dir / "best.json").write_text(json.dumps(best))
    test_ua = {0: 0.50, 1: 0.60, 2: 0.55, 3: 0.95}  # the search on fold 2 validated on fold 3's test speakers

    class Grid:
        def __init__(self, trainable, param_space, **_):
            self.folds = param_space["fold"]["grid_search"]

        def fit(self):
            return [SimpleNamespace(config={"fold": f}, error=None, path=str(tmp_path / f"fold_{f}"),
                                    metrics={"test_ua": test_ua[f], "test_wa": test_ua[f], "best_val_ua": 0.5,
                                             "best_epoch": 1, "training_iteration": 3,
                                             "test_confusion": [[3, 1], [1, 3]]}) for f in self.folds]

    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    monkeypatch.setattr(tune, "with_parameters", lambda fn, **kw: fn)
    monkeypatch.setattr(tune, "with_resources", lambda fn, res: fn)
    monkeypatch.setattr(tune, "Tuner", Grid)
    logs: list[str] = []
    args = evaluate.parse_args(["--dataset", "synthetic", "--config", str(exp_dir / "best.json"), "--folds", "all"])
    cf = evaluate.run_crossfold(args, log=lambda *a: logs.append(" ".join(map(str, a))))

    saved = json.loads((exp_dir / "crossfold.json").read_text())
    assert saved["search_fold"] == 2 and saved["selection_folds"] == [3] and saved["n_clean"] == 3
    assert [r["used_in_selection"] for r in saved["folds"]] == [False, False, False, True]
    assert saved["mean"]["test_ua"] == pytest.approx(statistics.fmean([0.50, 0.60, 0.55]))
    assert saved["mean_all"]["test_ua"] == pytest.approx(statistics.fmean(test_ua.values()))
    assert saved["mean"] == cf["mean"] and saved["std_all"] == cf["std_all"]
    md = (exp_dir / "crossfold.md").read_text()
    assert re.search(r"^\| 3\\\* \|", md, re.M) and "mean ± std over the 3 folds not used in selection" in md
    assert "Used in selection (marked *, left out of the headline mean): 3" in "\n".join(logs)


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
        assert r["best_epoch"] == 0 and r["epochs_run"] == 1
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

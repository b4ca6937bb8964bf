"""Several cross-fold runs on one experiment (no Ray: Ray Tune's grid is replaced by canned fold results,
fixtures.canned_tuner): each run keeps its own result in its own folder, a run on other folds of the same
configuration is merged into the experiment's crossfold.json (and says so), and a run that would replace
an earlier result (the same folds, another configuration, an existing --name) is refused before Ray
starts unless --force; with --force the earlier result of another configuration stays in its own run's
folder. Before this, a second run silently replaced the first run's crossfold.json and crossfold.md."""

from __future__ import annotations

import json
import statistics

import pytest
from fixtures import canned_tuner

from tune import evaluate

SCORES = {0: 0.50, 1: 0.60, 2: 0.70, 3: 0.80}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """The synthetic corpus's shards (8 speakers, 4 speaker folds) and a search's options for them."""
    from tune.search import parse_args

    folder = tmp_path_factory.mktemp("cf_shards")
    options = parse_args(["--n-mels", "16", "--corpus-option", "n_speakers=8", "--corpus-option", "n_per_class=2"])
    (folder / "search_args.json").write_text(json.dumps(vars(options)))
    return folder, evaluate.ensure_shards({}, "emohrnet", folder, log=lambda *a: None)


@pytest.fixture
def experiment(tmp_path, shards, monkeypatch):
    """A finished search's folder (best.json on fold 0 of the speaker protocol) and the list of Tuner runs."""
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "search_args.json").write_text((shards[0] / "search_args.json").read_text())
    (exp / "best.json").write_text(json.dumps({
        "dataset": "synthetic", "protocol": "speaker", "fold": 0, "best_trial": "abc123", "shard_dirs": shards[1],
        "best_config": {"model": "emohrnet", "epochs": 3, "lr": 1e-3}}))
    return exp, canned_tuner(monkeypatch, SCORES, tmp_path)


def _run(exp, *argv, capsys=None):
    code = evaluate.main(["--dataset", "synthetic", "--config", str(exp / "best.json"), *argv])
    return code, (capsys.readouterr() if capsys else None)


def test_a_run_on_other_folds_is_merged_and_each_run_keeps_its_own(experiment, capsys):
    exp, runs = experiment
    assert _run(exp, "--folds", "0,1", "--name", "first")[0] == 0
    first_md = (exp / "crossfold.md").read_text()
    code, out = _run(exp, "--folds", "2,3", "--name", "second", capsys=capsys)
    assert code == 0 and len(runs) == 2
    assert "crossfold.json: this run's folds 2,3 merged with folds 0,1 of the earlier run(s) first" in out.out

    merged = json.loads((exp / "crossfold.json").read_text())
    assert [r["fold"] for r in merged["folds"]] == [0, 1, 2, 3] and merged["n_completed"] == 4
    assert [(r["tune_dir"].rsplit("/", 1)[-1], r["folds"]) for r in merged["runs"]] == [("first", [0, 1]),
                                                                                          ("second", [2, 3])]
    assert merged["selection_folds"] == [1]  # fold 1 (the search validated on its speakers) is still marked
    assert merged["mean"]["test_ua"] == pytest.approx(statistics.fmean([0.5, 0.7, 0.8]))
    assert merged["protocol_name"] == "speaker-independent, 4 folds"
    assert "Folds merged from 2 cross-fold runs of this configuration: `first` (folds 0, 1); `second` (folds 2, 3)" \
        in (exp / "crossfold.md").read_text()
    # each run's own result, in its own folder: the first one's as it was written
    own = {name: json.loads((exp / name / "crossfold.json").read_text()) for name in ("first", "second")}
    assert [[r["fold"] for r in own[name]["folds"]] for name in ("first", "second")] == [[0, 1], [2, 3]]
    assert (exp / "first" / "crossfold.md").read_text() == first_md


def test_a_run_that_would_replace_results_is_refused_before_ray_unless_forced(experiment, capsys):
    exp, runs = experiment
    assert _run(exp, "--folds", "0,1", "--name", "first")[0] == 0
    before = (exp / "crossfold.json").read_bytes(), (exp / "crossfold.md").read_bytes()
    capsys.readouterr()
    probes = [
        (["--folds", "1,2", "--name", "again"],
         f"{exp / 'crossfold.json'}: fold(s) 1 already have results (run first); pass --folds with other folds to add "
         "them, or --force"),
        (["--folds", "2", "--name", "longer", "--epochs", "5"], f"{exp / 'crossfold.json'} holds the cross-fold result "
         "of another configuration (config.epochs 3 there, 5 here; epochs 3 there, 5 here); it is kept: pass --force"),
        (["--folds", "2", "--name", "first"], f"--name first: {exp / 'first'} already holds a cross-fold run"),
    ]
    for argv, message in probes:
        code, out = _run(exp, *argv, capsys=capsys)
        assert code == 2 and out.err.count("\n") == 1 and message in out.err, out.err
    assert len(runs) == 1  # no Tuner was made for any of them
    assert ((exp / "crossfold.json").read_bytes(), (exp / "crossfold.md").read_bytes()) == before

    # --force: fold 1 is run again and replaced, fold 0 of the first run stays
    assert _run(exp, "--folds", "1,2", "--name", "again", "--force")[0] == 0
    merged = json.loads((exp / "crossfold.json").read_text())
    assert [(r["tune_dir"].rsplit("/", 1)[-1], r["folds"]) for r in merged["runs"]] == [("first", [0]),
                                                                                          ("again", [1, 2])]
    assert [r["path"].rsplit("/", 1)[-1] for r in merged["folds"]] == ["fold_0", "fold_1", "fold_2"]
    # --force with another configuration: the experiment's result is this run's; the earlier one stays in its folder
    merged_before = (exp / "crossfold.json").read_text()
    (exp / "again" / "crossfold.json").unlink()  # as a result written before runs kept their own copy
    capsys.readouterr()
    code, out = _run(exp, "--folds", "3", "--name", "longer", "--epochs", "5", "--force", capsys=capsys)
    assert code == 0 and "the earlier result (another configuration) is replaced (--force)" in out.out
    now = json.loads((exp / "crossfold.json").read_text())
    assert now["epochs"] == 5 and [r["fold"] for r in now["folds"]] == [3]
    assert json.loads((exp / "again" / "crossfold.json").read_text()) == json.loads(merged_before)

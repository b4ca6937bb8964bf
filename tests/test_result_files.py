"""best.json and crossfold.json as typed objects (tune.results): files of older versions read with their
missing fields at their defaults, keys this version does not know kept and written back, and a file that is
not a result refused with what it lacks."""

from __future__ import annotations

import json

import pytest

from tune.experiment import Experiment
from tune.results import CrossfoldResult, FoldRow, Summary, TrialRow

HANDMADE = {"dataset": "synthetic", "protocol": "speaker", "best_config": {"model": "emohrnet", "fold": 2}}


def test_an_older_or_handmade_summary_reads_with_defaults_and_keeps_unknown_keys():
    summary = Summary.from_dict({**HANDMADE, "trials": [{"trial_id": 7, "status": "completed", "best_val_ua": 0.5,
                                                          "new_field": [1]}], "added_later": {"x": 1}})
    assert summary.search_fold == 2 and summary.chosen_model == "emohrnet" and summary.fold is None
    assert summary.trial("7").best_val_ua == 0.5 and summary.trial("7").scored
    assert summary.deviations_from_paper == [] and summary.shard_dirs == {}
    out = summary.to_dict()
    assert out["added_later"] == {"x": 1} and out["trials"][0]["new_field"] == [1]  # nothing lost on rewrite
    with pytest.raises(KeyError, match="no trial 8"):
        summary.trial("8")


NOT_SUMMARIES = {"no protocol, best_config": {"dataset": "synthetic"},
                 "no best_config as an object": {**HANDMADE, "best_config": [1]},
                 "no fold": {**HANDMADE, "best_config": {"model": "emohrnet"}},
                 "no best_config.model": {**HANDMADE, "best_config": {"fold": 0}}}


@pytest.mark.parametrize("missing", NOT_SUMMARIES)
def test_a_file_that_is_no_summary_is_refused_naming_what_it_lacks(tmp_path, missing):
    data = NOT_SUMMARIES[missing]
    with pytest.raises(ValueError, match=missing):
        Summary.from_dict(data)
    (tmp_path / "best.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"{tmp_path / 'best.json'}: not a search summary \\({missing}"):
        Experiment(tmp_path).summary()


def test_trial_rows_keep_their_shape():
    error = TrialRow(trial_id="a", status="error", error="no metrics")
    assert error.to_dict() == {"trial_id": "a", "status": "error", "error": "no metrics"} and not error.scored
    row = TrialRow(trial_id="b", status="completed", best_val_ua=0.4, best_epoch=3)
    assert "test_wa" not in row.to_dict() and row.to_dict()["test_ua"] is None  # only the chosen row has them
    assert TrialRow.from_dict(row.to_dict()) == row


def test_a_crossfold_result_of_an_older_version_reads_and_says_what_it_does_not_record(tmp_path):
    old = {"dataset": "ravdess", "model": "emohrnet", "n_completed": 2, "tune_dir": "/runs/cf",
           "folds": [{"fold": 0, "status": "completed", "test_ua": 0.5}, {"fold": 1, "status": "error"}]}
    result = CrossfoldResult.from_dict(old)
    assert result.marked is None and result.clean_count == 2  # no selection_folds: not recorded
    assert result.earlier_runs() == [{"tune_dir": "/runs/cf", "folds": [0, 1]}]
    assert [r.completed for r in result.folds] == [True, False]
    assert CrossfoldResult.from_dict(result.to_dict()) == result
    with pytest.raises(ValueError, match="no list of folds"):
        CrossfoldResult.from_dict({"dataset": "ravdess"})
    (tmp_path / "crossfold.json").write_text("[]")
    with pytest.raises(ValueError, match="crossfold.json: not a cross-fold result"):
        Experiment(tmp_path).crossfold()
    marked = CrossfoldResult(folds=[FoldRow(fold=0, status="completed"), FoldRow(fold=1, status="completed",
                                                                                 used_in_selection=True)],
                             selection_folds=[1], n_completed=2)
    assert marked.marked == [1] and marked.clean_count == 1

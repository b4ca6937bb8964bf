"""The accuracy benchmark's summary: fold means as fractions, the fold the recipe was chosen on
left out of the clean mean, and the README table naming both."""

from __future__ import annotations

import statistics

import pytest

from benchmarks.accuracy import RECIPES, markdown, parse_args, summarize


def _row(fold, ua, used=False, status="completed"):
    shift = (lambda d: None) if ua is None else (lambda d: ua + d)
    return {"fold": fold, "status": status, "used_in_selection": used, "test_ua": ua, "test_wa": shift(0.01),
            "test_macro_f1": shift(-0.01), "best_val_ua": shift(0.05)}


def test_means_over_all_folds_and_without_the_selection_fold():
    uas = [0.52, 0.48, 0.484, 0.516, 0.559, 0.5]
    rows = [_row(f, ua, used=(f == 1)) for f, ua in enumerate(uas)] + [_row(6, None, status="error")]
    res = summarize(rows)
    assert res["n_completed"] == 6 and res["selection_folds"] == [1] and res["n_clean"] == 5
    assert res["test_ua_mean"] == pytest.approx(statistics.fmean(uas))
    assert res["test_ua_std"] == pytest.approx(statistics.stdev(uas))
    clean = [ua for f, ua in enumerate(uas) if f != 1]
    assert res["test_ua_mean_clean"] == pytest.approx(statistics.fmean(clean))
    assert res["test_ua_std_clean"] == pytest.approx(statistics.stdev(clean))
    table = markdown({"results": {"emohrnet": {"speaker": res, "random": summarize([_row(0, 0.7)])}}})
    assert "48.0*" in table and "speaker, without fold 1*" in table and "**51.0 ± 2.9**" in table
    assert "seed 0: 70.0" in table and "fold 0's validation actors" in table


def test_recipes_and_arguments():
    assert RECIPES["emohrnet"]["selection_fold"] == 0 and RECIPES["cnn1d_attention"]["selection_fold"] is None
    assert RECIPES["emohrnet"]["train"]["batch_size"] % 2 == 0  # divides by the 2 default workers
    args = parse_args(["--folds", "0,2", "--models", "cnn1d_attention"])
    assert args.folds == [0, 2] and args.models == ["cnn1d_attention"]
    for bad in (["--folds", "6"], ["--models", "wav2vec"], ["--workers", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)

"""The accuracy benchmark's summary: fold means as fractions, the fold the recipe was chosen on
left out of the clean mean, and the README table naming both."""

from __future__ import annotations

import statistics

import pytest

from benchmarks.accuracy import RECIPES, markdown, parse_args, random_split_overlap, summarize
from tune.results import FoldRow


def _row(fold, ua, used=False, status="completed"):
    shift = (lambda d: None) if ua is None else (lambda d: ua + d)
    return FoldRow(fold=fold, status=status, used_in_selection=used, test_ua=ua, test_wa=shift(0.01),
                   test_macro_f1=shift(-0.01), best_val_ua=shift(0.05))


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
    assert RECIPES["emohrnet"]["train"]["batch_size"] % 2 == 0  # divides by 2 workers too
    assert parse_args([]).workers == 1  # the CPU layout: 1-worker runs side by side
    args = parse_args(["--folds", "0,2", "--models", "cnn1d_attention"])
    assert args.folds == [0, 2] and args.models == ["cnn1d_attention"]
    for bad in (["--folds", "6"], ["--models", "wav2vec"], ["--workers", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_the_random_rows_note_counts_the_selection_actors_in_its_test_part():
    """Counted independently: scikit-learn's split of the keys, the actor read from each key."""
    from sklearn.model_selection import train_test_split

    from emohrnet.shards.manifest import Manifest

    classes = ["neutral", "happy", "sad", "angry"]
    utterances = [{"key": f"u-{c}-{i:02d}-{a:02d}", "speaker": f"{a:02d}", "label": c, "session": None}
                  for a in range(1, 25) for c in classes for i in range(3)]
    folds = [[f"{a:02d}" for a in range(g, g + 4)] for g in range(1, 25, 4)]
    manifest = Manifest(dataset="ravdess", classes=classes, folds=folds, utterances=utterances)
    labels = [u["label"] for u in utterances]
    _, test = train_test_split([u["key"] for u in utterances], labels, test_size=0.1, stratify=labels,
                               random_state=0)[:2]
    expected = sum(k.endswith(("-05", "-06", "-07", "-08")) for k in test)
    assert 0 < expected < len(test)
    note = random_split_overlap(manifest, 0)
    assert note.endswith(f"({', '.join(manifest.split('speaker', 0).speakers['val'])}); {expected} of this "
                         f"split's {len(test)} test utterances are theirs"), note
    assert "05, 06, 07, 08" in note
    assert random_split_overlap(manifest, None) == "the recipe was not chosen on any validation part"
    table = markdown({"results": {"emohrnet": {"random": {**summarize([_row(0, 0.7)]), "recipe_chosen_on": note}}}})
    assert note in table


def test_the_precision_a_run_used_is_read_from_its_checkpoint(tmp_path):
    """The report says what each run trained in (its checkpoint's resolved amp), not the policy: on a CPU without
    AVX-512 BF16 the policy 'auto' trains in float32, and a report saying 'bf16' would be wrong."""
    from types import SimpleNamespace

    import pandas as pd
    import torch

    from benchmarks.accuracy import precisions, run_precision

    for amp, shown in (("off", "float32"), ("bf16", "bf16 autocast")):
        folder = tmp_path / amp
        folder.mkdir()
        torch.save({"speed": {"device": "cpu", "amp": amp}}, folder / "checkpoint.pt")
        result = SimpleNamespace(metrics_dataframe=pd.DataFrame([{"epoch": 1, "checkpoint_path": str(folder)}]))
        assert run_precision(result) == shown
    assert run_precision(SimpleNamespace(metrics_dataframe=pd.DataFrame([{"epoch": 1}]))) is None
    assert precisions([{"precision": "float32"}, {"precision": None}, {"precision": "float32"}]) == ["float32"]

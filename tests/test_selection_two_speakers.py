"""Model selection when validation UA saturates: the two-speaker protocol (TESS's), where validation
is 10% of the training speaker's own utterances and reaches its ceiling within a few epochs.

A real one-trial search (Ray Tune + Ray Train) of the 1D CNN on a two-speaker synthetic corpus; the
epoch it keeps must be the one the selection rule picks from its per-epoch validation figures:
among the epochs tied on the best validation UA, the lowest validation loss, not the first."""

from __future__ import annotations

import pandas as pd
import pytest

from emohrnet.inference.metrics import is_better
from tune.search import parse_args, run_search

EPOCHS = 8


@pytest.mark.ray
def test_saturated_validation_keeps_the_lowest_loss_epoch(tmp_path, ray_address):
    import ray

    args = parse_args(["--corpus-option", "n_speakers=2", "--corpus-option", "n_per_class=12", "--model",
                       "cnn1d_attention", "--num-samples", "1", "--epochs", str(EPOCHS), "--workers", "1",
                       "--batch-size", "16", "--segment-seconds", "1.0", "--augment-copies", "1",
                       "--storage-path", str(tmp_path), "--name", "two", "--address", ray_address])
    try:
        summary = run_search(args, log=lambda *a: None).to_dict()
    finally:
        ray.shutdown()
    assert "validation is 10% of the training speakers' utterances" in summary["split"]
    trial = summary["trials"][0]
    df = pd.read_csv(tmp_path / "two" / f"trial_{trial['trial_id']}" / "progress.csv")
    assert len(df) == EPOCHS
    top = df[df["val_ua"] >= df["val_ua"].max() - 1e-9]
    assert len(top) >= 2, "validation UA did not saturate: the fixture no longer tests the tie-break"
    expected = top.loc[top["val_loss"].idxmin()]  # the rule, by pandas
    assert summary["best_epoch"] == trial["best_epoch"] == int(expected["epoch"])
    assert summary["best_val_loss"] == pytest.approx(float(expected["val_loss"]))
    first = int(top["epoch"].iloc[0])
    if float(top["val_loss"].iloc[0]) > float(expected["val_loss"]):
        assert summary["best_epoch"] != first  # not the first saturated epoch
    best = None
    for row in df.itertuples():  # and the library's rule agrees with pandas's
        if best is None or is_better(row.val_ua, row.val_loss, best.val_ua, best.val_loss):
            best = row
    assert best.epoch == summary["best_epoch"]

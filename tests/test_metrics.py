"""UA, WA and macro-F1 against scikit-learn's balanced accuracy, accuracy and macro-averaged F1."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from emohrnet.inference.metrics import (
    confusion_matrix,
    macro_f1,
    per_class_recall,
    unweighted_accuracy,
    weighted_accuracy,
)


@pytest.mark.parametrize("seed", range(5))
def test_ua_wa_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    n_classes = 6
    y = rng.integers(0, n_classes, 200)
    # imbalanced and partly right, so UA and WA differ
    y[:80] = 0
    p = np.where(rng.random(200) < 0.6, y, rng.integers(0, n_classes, 200))
    cm = confusion_matrix(torch.from_numpy(y), torch.from_numpy(p), n_classes)
    assert unweighted_accuracy(cm) == pytest.approx(balanced_accuracy_score(y, p))
    assert weighted_accuracy(cm) == pytest.approx(accuracy_score(y, p))
    assert unweighted_accuracy(cm) != pytest.approx(weighted_accuracy(cm))


def test_absent_class_is_left_out_of_ua_like_sklearn():
    y = np.array([0, 0, 1, 1])
    p = np.array([0, 2, 1, 1])  # class 2 predicted but never the reference
    cm = confusion_matrix(torch.from_numpy(y), torch.from_numpy(p), 3)
    with pytest.warns(UserWarning):
        expected = balanced_accuracy_score(y, p)
    assert unweighted_accuracy(cm) == pytest.approx(expected) == pytest.approx(0.75)
    assert math.isnan(per_class_recall(cm)[2])


def test_confusion_matrix_layout_and_errors():
    cm = confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([1, 1, 0]), 2)
    assert cm.tolist() == [[0, 1], [1, 1]]  # rows: reference, columns: predicted
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(torch.tensor([0, 3]), torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match="differ"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]), 2)
    assert math.isnan(unweighted_accuracy(torch.zeros(2, 2, dtype=torch.long)))


def test_selection_rule_breaks_a_val_ua_tie_by_the_lower_loss():
    from emohrnet.inference.metrics import is_better, selection_key

    inf = float("inf")
    # epochs (val UA, val loss): UA saturates at 1.0 from epoch 1; the loss goes on falling
    epochs = [(0.5, 1.2), (1.0, 0.40), (1.0, 0.10), (1.0, 0.25), (0.75, 0.05)]
    best, best_epoch = (-inf, inf), -1
    for i, (ua, loss) in enumerate(epochs):
        if is_better(ua, loss, *best):
            best, best_epoch = (ua, loss), i
    assert best_epoch == 2  # not epoch 1, the first saturated one
    assert not is_better(1.0, 0.10, 1.0, 0.10)  # a full tie keeps the earlier epoch
    assert is_better(0.5 + 1e-6, 9.0, 0.5, 0.1)  # a higher UA wins whatever the loss
    assert not is_better(float("nan"), 0.0, -inf, inf)
    # rounding noise in UA is a tie, decided by the loss
    assert is_better(0.1 + 0.2, 0.3, 0.3, 0.4) and not is_better(0.3, 0.5, 0.1 + 0.2, 0.4)
    trials = [{"ua": 0.8, "loss": 0.9}, {"ua": 0.8, "loss": 0.5}, {"ua": 0.7, "loss": 0.1}]
    assert max(trials, key=lambda t: selection_key(t["ua"], t["loss"])) is trials[1]


def test_macro_f1_matches_sklearn():
    rng = np.random.default_rng(0)
    for _ in range(200):
        c = int(rng.integers(2, 8))
        n = int(rng.integers(1, 40))
        y = rng.integers(0, c, n)
        # skewed predictions: some classes never predicted, some predicted but absent from y
        p = np.where(rng.random(n) < 0.5, y, rng.integers(0, c, n))
        cm = confusion_matrix(torch.as_tensor(y), torch.as_tensor(p), c)
        assert macro_f1(cm) == pytest.approx(f1_score(y, p, average="macro"), abs=1e-12)
        assert macro_f1(cm.tolist()) == pytest.approx(f1_score(y, p, average="macro"), abs=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_macro_f1_edge_cases():
    # class 2 is predicted but never in the reference (F1 0, counted); class 3 is absent from both (not counted)
    y, p = [0, 0, 1, 1], [0, 2, 1, 1]
    cm = confusion_matrix(torch.tensor(y), torch.tensor(p), 4)
    assert macro_f1(cm) == pytest.approx(f1_score(y, p, average="macro"))
    assert macro_f1(cm) == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)
    assert macro_f1([[3, 0], [0, 5]]) == 1.0
    assert math.isnan(macro_f1([[0, 0], [0, 0]]))
    with pytest.raises(ValueError, match="square"):
        macro_f1([[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match="negative"):
        macro_f1([[1, -1], [0, 1]])

"""UA and WA against scikit-learn's balanced accuracy and accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from emohrnet.metrics import confusion_matrix, per_class_recall, unweighted_accuracy, weighted_accuracy


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

"""The classical reference a deep model must beat: openSMILE functionals + an SVM, on emohrnet's own
speaker-independent RAVDESS folds.

Features: openSMILE's ComParE_2016 functionals (Schuller et al. 2016; 6,373 per utterance) of each whole
utterance, through the ``opensmile`` package (``pip install -e ".[classical]"``), computed once and cached.
Classifier: scikit-learn's ``SVC`` after standardisation (fitted on the training actors only); ``C`` and the
kernel are chosen on each fold's validation actors by UA, then the chosen SVM, refitted on the training
actors, is scored once on the fold's test actors. The folds are the shards' own (:meth:`Manifest.split`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

GRID = [{"kernel": "linear", "C": c} for c in (1e-3, 1e-2, 1e-1)] + \
       [{"kernel": "rbf", "C": c, "gamma": "scale"} for c in (1.0, 10.0, 100.0)]
"""The SVM settings each fold chooses from on its validation actors."""


def compare_features(paths: list[str], cache: Path, log=print) -> np.ndarray:
    """ComParE_2016 functionals ``(len(paths), 6373)`` float32 of the audio files, cached in ``cache``
    (``.npz`` keyed by the paths; recomputed when the list differs).

    Raises:
        ImportError: ``opensmile`` is not installed (``pip install -e ".[classical]"``).
    """
    if cache.is_file():
        data = np.load(cache, allow_pickle=False)
        if list(data["paths"]) == paths:
            return data["features"]
    import opensmile

    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.ComParE_2016,
                            feature_level=opensmile.FeatureLevel.Functionals)
    rows = []
    for i, path in enumerate(paths):
        rows.append(smile.process_file(path).to_numpy(dtype=np.float32)[0])
        if (i + 1) % 200 == 0:
            log(f"ComParE functionals: {i + 1}/{len(paths)} files")
    features = np.nan_to_num(np.stack(rows))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, paths=np.array(paths), features=features)
    return features


def compare_svm_folds(data_root: Path, folds: list[int], cache: Path, log=print) -> dict[str, Any]:
    """Per fold: the SVM setting chosen on validation UA, its validation UA and its test UA, WA (fractions).

    Returns:
        ``{"features", "classifier", "folds": [{"fold", "chosen", "val_ua", "test_ua", "test_wa",
        "used_in_selection"}]}``; ``used_in_selection`` is always false (nothing here was chosen on another
        fold's validation actors).
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from emohrnet.config.experiment import DataConfig
    from emohrnet.corpora import get_corpus
    from emohrnet.shards import build_shards

    data = DataConfig(dataset="ravdess", data_root=str(data_root), n_mels=64, build_workers=2)
    manifest = build_shards(**data.build_arguments("logmel"), progress=False, log=log).manifest
    utterances = {u.key: u for u in get_corpus("ravdess", data_root).scan().utterances}
    keys = sorted(k for k in utterances if any(r["key"] == k for r in manifest.utterances))
    x = compare_features([str(utterances[k].path) for k in keys], cache, log)
    index = {k: i for i, k in enumerate(keys)}
    label = {r["key"]: manifest.classes.index(r["label"]) for r in manifest.utterances}
    rows = []
    for fold in folds:
        split = manifest.split("speaker", fold)
        part = {name: ([index[k] for k in getattr(split, name)], [label[k] for k in getattr(split, name)])
                for name in ("train", "val", "test")}
        best = None
        for setting in GRID:
            model = make_pipeline(StandardScaler(), SVC(**setting, class_weight="balanced"))
            model.fit(x[part["train"][0]], part["train"][1])
            ua = balanced_accuracy_score(part["val"][1], model.predict(x[part["val"][0]]))
            if best is None or ua > best[0]:
                best = (ua, setting, model)
        predicted = best[2].predict(x[part["test"][0]])
        rows.append({"fold": fold, "chosen": best[1], "val_ua": float(best[0]),
                     "test_ua": float(balanced_accuracy_score(part["test"][1], predicted)),
                     "test_wa": float(accuracy_score(part["test"][1], predicted)), "used_in_selection": False})
        log(f"classical fold {fold}: {best[1]} val UA {best[0]:.3f} test UA {rows[-1]['test_ua']:.3f}")
    return {"features": "openSMILE ComParE_2016 functionals (6,373 per utterance)",
            "classifier": "scikit-learn SVC (class_weight balanced) after StandardScaler; C and kernel chosen on "
                          "each fold's validation actors by UA from " + repr(GRID), "folds": rows}

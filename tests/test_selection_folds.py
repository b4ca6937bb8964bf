"""The cross-fold folds that took part in choosing the configuration (no Ray): which fold the search
validated on (speaker protocol) or every seed but the search's own (random protocol) is marked, the
tables show both means, the report sets the clean headline beside the field's figures, and
``run_crossfold`` writes the marks into its files."""

from __future__ import annotations

import html
import json
import re
import statistics
from types import SimpleNamespace

import pytest
from fixtures import canned_tuner, fake_experiment

from emohrnet.shards import Manifest
from tune import crossfold_text, evaluate, report
from tune.reporting.render import _md_to_html_table
from tune.results import CrossfoldResult, Summary


# --------------------------------------------------------------------------- folds used in selection (no Ray)
def _manifest(n_groups: int = 4, per_class: int = 30) -> Manifest:
    """A shard manifest's split inputs: 2 speakers per group, 4 classes, ``per_class`` utterances per
    speaker and class (960 utterances with the defaults: random 10% parts of two seeds always overlap)."""
    speakers = [f"s{i:02d}" for i in range(2 * n_groups)]
    utterances = [{"key": f"{s}_{c}_{j:02d}", "speaker": s, "label": c}
                  for s in speakers for c in range(4) for j in range(per_class)]
    folds = [speakers[2 * g:2 * g + 2] for g in range(n_groups)]
    return Manifest(dataset="ravdess", utterances=utterances, folds=folds, classes=["neutral", "happy", "angry", "sad"])


def _crossfold(manifest: Manifest, protocol: str, search_fold: int, test_ua: dict[int, float],
               dataset: str = "ravdess") -> dict:
    """A cross-fold result as run_crossfold assembles it, from hand-made per-fold scores (no Ray)."""
    folds = sorted(test_ua)
    used = evaluate.selection_folds(manifest, protocol, search_fold, folds)
    rows = []
    for f in folds:
        metrics = {"test_ua": test_ua[f], "test_wa": test_ua[f] + 0.01, "best_val_ua": test_ua[f] - 0.02,
                   "best_epoch": 2, "training_iteration": 4, "test_confusion": [[8, 2], [1, 9]]}
        split = manifest.split(protocol, f).describe()
        rows.append(evaluate.fold_row(f, split, SimpleNamespace(metrics=metrics, error=None, path=f"/runs/{f}"),
                                       used_in_selection=f in used))
    n_total = len(manifest.folds) if protocol == "speaker" else None
    return {"dataset": dataset, "model": "emohrnet", "best_trial": "abc123", "protocol": protocol,
            "protocol_name": evaluate.protocol_name(protocol, folds, n_total), "protocol_note": "",
            "model_selection": evaluate.MODEL_SELECTION, "n_folds_total": n_total, "search_fold": search_fold,
            "folds": [r.to_dict() for r in rows], "epochs": 4, "source": "best.json", **evaluate.fold_statistics(rows)}


def _typed(cf: dict) -> CrossfoldResult:
    """A crossfold.json's content as the text functions take it."""
    return CrossfoldResult.from_dict(cf)


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
    head = crossfold_text.headline(_typed(cf))
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
    text = crossfold_text.format_table(_typed(cf))
    assert "mean ± std over the 1 seed not used in selection (headline)" in text
    assert "every seed other than the search's own (seed 0)" in text and "only that seed is clean" in text

    # without the search's own seed every fold is marked: the headline is n/a, and says why
    cf = _crossfold(manifest, "random", 0, {1: 0.9, 2: 0.85})
    assert cf["n_clean"] == 0 and cf["mean"]["test_ua"] is None and cf["std"]["test_ua"] is None
    assert cf["mean_all"]["test_ua"] == pytest.approx(0.875)
    head = crossfold_text.headline(_typed(cf))
    assert head.startswith("UA n/a") and "every completed seed (1, 2) took part in choosing" in head
    for table in (crossfold_text.format_table(_typed(cf)), crossfold_text.markdown_table(_typed(cf))):
        assert "no unbiased cross-fold figure and the headline is n/a" in table
        assert "include the search's own seed 0" in table
    assert "**n/a**" in crossfold_text.markdown_table(_typed(cf))


def test_tables_show_both_means_and_mark_the_selection_fold():
    cf = _crossfold(_manifest(), "speaker", 0, SPEAKER_UA)
    clean = [SPEAKER_UA[f] for f in (0, 2, 3)]
    pm_clean = f"{100 * statistics.fmean(clean):.2f} ± {100 * statistics.stdev(clean):.2f}"
    pm_all = f"{100 * statistics.fmean(SPEAKER_UA.values()):.2f} ± {100 * statistics.stdev(SPEAKER_UA.values()):.2f}"
    head_label = "mean ± std over the 3 folds not used in selection (headline)"
    all_label = ("mean ± std over all 4 folds (includes fold 1, whose test speakers were the search's validation "
                 "speakers)")

    text = crossfold_text.format_table(_typed(cf))
    assert re.search(r"^ +1\* s02,s03 ", text, re.M) and re.search(r"^ +0  s00,s01 ", text, re.M)
    assert f"{head_label} (%): val UA" in text and f"{all_label} (%): val UA" in text
    head_line = next(ln for ln in text.splitlines() if ln.startswith(head_label))
    all_line = next(ln for ln in text.splitlines() if ln.startswith(all_label))
    assert f"test UA {pm_clean};" in head_line and f"test UA {pm_all};" in all_line
    assert "* used in selection: the search chose its configuration on the validation part of fold 0" in text

    md = crossfold_text.markdown_table(_typed(cf))
    assert re.search(r"^\| 1\\\* \| s02,s03 \|", md, re.M) and re.search(r"^\| 0 \| s00,s01 \|", md, re.M)
    assert f"| **headline** | {head_label} |" in md and f"**{pm_clean}**" in md
    assert f"| all folds | {all_label} |" in md and f"| {pm_all} |" in md
    assert "\n\n\\* used in selection: " in md  # the footnote, escaped so Markdown does not make it a list item
    page = crossfold_text.format_markdown(_typed(cf))
    assert md in page and f"**{crossfold_text.headline(_typed(cf))}**" in page
    html_table = _md_to_html_table(md)
    assert "<td>1*</td>" in html_table and "<td>0</td>" in html_table and "<p>* used in selection" in html_table

    # no fold used in selection: one (headline) mean, over all folds, said so
    cf = _crossfold(_manifest(), "speaker", 0, {0: 0.6, 2: 0.5})
    assert cf["mean"] == cf["mean_all"] and cf["selection_folds"] == []
    for table in (crossfold_text.format_table(_typed(cf)), crossfold_text.markdown_table(_typed(cf))):
        assert "mean ± std over all 2 folds, none used in selection (headline)" in table
        assert "all folds |" not in table and "*" not in table.replace("**", "")

    # a crossfold.json written before folds were marked still renders, and says it does not know
    old = _crossfold(_manifest(), "speaker", 0, SPEAKER_UA)
    for key in ("selection_folds", "n_clean", "mean_all", "std_all"):
        del old[key]
    for r in old["folds"]:
        del r["used_in_selection"]
    for table in (crossfold_text.format_table(_typed(old)), crossfold_text.markdown_table(_typed(old))):
        assert "is not recorded in this result" in table


def test_report_sets_ours_beside_the_fields_speaker_independent_figures(tmp_path):
    cf = _crossfold(_manifest(), "speaker", 0, SPEAKER_UA)
    header, rows = report.paper_table(Summary(dataset="ravdess", protocol="speaker", best_config={}, fold=0,
                                                 test_ua=0.6), _typed(cf))
    ravdess = dict(zip(header, next(r for r in rows if r[0] == "RAVDESS"), strict=True))
    assert ravdess["EmoBox, frozen Whisper-large-v3, UA (%) [speaker-independent]"] == "75.32"
    assert ravdess["TIM-Net, corrected (%) [random split]"] == "90.04"
    assert ravdess["Lee & Nadeem paper, accuracy (%) [random split of feature rows]"] == "99.23"
    ours = ravdess["ours: cross-fold test UA (%) [headline: folds not used in selection]"]
    clean = [SPEAKER_UA[f] for f in (0, 2, 3)]
    assert ours.startswith(f"{100 * statistics.fmean(clean):.2f} ± ") and "not used in selection" in ours
    assert {r[0]: r[3] for r in rows if r[0] in ("IEMOCAP", "EMOVO")} == {"IEMOCAP": "73.54", "EMOVO": "57.82"}

    exp_dir = tmp_path / "exp"
    fake_experiment(exp_dir)  # a random-protocol search on seed 0
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
    from tune.search import parse_args

    exp_dir = tmp_path / "exp"
    exp_dir.mkdir()
    # an experiment from before config.json: its options in search_args.json are read as its settings
    search_args = parse_args(["--n-mels", "24", "--corpus-option", "n_speakers=8", "--corpus-option", "n_per_class=2"])
    (exp_dir / "search_args.json").write_text(json.dumps(vars(search_args)))
    shards = evaluate.ensure_shards({}, "emohrnet", exp_dir, log=lambda *a: None)  # built from search_args.json
    assert Manifest.read(shards["emohrnet"]).features["n_mels"] == 24
    best = {"dataset": "synthetic", "protocol": "speaker", "fold": 2, "best_trial": "abc123", "shard_dirs": shards,
            "best_config": {"model": "emohrnet", "epochs": 3, "fold": 2, "lr": 1e-3}}
    (exp_dir / "best.json").write_text(json.dumps(best))
    test_ua = {0: 0.50, 1: 0.60, 2: 0.55, 3: 0.95}  # the search on fold 2 validated on fold 3's test speakers
    canned_tuner(monkeypatch, test_ua, tmp_path)
    logs: list[str] = []
    args = evaluate.parse_args(["--dataset", "synthetic", "--config", str(exp_dir / "best.json"), "--folds", "all"])
    cf = evaluate.run_crossfold(args, log=lambda *a: logs.append(" ".join(map(str, a)))).to_dict()

    saved = json.loads((exp_dir / "crossfold.json").read_text())
    assert saved["search_fold"] == 2 and saved["selection_folds"] == [3] and saved["n_clean"] == 3
    assert [r["used_in_selection"] for r in saved["folds"]] == [False, False, False, True]
    assert saved["mean"]["test_ua"] == pytest.approx(statistics.fmean([0.50, 0.60, 0.55]))
    assert saved["mean_all"]["test_ua"] == pytest.approx(statistics.fmean(test_ua.values()))
    assert saved["mean"] == cf["mean"] and saved["std_all"] == cf["std_all"]
    assert CrossfoldResult.from_dict(saved).to_dict() == saved == cf  # the typed form writes the file back unchanged
    md = (exp_dir / "crossfold.md").read_text()
    assert re.search(r"^\| 3\\\* \|", md, re.M) and "mean ± std over the 3 folds not used in selection" in md
    assert "Used in selection (marked *, left out of the headline mean): 3" in "\n".join(logs)

"""The report: exact tables of hand-made records, one-line errors, results pages and the README's
headline in step with the committed JSON records."""
import glob
import json
import os

import pytest

from benchmarks import common
from benchmarks.__main__ import main
from benchmarks.report import HEADLINE_RUNS, PAGES, accuracy_table, headline_table, pages, run_label, summary_table


def _phase(scale, best=None, last=None, wall_s=None):
    metrics = dict(zip(common.METRICS, (.02, .012, .04, .02, .08, .032)))
    phase = {"test": {m: v * scale for m, v in metrics.items()}, "epochs_run": last, "best_epoch": best}
    if wall_s is not None:
        phase["wall_s"] = {"train_and_valid": wall_s}
    return phase


def _record(model="SASRec", dataset="Beauty", from_reference=None, masked=True):
    return {"job": "accuracy", "model": model, "dataset": dataset, "from_reference": from_reference,
            "history_masked": masked, "stage1": _phase(1.0, 30, 50, 600.0),
            "plain": _phase(1.1, 10, 30, 120.0), "basrec": _phase(1.375, 12, 32, 3000.0)}


def test_table_of_a_hand_made_record_is_exact():
    lines = accuracy_table(_record(model="FMLPRec")).splitlines()
    assert lines == [
        "| test, history masked | HR@5 | NDCG@5 | HR@10 | NDCG@10 | HR@20 | NDCG@20 | best / last epoch "
        "| training wall time | history |",
        "|---|---|---|---|---|---|---|---|---|---|",
        "| FMLP-Rec + BASRec, ours (b) | .0275 | .0165 | .0550 | .0275 | .1100 | .0440 | 12 of 32 | 50 min | masked |",
        "| FMLP-Rec, ours plain continued (a) | .0220 | .0132 | .0440 | .0220 | .0880 | .0352 | 10 of 30 | 2 min "
        "| masked |",
        "| FMLP-Rec, our stage 1 | .0200 | .0120 | .0400 | .0200 | .0800 | .0320 | 30 of 50 | 10 min | masked |",
        "| gain (b) over (a) | +25.0% | +25.0% | +25.0% | +25.0% | +25.0% | +25.0% | | | |",
    ]


def test_table_adds_the_published_row_and_marks_an_unmasked_or_reference_run():
    record = _record(from_reference="/x/SASRec-Beauty-stage1.pt", masked=False)
    record["stage1"] = dict(_phase(1.0), epochs_run=0)
    lines = accuracy_table(record).splitlines()
    assert lines[0].startswith("| test, history **not masked** |")
    assert lines[2] == "| SASRec + BASRec, published | .0548 | .0371 | .0810 | .0455 | .1145 | .0539 | | | masked |"
    assert lines[3].endswith("| **not masked** |")
    assert lines[5] == ("| SASRec, the authors' stage 1 | .0200 | .0120 | .0400 | .0200 | .0800 | .0320 | - | - "
                        "| **not masked** |")
    # ours (b) .0275 against the published .0548 ...
    assert lines[7].startswith("| ours (b) vs published | -49.8% | -55.5% | -32.1% | -39.6% | -3.9% | -18.4% |")


def test_table_job_errors_are_one_line(tmp_path, capsys):
    unfinished = dict(_record(), basrec={"curve": []})
    speed = {"job": "speed"}
    for name, record in (("unfinished", unfinished), ("speed", speed)):
        with open(tmp_path / f"{name}.json", "w") as f:
            json.dump(record, f)
    for path, words in ((tmp_path / "unfinished.json", "no finished 'basrec' phase"),
                        (tmp_path / "speed.json", "accuracy records only"),
                        (tmp_path / "absent.json", "no such result file")):
        with pytest.raises(SystemExit) as stop:
            main(["table", str(path)])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1


def test_summary_of_hand_made_runs_is_exact_and_refuses_mixed_backbones():
    first, second = _record(), dict(_record(), basrec=_phase(1.1))
    first["seed"], second["seed"] = 2020, 2024
    lines = summary_table([("seed-a", first), ("seed-b", second)]).splitlines()
    assert lines[0].startswith("| run (test, history masked) | seed | HR@10 (b) | NDCG@10 (b) |")
    assert lines[1] == "|" + "---|" * 9
    assert lines[2] == "| SASRec + BASRec, published | | .0810 | .0455 | | | | | |"
    # ours (b) .0550 / .0275 against the published .0810 / .0455, and the plain arm's .0440 / .0220
    assert lines[3] == "| seed-a | 2020 | .0550 | .0275 | -32.1% | -39.6% | .0440 | .0220 | +25.0% |"
    assert lines[4] == "| seed-b | 2024 | .0440 | .0220 | -45.7% | -51.6% | .0440 | .0220 | +0.0% |"
    assert len(lines) == 5
    with pytest.raises(ValueError, match="one backbone on one dataset"):
        summary_table([("a", first), ("b", _record(model="GRU4Rec"))])
    unmasked = summary_table([("a", dict(_record(masked=False), seed=1))]).splitlines()
    assert unmasked[0].startswith("| run (test, history **not masked**) |")
    assert unmasked[2].startswith("| SASRec + BASRec, published, history masked | | .0810 |")
    with pytest.raises(ValueError, match="mix masked and unmasked"):
        summary_table([("a", first), ("b", _record(masked=False))])
    with pytest.raises(ValueError, match="no finished 'basrec' phase"):
        summary_table([("a", dict(first, basrec={"curve": []}))])
    assert run_label("results/accuracy-sasrec-beauty-published-from-reference-seed2024.json") == \
        "published-from-reference-seed2024"


def test_headline_is_one_seed_mean_per_backbone_and_refuses_mixed_protocols():
    first, second, other = _record(), dict(_record(), basrec=_phase(1.1)), _record(model="GRU4Rec")
    first["seed"], second["seed"], other["seed"] = 2024, 2020, 2020
    lines = headline_table([("a", first), ("b", second), ("c", other)]).splitlines()
    assert lines[0].startswith("| backbone, dataset (test, history masked, budget None) | stage 1 | seeds |")
    # BASRec's mean of .0550 / .0275 and .0440 / .0220, the plain arm's .0440 / .0220 in both
    assert lines[2] == "| SASRec, Beauty | ours | 2020, 2024 | .0495 | .0248 | .0810 | .0455 | .0440 | .0220 | +12.5% |"
    assert lines[3] == "| GRU4Rec, Beauty | ours | 2020 | .0550 | .0275 | .0546 | .0286 | .0440 | .0220 | +25.0% |"
    assert len(lines) == 4
    with pytest.raises(ValueError, match="mix the authors' stage 1 and ours"):
        headline_table([("a", first), ("b", _record(from_reference="/x.pt"))])
    with pytest.raises(ValueError, match="mix masked and unmasked"):
        headline_table([("a", first), ("b", _record(masked=False))])
    with pytest.raises(ValueError, match="mix budgets"):
        headline_table([("a", first), ("b", dict(_record(), budget="reduced"))])


def test_committed_results_pages_are_what_the_json_records_generate():
    """results/*.md are generated: regenerating them from the committed JSON gives the committed text."""
    generated = pages()
    assert set(generated) == set(PAGES)
    for name, text in generated.items():
        with open(os.path.join(common.DEFAULT_OUT, name), encoding="utf-8") as f:
            assert f.read() == text.rstrip("\n") + "\n", f"results/{name} differs: run python -m benchmarks table --pages"
    # every accuracy record has its table on the accuracy page
    for path in glob.glob(os.path.join(common.DEFAULT_OUT, "accuracy-*.json")):
        with open(path) as f:
            assert accuracy_table(json.load(f)) in generated["accuracy.md"], os.path.basename(path)


def test_readme_headline_is_the_committed_runs_seed_means():
    with open(os.path.join(common.REPO_ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    paths = sorted(glob.glob(os.path.join(common.DEFAULT_OUT, HEADLINE_RUNS)))
    assert len(paths) >= 4
    records = []
    for path in paths:
        with open(path) as f:
            records.append((run_label(path), json.load(f)))
    assert headline_table(records) in readme, "README's headline differs: python -m benchmarks table --summary ..."


def test_pages_job_writes_every_page(tmp_path, capsys):
    import shutil

    for path in glob.glob(os.path.join(common.DEFAULT_OUT, "*.json")):
        shutil.copy(path, tmp_path)
    assert main(["table", "--pages", "--out", str(tmp_path)]) == 0
    assert set(PAGES) <= set(os.listdir(tmp_path))
    for name in PAGES:
        with open(tmp_path / name, encoding="utf-8") as f:
            assert f.read().startswith("<!-- Generated from the JSON records")
    assert capsys.readouterr().out.count("wrote ") == len(PAGES)

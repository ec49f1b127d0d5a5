"""Markdown table of an accuracy record: published vs ours, the plain arm beside BASRec, gains.

``python -m recbole_basrec.benchmark table results/accuracy-<model>-<dataset>-<tag>.json`` prints
the table the README's "Evidence" section shows for that run: its published-budget tables are this
output, not copied by hand (``tests/test_report.py`` checks that the README holds each unchanged).
"""
import os

from recbole_basrec.benchmark import common

#: Test HR/NDCG@{5,10,20} of X + BASRec published in the paper (history masked, the authors'
#: stage-1 checkpoints and presets). FMLP-Rec has no published per-metric figures.
PUBLISHED = {
    ("SASRec", "Beauty"): (.0548, .0371, .0810, .0455, .1145, .0539),
    ("GRU4Rec", "Beauty"): (.0336, .0219, .0546, .0286, .0842, .0360),
    ("SASRec", "Sports_and_Outdoors"): (.0283, .0193, .0436, .0242, .0641, .0294),
    ("GRU4Rec", "Sports_and_Outdoors"): (.0191, .0126, .0307, .0164, .0483, .0208),
}

#: How the paper writes the backbones' names.
DISPLAY_NAMES = {"FMLPRec": "FMLP-Rec"}

HEADER = ("| test, history {masked} | HR@5 | NDCG@5 | HR@10 | NDCG@10 | HR@20 | NDCG@20 "
          "| best / last epoch | training wall time | history |")


def published_metrics(model, dataset):
    """The paper's test metrics of ``model`` + BASRec on ``dataset`` as a dict, or ``None``."""
    values = PUBLISHED.get((model, dataset))
    return None if values is None else dict(zip(common.METRICS, values))


def _figure(value):
    """``.0455`` style: four decimals without the leading zero, as the paper prints them."""
    text = f"{value:.4f}"
    return text[1:] if text.startswith("0.") else text


def _percent(value):
    return "-" if value is None else f"{value * 100:+.1f}%"


def _cells(cells):
    return "|" + "|".join(f" {cell} " if cell else " " for cell in cells) + "|"


def _row(label, cells, epochs="", wall="", history=""):
    return _cells([label, *cells, epochs, wall, history])


def _phase_row(label, phase, history):
    metrics = [_figure(phase["test"][m]) for m in common.METRICS]
    if not phase.get("epochs_run"):
        return _row(label, metrics, "-", "-", history)
    epochs = f"{phase['best_epoch']} of {phase['epochs_run']}"
    wall = f"{phase['wall_s']['train_and_valid'] / 60:.0f} min"
    return _row(label, metrics, epochs, wall, history)


def _relative(better, base):
    gains = common.relative_gains(better, base)
    return [_percent(gains.get(m)) for m in common.METRICS]


def _require_finished(record):
    for phase in ("stage1", "plain", "basrec"):
        if not isinstance(record.get(phase), dict) or "test" not in record[phase]:
            raise common.BadRequest(f"the record has no finished '{phase}' phase: "
                                    "run the accuracy job to its end (it writes the JSON once every phase has "
                                    "finished)")


def accuracy_table(record):
    """The markdown table of one ``accuracy`` record (as written by :func:`run_accuracy`)."""
    _require_finished(record)
    name = DISPLAY_NAMES.get(record["model"], record["model"])
    history = "masked" if record.get("history_masked") else "**not masked**"
    published = published_metrics(record["model"], record["dataset"])
    stage1 = "the authors' stage 1" if record.get("from_reference") else "our stage 1"
    lines = [HEADER.format(masked=history), "|" + "---|" * 10]
    if published:
        lines.append(_row(f"{name} + BASRec, published", [_figure(published[m]) for m in common.METRICS],
                          history="masked"))
    lines += [
        _phase_row(f"{name} + BASRec, ours (b)", record["basrec"], history),
        _phase_row(f"{name}, ours plain continued (a)", record["plain"], history),
        _phase_row(f"{name}, {stage1}", record["stage1"], history),
        _row("gain (b) over (a)", _relative(record["basrec"]["test"], record["plain"]["test"])),
    ]
    if published:
        lines.append(_row("ours (b) vs published", _relative(record["basrec"]["test"], published)))
    return "\n".join(lines)


SUMMARY_HEADER = ("| run (test, history {masked}) | seed | HR@10 (b) | NDCG@10 (b) | HR@10 vs published "
                  "| NDCG@10 vs published | HR@10 (a) | NDCG@10 (a) | NDCG@10 gain (b) over (a) |")


def summary_table(records):
    """One row per run of one backbone on one dataset: BASRec (b) and plain (a) at @10, published beside.

    Args:
        records: ``(label, record)`` pairs, in the order of the rows.
    """
    keys = {(record["model"], record["dataset"]) for _, record in records}
    if len(keys) != 1:
        raise common.BadRequest(f"a summary covers one backbone on one dataset, these records hold {sorted(keys)}: "
                                "make one summary per backbone and dataset")
    masked = {bool(record.get("history_masked")) for _, record in records}
    if len(masked) != 1:
        raise common.BadRequest("these records mix masked and unmasked history: summarise each protocol apart")
    history = "masked" if masked.pop() else "**not masked**"
    model, dataset = keys.pop()
    published = published_metrics(model, dataset)
    lines = [SUMMARY_HEADER.format(masked=history), "|" + "---|" * 9]
    if published:
        # the paper masked history: an unmasked summary says so on the published row itself
        label = "published" if history == "masked" else "published, history masked"
        lines.append(_cells([f"{DISPLAY_NAMES.get(model, model)} + BASRec, {label}", "",
                             _figure(published["hit@10"]), _figure(published["ndcg@10"]), "", "", "", "", ""]))
    for label, record in records:
        _require_finished(record)
        ours, plain = record["basrec"]["test"], record["plain"]["test"]
        versus = common.relative_gains(ours, published) if published else {}
        versus_cells = [_percent(versus.get(m)) if published else "" for m in ("hit@10", "ndcg@10")]
        lines.append(_cells([
            label, str(record["seed"]), _figure(ours["hit@10"]), _figure(ours["ndcg@10"]), *versus_cells,
            _figure(plain["hit@10"]), _figure(plain["ndcg@10"]),
            _percent(common.relative_gains(ours, plain).get("ndcg@10"))]))
    return "\n".join(lines)


def run_label(path):
    """A run's name in a summary: its JSON's file name without ``accuracy-<model>-<dataset>-`` and ``.json``."""
    name = os.path.basename(path)[: -len(".json")] if path.endswith(".json") else os.path.basename(path)
    return name.split("-", 3)[3] if name.startswith("accuracy-") and name.count("-") >= 3 else name


def _accuracy_record(path):
    record = common.read_json(path, missing=None)
    if record is None:
        raise common.BadRequest(f"no such result file: {path}")
    if record.get("job") != "accuracy":
        raise common.BadRequest(f"{path} is a '{record.get('job')}' record: tables are made of accuracy "
                                "records only")
    return record


def run_table(paths, summary=False):
    """Print the table of each accuracy JSON in ``paths``, or with ``summary`` one row per JSON."""
    records = [(path, _accuracy_record(path)) for path in paths]
    if summary:
        print(summary_table([(run_label(path), record) for path, record in records]))
        return
    for path, record in records:
        print(f"{path}\n\n{accuracy_table(record)}\n")

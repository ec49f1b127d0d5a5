"""Markdown of the result records: the tables of ``results/*.md`` and the README's headline.

    python -m benchmarks table results/accuracy-<model>-<dataset>-<tag>.json   # one record's table
    python -m benchmarks table --summary results/accuracy-*weights-fix.json    # the headline
    python -m benchmarks table --pages                                          # rewrite results/*.md

The pages are this output, never edited by hand: ``tests/test_report.py`` checks that the
committed pages and the README's headline are what the committed JSON records generate.
"""
import os

from benchmarks import common

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
    """Print the table of each accuracy JSON in ``paths``, or with ``summary`` the headline
    (:func:`headline_table`: one row per backbone and dataset, seed means)."""
    records = [(path, _accuracy_record(path)) for path in paths]
    if summary:
        print(headline_table([(run_label(path), record) for path, record in records]))
        return
    for path, record in records:
        print(f"{path}\n\n{accuracy_table(record)}\n")


# ---------------------------------------------------------------- the headline (``table --summary``)

HEADLINE_HEADER = ("| backbone, dataset (test, history {masked}, budget {budget}) | stage 1 | seeds "
                   "| HR@10 BASRec | NDCG@10 BASRec | HR@10 published | NDCG@10 published | HR@10 plain "
                   "| NDCG@10 plain | NDCG@10 BASRec over plain |")
#: The runs the README's headline averages: the current method, from the authors' stage-1 checkpoints.
HEADLINE_RUNS = "accuracy-*-published-from-reference*weights-fix.json"


def _mean(values):
    return sum(values) / len(values)


def headline_table(records):
    """One row per backbone and dataset: the seed mean of BASRec (b) and of the plain arm (a) at
    @10, the published figure beside. All records share one protocol (history masking, budget,
    where stage 1 came from), or a one-line error says which differs."""
    for _, record in records:
        _require_finished(record)
    for key, what in (("history_masked", "masked and unmasked history"), ("budget", "budgets")):
        if len({bool(r.get(key)) if key == "history_masked" else r.get(key) for _, r in records}) > 1:
            raise common.BadRequest(f"these records mix {what}: summarise each protocol apart")
    first = records[0][1]
    lines = [HEADLINE_HEADER.format(masked="masked" if first.get("history_masked") else "**not masked**",
                                    budget=first.get("budget")), "|" + "---|" * 10]
    groups = {}
    for _, record in records:
        groups.setdefault((record["model"], record["dataset"]), []).append(record)
    for (model, dataset), group in groups.items():
        sources = {bool(r.get("from_reference")) for r in group}
        if len(sources) > 1:
            raise common.BadRequest(f"{model} on {dataset}: these records mix the authors' stage 1 and ours: "
                                    "summarise each apart")
        ours = {m: _mean([r["basrec"]["test"][m] for r in group]) for m in ("hit@10", "ndcg@10")}
        plain = {m: _mean([r["plain"]["test"][m] for r in group]) for m in ("hit@10", "ndcg@10")}
        published = published_metrics(model, dataset) or {}
        lines.append(_cells([
            f"{DISPLAY_NAMES.get(model, model)}, {dataset}", "the authors'" if sources.pop() else "ours",
            ", ".join(str(seed) for seed in sorted(r["seed"] for r in group)), _figure(ours["hit@10"]), _figure(ours["ndcg@10"]),
            *(_figure(published[m]) if m in published else "-" for m in ("hit@10", "ndcg@10")),
            _figure(plain["hit@10"]), _figure(plain["ndcg@10"]),
            _percent(ours["ndcg@10"] / plain["ndcg@10"] - 1 if plain["ndcg@10"] else None)]))
    return "\n".join(lines)


# ---------------------------------------------------------------- results/*.md pages

PAGES = ("accuracy.md", "models.md", "speed.md", "tta.md")
_GENERATED = ("<!-- Generated from the JSON records in this folder by `python -m benchmarks table --pages`; "
              "edit the code in benchmarks/report.py, not this file. Recorded commands name the jobs' module "
              "as it was then (`recbole_basrec.benchmark`, today `benchmarks`). -->")


def _records(results_dir, pattern):
    import glob

    return [(path, common.read_json(path)) for path in sorted(glob.glob(os.path.join(results_dir, pattern)))]


def _caption(path, record):
    env = record.get("environment", {})
    where = ", ".join(str(x) for x in (env.get("cpu_model"), env.get("device"),
                                        env.get("torch_threads") and f"{env['torch_threads']} threads",
                                        env.get("torch") and f"torch {env['torch']}") if x)
    name = os.path.basename(path)
    png = name[: -len(".json")] + ".png"
    links = f"[{name}]({name})" + (f", [plot]({png})" if os.path.isfile(os.path.join(os.path.dirname(path), png))
                                   else "")
    return f"{links}; {env.get('date', '')[:10]}, {where}; recorded command `{env.get('command', '')}`"


def _accuracy_page(results_dir):
    records = [(p, r) for p, r in _records(results_dir, "accuracy-*.json")]
    headline = [(p, r) for p, r in _records(results_dir, HEADLINE_RUNS)]
    out = [_GENERATED, "", "# Accuracy", "",
           "Test HR/NDCG of BASRec (b) against plain training continued from the same stage-1 weights (a), "
           "per record of the accuracy job. Published: the paper's figures (history masked).", "",
           "## Headline", "",
           f"Seed means of the runs `{HEADLINE_RUNS}` (`python -m benchmarks table --summary` on them):", "",
           headline_table([(run_label(p), r) for p, r in headline]), ""]
    by_backbone = {}
    for path, record in records:
        if record.get("from_reference") and record.get("budget") == "published":
            by_backbone.setdefault((record["model"], record["dataset"]), []).append((run_label(path), record))
    out += ["## Every run from the authors' stage-1 checkpoints", ""]
    for rows in by_backbone.values():
        out += [summary_table(rows), ""]
    out += ["## Each record", ""]
    for path, record in records:
        stage1 = "the authors' stage 1" if record.get("from_reference") else "our stage 1"
        history = "history masked" if record.get("history_masked") else "history **not masked**"
        out += [f"### {os.path.basename(path)[:-5]}", "",
                f"{DISPLAY_NAMES.get(record['model'], record['model'])} on {record['dataset']}, budget "
                f"{record['budget']}, seed {record['seed']}, {stage1}, loss {record.get('loss_type')}, {history}; "
                + _caption(path, record), "", accuracy_table(record), ""]
    return "\n".join(out)


def _models_page(results_dir):
    out = [_GENERATED, "", "# Any RecBole model: plain vs BASRec", "",
           "Records of the models job (generic path, `train_mode: prefix`); test NDCG@10 and HR@10, history "
           "masked; seconds per epoch include validation.", ""]
    for path, record in _records(results_dir, "models-*.json"):
        out += [f"## {os.path.basename(path)[:-5]}", "", f"{record['protocol']}; " + _caption(path, record), ""]
        if "models" in record:
            out += ["| model | stage 1 test NDCG@10 | (a) plain test NDCG@10 | (b) BASRec test NDCG@10 "
                    "| gain (b) over (a) | (a) HR@10 | (b) HR@10 | (a) valid NDCG@10 | (b) valid NDCG@10 "
                    "| (a) s/epoch | (b) s/epoch |", "|" + "---|" * 11]
            for m in sorted(record["models"], key=lambda m: -(m["gain_test"].get("ndcg@10") or 0)):
                a, b = m["plain"], m["basrec"]
                out.append(_cells([m["backbone"], _figure(m["stage1"]["test"]["ndcg@10"]),
                                   _figure(a["test"]["ndcg@10"]), _figure(b["test"]["ndcg@10"]),
                                   _percent(m["gain_test"].get("ndcg@10")), _figure(a["test"]["hit@10"]),
                                   _figure(b["test"]["hit@10"]), _figure(a["valid"]["ndcg@10"]),
                                   _figure(b["valid"]["ndcg@10"]), f"{a['s_per_epoch_incl_valid']:.0f}",
                                   f"{b['s_per_epoch_incl_valid']:.0f}"]))
        else:  # one-stage records: both arms from scratch
            arms = {}
            for arm in record["arms"]:
                arms.setdefault(arm["backbone"], {})["basrec" if arm["basrec"] else "plain"] = arm
            out += ["| model | plain test NDCG@10 | BASRec test NDCG@10 | gain | plain s/epoch | BASRec s/epoch |",
                    "|" + "---|" * 6]
            for name, arm in arms.items():
                a, b = arm["plain"], arm["basrec"]
                out.append(_cells([name, _figure(a["test"]["ndcg@10"]), _figure(b["test"]["ndcg@10"]),
                                   _percent(common.relative_gains(b["test"], a["test"]).get("ndcg@10")),
                                   f"{a['train_s_per_epoch']:.0f}", f"{b['train_s_per_epoch']:.0f}"]))
        out.append("")
    return "\n".join(out)


def _speed_page(results_dir):
    out = [_GENERATED, "", "# Speed", "",
           "Records of the speed job: one model, process and set of batches per row, `model.augment` toggling "
           "BASRec; a step is forward + backward + Adam, medians of interleaved steps. The floor of the step "
           "ratio is `1 + 2 * n_pairs` encoder passes. The side-by-side runs with the authors' code "
           "(`speed --reference`, `results/speed-reference-*.json`) are described in `docs/speed.md`.", ""]
    for path, record in _records(results_dir, "speed-*.json"):
        if record.get("job") != "speed":
            continue  # speed --reference records: docs/speed.md
        s = record["settings"]
        out += [f"## {os.path.basename(path)[:-5]}", "",
                f"{record['dataset']}, batch {s['batch_size']}, L={s['max_len']}, n_pairs {s['n_pairs']}, "
                f"n_whole_level {s['n_whole_level']}, {s['loss_type']}; " + _caption(path, record), "",
                "| model / train_mode | step plain | step BASRec | ratio | floor | epoch plain | epoch BASRec "
                "| epoch | peak memory over baseline, plain / BASRec |", "|" + "---|" * 9]
        for r in record["results"]:
            memory = [r["memory"][arm].get("rss_peak_over_baseline_mib",
                                           r["memory"][arm].get("cuda_peak_over_baseline_mib")) for arm in
                      ("plain", "basrec")]
            memory_text = "-" if None in memory else f"+{memory[0]:.0f} / +{memory[1]:.0f} MiB"
            kind = "measured" if r["epoch"]["kind"].startswith("measured") else "estimated from steps"
            out.append(_cells([f"{r['model']} / {r['train_mode']}", f"{r['step_ms']['plain_median']:.0f} ms",
                               f"{r['step_ms']['basrec_median']:.0f} ms", f"{r['ratio']:.2f}",
                               str(r["ratio_floor"]), f"{r['epoch']['plain_s']:.1f} s",
                               f"{r['epoch']['basrec_s']:.1f} s", kind, memory_text]))
        if record.get("similarity_build"):
            out += ["", f"ItemCF-IUF top-1 table: {record['similarity_build']['median_s']:.2f} s "
                        f"(median of {record['similarity_build']['repeats']})."]
        out.append("")
    return "\n".join(out)


def _tta_settings(settings):
    from benchmarks.tta import BASE

    s = {**BASE, **settings}
    original = ", original in" if s["tta_keep_original"] else ""
    if s["tta"] == "tnoise":
        out = f" + {s['tta_output_views']} out" if s["tta_output_views"] else ""
        return f"U({s['tta_noise'][0]}, {s['tta_noise'][1]}), {s['tta_views']} in{out}{original}"
    if s["tta"] == "tmask":
        return f"rate {s['tta_mask_rate']}, {s['tta_views']} views{original}"
    return "-"


def _tta_page(results_dir):
    out = [_GENERATED, "", "# Test-time augmentation", "",
           "Records of the tta job: trained checkpoints scored without and with TTA on the same inputs, "
           "history masked. Gain: test NDCG@10 against the same checkpoint without TTA; the evaluation time "
           "against that checkpoint's plain evaluation.", ""]
    for path, record in _records(results_dir, "tta-*.json"):
        out += [f"## {os.path.basename(path)[:-5]}", "", f"{record['protocol']}; seed {record['seed']}; "
                + _caption(path, record), "",
                "| model | checkpoint | TTA | settings | valid NDCG@10 | test HR@10 | test NDCG@10 | gain "
                "| test NDCG@20 | test evaluation |", "|" + "---|" * 10]
        base = {(r["model"], r["checkpoint"]): r for r in record["runs"] if r["variant"] == "none"}
        for r in record["runs"]:
            none = base.get((r["model"], r["checkpoint"]))
            gain = common.relative_gains(r["test"], none["test"]).get("ndcg@10") if none else None
            cost = f" ({r['test_eval_s'] / none['test_eval_s']:.1f}x)" if none else ""
            out.append(_cells([r["model"], os.path.basename(r["checkpoint"]), r["variant"],
                               _tta_settings(r["settings"]), _figure(r["valid"]["ndcg@10"]),
                               _figure(r["test"]["hit@10"]), _figure(r["test"]["ndcg@10"]), _percent(gain),
                               _figure(r["test"]["ndcg@20"]), f"{r['test_eval_s']:.0f} s{cost}"]))
        out.append("")
    return "\n".join(out)


def pages(results_dir=None):
    """``{file name: markdown}`` of every results page, generated from the JSON records in ``results_dir``."""
    results_dir = results_dir or common.DEFAULT_OUT
    makers = {"accuracy.md": _accuracy_page, "models.md": _models_page, "speed.md": _speed_page,
              "tta.md": _tta_page}
    return {name: makers[name](results_dir) for name in PAGES}


def write_pages(results_dir=None):
    """Write :func:`pages` into ``results_dir`` (default ``results/``); returns the paths written."""
    results_dir = results_dir or common.DEFAULT_OUT
    written = []
    for name, text in pages(results_dir).items():
        path = os.path.join(results_dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.rstrip("\n") + "\n")
        written.append(path)
    return written

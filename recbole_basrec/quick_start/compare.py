"""A fair comparison of BASRec with plain training, over seeds: ``recbole-basrec compare``.

1. **stage 1**, shared by every arm and seed: the plain backbone trained for up to
   ``stage1_epochs`` epochs with its own early stopping (``stage1_stopping_step``) under the first
   seed, its best-validation weights kept; or ``pretrained_path``, only scored; or, with
   ``stage1_epochs: 0``, nothing (both arms start from the same random weights of each seed).
2. for every seed, one arm per method from those weights, with the same budget (``epochs``,
   ``stopping_step``, ``valid_start_epoch``), the same data order and the same seed:
   **plain** (training continued, ``augmentation: none``) and each of ``--methods`` (default
   **basrec**, BASRec's stage 2; also the heuristic baselines and CL4SRec, ``model/methods.py``).
3. each arm's best-validation model is tested once; one table gives, per arm, the mean and
   standard deviation over seeds of every validation and test metric, BASRec's relative gain and
   the seeds it wins; a JSON record holds the settings, where each came from, the versions, the
   machine and every number.

Every finished phase is recorded in ``<run folder>/phases.json`` and the running phase writes its
state after every epoch, so the same command started again continues where it stopped.
"""
import contextlib
import hashlib
import json
import math
import numbers
import os
import statistics
import time

from recbole_basrec import distributed
from recbole_basrec.quick_start.record import environment, read_json, write_json
from recbole_basrec.trainer.checkpoint import another_process_alive

#: The arms of the default comparison, in the order each seed runs them: plain training and BASRec.
ARMS = ("plain", "basrec")
#: ``--methods`` defaults to BASRec alone.
DEFAULT_METHODS = ("basrec",)
DEFAULT_SEEDS = (2020, 2021, 2022)


class CompareError(ValueError):
    """A comparison cannot run as asked (a one-line message naming the fix)."""


# ---------------------------------------------------------------------------------- settings
def setting_layers(model_name, dataset, config_file_list=None, config_dict=None):
    """Each configuration layer, lowest first, as ``(label, kind, settings)`` with kind one of
    ``default``, ``preset``, ``dataset``, ``file``, ``given``: our and RecBole's defaults, the
    authors' preset (if one applies), our dataset file, the user's files, the user's keys."""
    from recbole_basrec.config import default_config_files, load_yaml, properties_dir
    from recbole_basrec.config.files import preset_file
    from recbole_basrec.config.models import backbone_of

    preset = preset_file(backbone_of(model_name), dataset)
    dataset_file = os.path.join(properties_dir(), "dataset", f"{dataset}.yaml")
    layers = []
    for path in default_config_files(model_name, dataset):
        kind = "preset" if path == preset else "dataset" if path == dataset_file else "default"
        layers.append((_short(path), kind, load_yaml(path)))
    for path in config_file_list or ():
        layers.append((f"config file {path}", "file", load_yaml(path)))
    if config_dict:
        layers.append(("command line / config_dict", "given", dict(config_dict)))
    return layers


def _short(path):
    parts = os.path.normpath(path).split(os.sep)
    if "properties" in parts:
        index = len(parts) - 1 - parts[::-1].index("properties")
        owner = "recbole" if index > 0 and parts[index - 1] == "recbole" else "recbole-basrec"
        return f"{owner} properties/{'/'.join(parts[index + 1:])}"
    return path


def changed_settings(layers):
    """Settings that the layers above the defaults and the preset change: ``[{key, value, set_by,
    under, under_value}]``, the value as that layer gives it and ``under`` the layer whose value it
    replaces (None for a new key). Keys set back to what the defaults and the preset give are left out."""
    below, source = {}, {}
    for label, kind, settings in layers:
        if kind in ("default", "preset"):
            for key, value in settings.items():
                below[key], source[key] = value, label
    changes = {}
    for label, kind, settings in layers:
        if kind in ("default", "preset"):
            continue
        for key, value in settings.items():
            if key in below and below[key] == value:
                changes.pop(key, None)
                continue
            changes[key] = {"key": key, "value": value, "set_by": label,
                            "under": source.get(key), "under_value": below.get(key)}
    return list(changes.values())


def describe_changes(changes, preset):
    """Lines naming the preset (or its absence) and every changed setting with its layer."""
    lines = [f"preset: {preset}" if preset else "preset: none applies (our defaults)"]
    for c in changes:
        under = f", over {c['under_value']!r} from {c['under']}" if c["under"] else ""
        lines.append(f"  {c['key']}={c['value']!r} set by {c['set_by']}{under}")
    return lines


def _digest(model_name, dataset, layers, extra, data=None):
    """The run folder's name part: the settings given and ``data``, the atomic files' digest (other
    data, even under the same name and path, gets a fresh folder)."""
    given = [(label, settings) for label, kind, settings in layers if kind in ("file", "given", "budget")]
    text = json.dumps([model_name, dataset, given, extra, data], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


# ---------------------------------------------------------------------------------- summary
def _metric_names(records):
    names = []
    for record in records:
        for split in ("valid", "test"):
            for name in record.get(split, {}):
                if name not in names:
                    names.append(name)
    return names


def arms_of(methods):
    """The arms of a comparison of ``methods``: plain training first, then each method."""
    return ("plain", *methods)


def summarize(record):
    """The comparison's numbers over seeds: ``{"seeds", "methods", "metrics", "valid"/"test":
    {metric: {arm: (mean, std) for plain and every method, "gain": {method: relative gain of its
    mean over plain's (None where plain's mean is 0)}}}, "wins": {method: {metric: seeds where its
    test value is above plain's}}}``. A method is summarized over the seeds where it and plain
    both finished; the standard deviation is the sample's (n - 1), None for one seed (undefined)."""
    runs = record["runs"]
    methods = list(record.get("methods") or DEFAULT_METHODS)
    arms = arms_of(methods)
    seeds_of = {arm: [s for s in record["seeds"] if f"{arm}-{s}" in runs and f"plain-{s}" in runs] for arm in arms}
    seeds = [s for s in record["seeds"] if any(s in seeds_of[m] for m in methods)]
    if not seeds:
        raise CompareError("no seed has finished plain training and a method yet")
    metrics = _metric_names([runs[f"{arm}-{s}"] for arm in arms for s in seeds_of[arm]])
    out = {"seeds": seeds, "methods": methods, "seeds_by_arm": seeds_of, "metrics": metrics, "wins": {}}
    for split in ("valid", "test"):
        out[split] = {}
        for metric in metrics:
            row = {"gain": {}}
            for arm in arms:
                values = [float(runs[f"{arm}-{s}"][split][metric]) for s in seeds_of[arm]]
                row[arm] = (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None)
            for method in methods:
                base = statistics.fmean(float(runs[f"plain-{s}"][split][metric]) for s in seeds_of[method])
                row["gain"][method] = (row[method][0] - base) / base if base else None
            out[split][metric] = row
    for method in methods:
        out["wins"][method] = {
            metric: sum(runs[f"{method}-{s}"]["test"][metric] > runs[f"plain-{s}"]["test"][metric]
                        for s in seeds_of[method])
            for metric in metrics}
    return out


def _num(value):
    text = f"{value:.4f}"
    return text[1:] if text.startswith("0.") else text


def _spread(mean_std):
    """``mean ± std``; one seed has no sample standard deviation: ``± n/a``, as wide as a number."""
    mean, std = mean_std
    return f"{_num(mean)} ± {'n/a'.rjust(5) if std is None else _num(std)}"


def _gain(value):
    return "n/a" if value is None else f"{value * 100:+.1f}%"


def format_table(summary, valid_metric="ndcg@10"):
    """The summary as a text table. One method: a row per metric; valid and test, mean +- std per
    arm, gain, wins. Several: a row per arm; ``valid_metric`` on validation, every metric on test,
    then each method's gains over plain (valid and test ``valid_metric``) and test wins."""
    from recbole_basrec.model.methods import LABELS

    methods = summary["methods"]
    if len(methods) > 1:
        return _arm_table(summary, valid_metric)
    method = methods[0]
    n = len(summary["seeds_by_arm"][method])
    label = LABELS[method]
    head = ["metric", "valid plain", f"valid {label}", "gain", "test plain", f"test {label}", "gain", f"wins/{n}"]
    rows = []
    for metric in summary["metrics"]:
        cells = [metric]
        for split in ("valid", "test"):
            row = summary[split][metric]
            cells += [_spread(row[arm]) for arm in ("plain", method)]
            cells.append(_gain(row["gain"][method]))
        cells.append(str(summary["wins"][method][metric]))
        rows.append(cells)
    return _aligned(head, rows)


def _arm_table(summary, metric):
    from recbole_basrec.model.methods import LABELS

    metric = metric if metric in summary["metrics"] else summary["metrics"][0]
    head = ["method", "seeds", f"valid {metric}", *(f"test {m}" for m in summary["metrics"]),
            "gain valid", "gain test", "wins"]
    rows = []
    for arm in arms_of(summary["methods"]):
        seeds = summary["seeds_by_arm"][arm]
        cells = [LABELS["none" if arm == "plain" else arm], str(len(seeds))]
        cells.append(_spread(summary["valid"][metric][arm]))
        cells += [_spread(summary["test"][m][arm]) for m in summary["metrics"]]
        if arm == "plain":
            cells += ["", "", ""]
        else:
            cells += [_gain(summary["valid"][metric]["gain"][arm]), _gain(summary["test"][metric]["gain"][arm]),
                      f"{summary['wins'][arm][metric]}/{len(seeds)}"]
        rows.append(cells)
    return _aligned(head, rows)


def _aligned(head, rows):
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    line = lambda cells: " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([line(head), "-+-".join("-" * w for w in widths)] + [line(r) for r in rows])


# ---------------------------------------------------------------------------------- running
class _RunLock:
    """``<folder>/.lock`` holds the id of the process running that phase: a second one is refused."""

    def __init__(self, folder):
        self.path = os.path.join(folder, ".lock")

    def __enter__(self):
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    with open(self.path, encoding="utf-8") as f:
                        pid = int(f.read().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and another_process_alive(pid):
                    raise CompareError(f"another process ({pid}) is running in {os.path.dirname(self.path)}; "
                                       "wait for it, or give this comparison another --checkpoint_dir") from None
                try:
                    os.remove(self.path)  # left by a process that is gone
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            return self
        raise CompareError(f"cannot take the lock {self.path}; remove it if no comparison runs there")

    def __exit__(self, *exc):
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


def _metrics(result):
    return {k: float(v) for k, v in (result or {}).items()}


def best_validation(curve, metric):
    """Index of the model a phase tested: its best ``metric``, the latest of equal scores, as
    RecBole's early stopping (``>=``) keeps it; ``None`` for an empty curve."""
    return max(range(len(curve)), key=lambda i: (curve[i][metric], i)) if curve else None


def run_phase(name, model, dataset, config_file_list, config_dict, data, seed, say):
    """Train (or, with ``epochs: 0``, only score) one phase on the loaders of ``data`` (an earlier
    phase's pipeline, or None); resume it from its folder's ``resume.pth`` if a run stopped in it.
    Returns its record and its pipeline, whose data the next phase reuses."""
    import dataclasses

    from recbole_basrec.quick_start import build

    pipe = build(model, dataset, config_file_list, config_dict, data=data, check_effects=False)  # checked for all arms
    config, trainer = pipe.config, pipe.trainer
    pipe.train_data.generator.manual_seed(seed)  # every phase of a seed sees the same batches in the same order
    trainer.progress_sink = lambda line: say(f"[{name}] {line}")
    trainer.last_file = os.path.join(config["checkpoint_dir"], "resume.pth")
    resumable = os.path.isfile(trainer.last_file)
    if not config["single_spec"]:
        resumable = distributed.broadcast_object(resumable)  # rank 0 writes it: its view decides
    if resumable:
        state = trainer.resume_checkpoint(trainer.last_file)
        say(f"[{name}] resumed after epoch {state['epoch'] + 1} from {trainer.last_file}")
    start = time.perf_counter()
    trainer.fit(pipe.train_data, pipe.valid_data, saved=True, show_progress=config["show_progress"])
    train_s = time.perf_counter() - start
    test = trainer.evaluate(pipe.test_data, load_best_model=True, show_progress=config["show_progress"])
    metric = config["valid_metric"].lower()
    curve = [{"epoch": int(h["epoch"]) + 1, **{k: float(v) for k, v in h.items() if "@" in k}}
             for h in trainer.valid_history if h.get("epoch", -1) >= 0]
    best = best_validation(curve, metric)
    record = {
        "phase": name,
        "model": config["model"],
        "seed": seed,
        "basrec": bool(config["basrec"]),
        "augmentation": config["augmentation"] if config["basrec"] else "none",
        "epochs_run": len(trainer.epoch_losses),
        "best_epoch": curve[best]["epoch"] if best is not None else None,
        "valid_metric": metric,
        "valid": _metrics(trainer.best_valid_result),
        "test": _metrics(test),
        "curve": curve,
        "train_losses": [{"epoch": e + 1, **trainer.loss_terms(e)} for e in sorted(trainer.epoch_losses)],
        "wall_s": {"train_and_valid": train_s, "test": time.perf_counter() - start - train_s,
                   "per_epoch_incl_valid": train_s / max(len(trainer.epoch_losses), 1)},
        "checkpoint": trainer.saved_model_file,
        "exact_valid_score": bool(trainer.exact_valid_score),
        "data": {"users": int(pipe.dataset.user_num - 1), "items": int(pipe.dataset.item_num - 1),
                 "interactions": int(pipe.dataset.inter_num), "train_batches_per_epoch": len(pipe.train_data)},
    }
    return record, dataclasses.replace(pipe, model=None, trainer=None)


def _checked_seeds(seeds):
    """``seeds`` as a list of ints. Only a list or tuple of integers is taken: int() would turn '12'
    into seeds 1 and 2, 1.5 and True into 1, and a bare 5 into a TypeError."""
    if isinstance(seeds, (list, tuple)) and all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in seeds):
        return [int(s) for s in seeds]
    raise CompareError(f"seeds={seeds!r}: give a list of integers in [0, 4294967296) (numpy's seed range), "
                       "e.g. seeds=[2020, 2021, 2022]")


def run_compare(model="SASRec", dataset="ml-100k", seeds=DEFAULT_SEEDS, config_file_list=None, config_dict=None,
                out=None, say=print, command=None, layer=None, stage1_config=None, run_dir=None, arms=None,
                methods=DEFAULT_METHODS):
    """Stage 1 once, then plain training and each method from it for every seed; print the table,
    write the record.

    Args:
        model, dataset, config_file_list, config_dict: as for :func:`run_recbole_basrec`; the
            user's settings apply to every phase (``pretrained_path`` replaces stage 1).
        seeds: one pair of arms per seed; stage 1 trains under the first.
        out: where the JSON record goes (default ``<run folder>/compare.json``).
        command: the command line to record (default ``sys.argv``).
        layer: ``(label, settings)`` beneath ``config_dict`` (an experiment's budget), named as
            such wherever settings are reported.
        stage1_config: settings for stage 1 only, over all others (e.g. its own dropout).
        run_dir: the run's folder (default ``<checkpoint_dir>/compare-<model>-<dataset>-<digest of
            the settings>``); a folder holding a comparison with other settings is refused.
        methods: the augmentation methods compared with plain training (values of
            ``augmentation``: basrec, ran, ran_s, slide_window, cmr, cmrsi, cl4srec).
        arms: the arms this process trains (default: plain and every method). Another process
            may train the others into the same folder meanwhile; whichever finishes last writes
            the record.

    Returns:
        dict: the record (``summary`` holds the table's numbers, ``json_path`` where it was
        written); None while an arm of another process is unfinished.
    """
    from recbole_basrec.config.files import preset_file
    from recbole_basrec.config.models import backbone_of, is_basrec
    from recbole_basrec.quick_start import build_config
    from recbole_basrec.quick_start.quick_start import model_name as resolve_model_name

    seeds = _checked_seeds(seeds)
    for seed in seeds:  # each arm's seed is checked only when it starts: refuse before any training
        if not 0 <= seed < 2 ** 32:
            raise CompareError(f"--seeds {seed}: every seed must be an integer in [0, 4294967296) "
                               "(numpy's seed range), e.g. --seeds 2020 2021 2022")
    if not seeds or len(set(seeds)) != len(seeds):
        raise CompareError(f"--seeds {' '.join(map(str, seeds))}: give one or more distinct seeds")
    from recbole_basrec.model.methods import LABELS, METHODS

    methods = list(methods or DEFAULT_METHODS)
    unknown = [m for m in methods if m not in METHODS or m == "none"]
    if unknown or len(set(methods)) != len(methods):
        problem = f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a method" if unknown else "a method is named twice"
        raise CompareError(f"--methods {' '.join(methods)}: {problem}; give distinct methods among "
                           f"{', '.join(m for m in METHODS if m != 'none')} (plain training is always compared)")
    all_arms = arms_of(methods)
    arms = all_arms if arms is None else tuple(arms)
    if not arms or set(arms) - set(all_arms):
        raise CompareError(f"arms {list(arms)}: choose among {list(all_arms)}")
    if out is not None:
        _check_writable(out)
    given = dict(config_dict or {})
    for key in ("basrec", "augmentation", "seed"):
        if key in given:
            raise CompareError(f"compare sets {key} itself (every arm, every seed of --seeds); drop --{key}"
                               + (" and name the methods with --methods" if key != "seed" else ""))
    label, below = layer or ("", {})
    settings = {**below, **given}
    stage1_config = dict(stage1_config or {})
    model_name = resolve_model_name(model)
    if not is_basrec(model_name):
        raise CompareError(f"compare trains BASRec against plain training: give a backbone (e.g. --model=SASRec), "
                           f"not {model}")
    from recbole_basrec.config.configurator import effect_checks_off, without_effect

    with effect_checks_off():  # a key needs an effect in one arm, not under the default augmentation
        config = build_config(model_name, dataset, config_file_list, settings)  # checks every other input
    final = config.final_config_dict
    for key, fix in without_effect(model_name, final, set(config.external_config_dict), methods=["none", *methods]):
        raise CompareError(f"{key} has no effect in any arm of this comparison: {fix}")
    for method in methods:  # what a method's own setup refuses, before any arm trains
        with effect_checks_off():
            build_config(model_name, dataset, config_file_list, {**settings, "augmentation": method})
    main = final["single_spec"] or distributed.is_main()  # several processes: global rank 0 writes and speaks
    backbone = backbone_of(model_name)
    layers = setting_layers(model_name, dataset, config_file_list, given)
    if below:
        layers.insert(len(layers) - bool(given), (label, "budget", dict(below)))
    preset = preset_file(backbone, dataset)
    changes = changed_settings(layers)
    pretrained, stage1_epochs = final["pretrained_path"], final["stage1_epochs"]
    digest = _digest(model_name, dataset, layers, stage1_config or None, _data_digest(config))
    run_dir = run_dir or os.path.join(final["checkpoint_dir"], f"compare-{backbone}-{dataset}-{digest}")
    done_file = os.path.join(run_dir, "phases.json")
    log_file = os.path.join(run_dir, "progress.log")
    if main:
        os.makedirs(run_dir, exist_ok=True)
        _claim(run_dir, digest, model_name, dataset)

    def tell(line):
        if not main:
            return
        say(line)
        with open(log_file, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def finished():  # read again each time: another process may have added a phase
        done = read_json(done_file, missing={}) if main else None
        return done if final["single_spec"] else distributed.broadcast_object(done)

    names = ", ".join(LABELS[m] for m in methods)
    tell(f"[compare] {backbone} on {dataset}: plain training against {names}, seeds {' '.join(map(str, seeds))}; "
         f"run folder {run_dir} (the same command resumes it)")
    for line in describe_changes(changes, _short(preset) if preset else None):
        tell(f"[compare] {line}")
    if stage1_config:
        tell(f"[compare] stage 1 only: {', '.join(f'{k}={v!r}' for k, v in stage1_config.items())}")
    data = None

    def phase(name, overrides, seed):
        try:
            return _phase(name, overrides, seed)
        except KeyboardInterrupt:
            from recbole_basrec.quick_start.quick_start import Interrupted

            raise Interrupted(f"interrupted: the finished phases are kept in {done_file} and {name}'s last epoch in "
                              f"{os.path.join(run_dir, name, 'resume.pth')}; run the same command again to "
                              "continue") from None

    def _phase(name, overrides, seed):
        nonlocal data
        earlier = finished().get(name)
        if earlier is not None:
            tell(f"[compare] {name}: finished earlier, kept")
            return earlier
        folder = os.path.join(run_dir, name)
        os.makedirs(folder, exist_ok=True)
        with _RunLock(folder) if main else contextlib.nullcontext():
            cfg = {**settings, **overrides, "checkpoint_dir": folder}
            record, data = run_phase(name, model_name, dataset, config_file_list, cfg, data, seed, tell)
            # relative: a moved or copied run folder still finds its checkpoints
            record["checkpoint"] = os.path.relpath(record["checkpoint"], run_dir)
            done = finished()
            if main:
                write_json({**done, name: record}, done_file, digits=None)
        return record

    if pretrained:
        tell(f"[compare] stage 1: the given checkpoint {pretrained}, scored once")
        stage1 = phase("stage1", {"basrec": False, "epochs": 0, "seed": seeds[0], **stage1_config}, seeds[0])
        start_from = pretrained
    elif stage1_epochs > 0:
        patience = stage1_config.get("stopping_step", final["stage1_stopping_step"])
        tell(f"[compare] stage 1: plain {backbone}, up to {stage1_epochs} epochs, early stopping after "
             f"{patience + 1} validations without gain, seed {seeds[0]}; both arms of every seed start from its "
             "best weights")
        stage1 = phase("stage1", {"basrec": False, "stage1_epochs": 0, "epochs": stage1_epochs,
                                  "stopping_step": final["stage1_stopping_step"], "seed": seeds[0],
                                  **stage1_config}, seeds[0])
        start_from = os.path.join(run_dir, stage1["checkpoint"])
    else:
        tell("[compare] stage1_epochs=0: no stage 1; both arms of a seed start from the same random weights")
        stage1, start_from = None, None
    metric = final["valid_metric"].lower()
    done = finished()
    to_train = [f"{arm}-{s}" for s in seeds for arm in all_arms if arm in arms and f"{arm}-{s}" not in done]
    if stage1 and not pretrained and to_train and not os.path.isfile(start_from):
        raise CompareError(f"stage 1 in {run_dir} is finished but its checkpoint {start_from} is missing: restore "
                           "that file, or remove 'stage1' from phases.json to train stage 1 again")
    for seed in seeds:
        for arm in (a for a in all_arms if a in arms):
            name = f"{arm}-{seed}"
            tell(f"[compare] {name}: {'plain training' if arm == 'plain' else LABELS[arm]}"
                 f"{' from stage 1' if start_from else ''}, up to {final['epochs']} epochs, seed {seed}")
            result = phase(name, {"basrec": arm != "plain", "augmentation": "none" if arm == "plain" else arm,
                                  "stage1_epochs": 0, "pretrained_path": start_from, "seed": seed}, seed)
            tell(f"[compare] {name}: valid {metric} {result['valid'].get(metric, math.nan):.4f}, "
                 f"test ndcg@10 {result['test'].get('ndcg@10', math.nan):.4f}")
    done = finished()
    missing = [f"{arm}-{s}" for s in seeds for arm in all_arms if f"{arm}-{s}" not in done]
    if missing:
        tell(f"[compare] {', '.join(missing)} not finished: the process running them writes the record")
        return None
    record = {
        "job": "compare",
        "model": backbone,
        "dataset": dataset,
        "seeds": seeds,
        "protocol": (
            "stage 1 = " + (f"the given checkpoint {pretrained}" if pretrained else
                            f"plain training, early-stopped on validation, seed {stage1['seed']}" if stage1 else "none")
            + f"; from it, per seed, plain training continued and {names}, same budget, early stopping, "
              "data order and seed; each arm's best-validation model tested once; full ranking, "
            + ("history masked" if final["eval_mask_history"] else "history not masked")
        ),
        "history_masked": bool(final["eval_mask_history"]),
        "methods": methods,
        "preset": _short(preset) if preset else None,
        "changed_settings": changes,
        "stage1_config": stage1_config,
        "settings": _settings(final),
        "data": next((r["data"] for r in done.values() if "data" in r), None),
        "environment": environment(command),
        "stage1": stage1,
        "runs": {f"{arm}-{s}": done[f"{arm}-{s}"] for s in seeds for arm in all_arms},
    }
    record["summary"] = summarize(record)
    record["table"] = format_table(record["summary"], metric)
    json_path = out or os.path.join(run_dir, "compare.json")
    if main:
        write_json(record, json_path, digits=None)
    record["json_path"] = json_path
    n = len(record["summary"]["seeds"])
    tell(f"[compare] {backbone} on {dataset}, {n} seed{'s' * (n > 1)} ({' '.join(map(str, seeds))}): "
         f"mean ± std{' (n/a: one seed has none)' if n == 1 else ''}; gain = a method's mean over plain's; wins = seeds where its test value is higher; "
         f"full ranking, {'history masked' if record['history_masked'] else 'history not masked'}")
    for line in record["table"].splitlines():
        tell(line)
    tell(f"[compare] record: {json_path}")
    return record


def _data_digest(config):
    """The digest of the atomic files the comparison trains on; a dataset RecBole downloads is
    downloaded first (one process), so the folder is named by the data from the start."""
    from recbole_basrec.config.snapshot import data_digest_of
    from recbole_basrec.data.dataset import recbole_downloads

    digest = data_digest_of(config)
    if digest is None and config["single_spec"] and not os.path.exists(config["data_path"]) \
            and recbole_downloads(config["dataset"]):
        from recbole_basrec.utils import create_dataset

        create_dataset(config)
        digest = data_digest_of(config)
    return digest


def _check_writable(out):
    """Refuse, before any training, a record path that cannot be written."""
    out = os.fspath(out)
    if os.path.isdir(out):
        raise CompareError(f"--out {out} is a directory; give the JSON file to write, e.g. {os.path.join(out, 'compare.json')}")
    from recbole_basrec.config.files import unwritable

    why = unwritable(os.path.dirname(os.path.abspath(out)))
    if why:
        raise CompareError(f"--out {out} cannot be written ({why}); choose a file in a folder you can write")


def _claim(run_dir, digest, model_name, dataset):
    """Mark ``run_dir`` as this comparison's; refuse a folder holding one with other settings."""
    path = os.path.join(run_dir, "settings.json")
    mine = {"digest": digest, "model": model_name, "dataset": dataset}
    theirs = read_json(path)
    if theirs is None:
        write_json(mine, path, digits=None)
    elif theirs != mine:
        raise CompareError(f"{run_dir} holds a comparison of {theirs.get('model')} on {theirs.get('dataset')} with "
                           "other settings: give this one another folder (or remove that one)")


def _settings(final):
    """The final settings that plain values can record (the derived and unprintable ones left out)."""
    from recbole_basrec.config.snapshot import plain

    out = {}
    for key, value in final.items():
        value, ok = plain(value)
        if ok:
            out[key] = value
    return out

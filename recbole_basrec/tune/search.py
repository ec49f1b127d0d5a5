"""Hyper-parameter search for BASRec with Ray Tune (ASHA early stopping).

:func:`run_search` samples ``num_samples`` configurations from a search-space file (see
:mod:`recbole_basrec.tune.search_space`), trains each with ``run_recbole_basrec`` in its own Ray
worker, stops weak trials early on the validation metric, prints a table of all trials and
writes the best configuration as a YAML file that the runner accepts via ``--config_files``::

    from recbole_basrec.tune.search import run_search
    out = run_search("SASRec", "ml-1m", "properties/search/SASRec.hyper", num_samples=8,
                     max_concurrent=2)
    # recbole-basrec --model SASRec --dataset ml-1m --config_files saved/best-SASRec-ml-1m.yaml
"""
import logging
import math
import numbers
import os
import sys
import time

import yaml


#: Trial status in our table: Ray's TERMINATED splits into FINISHED (ran to the end) and
#: STOPPED (ended early by ASHA); ERROR becomes FAILED.
FINISHED, STOPPED, FAILED = "FINISHED", "STOPPED", "FAILED"

# ASHA stops trials that reach max_t; a trial reports once per epoch plus once at the end,
# so max_t must never be the reason a trial ends.
_ASHA_MAX_T = 10**6


def _package_root():
    """The folder holding ``recbole_basrec/``: put on the workers' PYTHONPATH so a plain
    checkout (no ``pip install``) works; harmless when the package is installed."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _plain(value):
    """Numpy scalars/arrays and tuples -> plain Python, so YAML stays loadable anywhere."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy scalar/array, tensor
        return _plain(value.tolist())
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def _flatten(prefix, result):
    """``{'ndcg@10': x}`` -> ``{'test/ndcg@10': float(x)}`` (RecBole result dicts)."""
    return {f"{prefix}/{k}": float(v) for k, v in (result or {}).items() if isinstance(v, numbers.Real)}


def _wants_gpu(settings):
    """RecBole's rule: ``use_gpu`` (default True) and a ``gpu_id`` (default '0'), if CUDA exists."""
    gpu_id = settings.get("gpu_id", "0")
    if not settings.get("use_gpu", True) or gpu_id is None or str(gpu_id).strip() == "":
        return False
    import torch

    return torch.cuda.is_available()


def _make_trainable(model, dataset, config_file_list, config_dict, run_fn, cpus, gpu):
    """The function each Ray worker runs for one trial (a closure, pickled to the workers)."""

    def trainable(params):
        import torch
        from ray import tune

        fn = run_fn
        if fn is None:
            # Imported in the worker so that recbole_basrec registers its models there.
            from recbole_basrec.quick_start import run_recbole_basrec as fn
        torch.set_num_threads(cpus)  # stay within the trial's CPU share
        # RecBole reads "--key=value" from sys.argv; a Ray worker's argv holds Ray's own flags.
        sys.argv = sys.argv[:1]
        trial_dict = {**config_dict, **_plain(params)}  # numpy scalars -> plain Python
        if gpu:
            # Ray already narrowed CUDA_VISIBLE_DEVICES to this trial's GPU; RecBole would
            # overwrite it with gpu_id, so hand it the id Ray chose.
            import ray

            trial_dict["gpu_id"] = ",".join(str(i) for i in ray.get_gpu_ids())

        def callback(epoch_idx, valid_score):
            if math.isfinite(valid_score):  # epochs before valid_start_epoch are not validated
                tune.report({"valid_score": float(valid_score), "epoch": int(epoch_idx)})

        # saved=True: the test result is the best-validation checkpoint's, as the runner reports it.
        result = fn(model, dataset, config_file_list, config_dict=trial_dict, saved=True, callback_fn=callback)
        best = float(result["best_valid_score"])
        final = {"valid_score": best, "best_valid_score": best, "finished": True}
        final.update(_flatten("valid", result.get("best_valid_result")))
        final.update(_flatten("test", result.get("test_result")))
        tune.report(final)

    return trainable


def _trial_collector():
    """A Ray Tune callback keeping the Trial objects (id, config, status, last result) for our table."""
    from ray.tune import Callback

    class TrialCollector(Callback):
        def __init__(self):
            self.trials = {}

        def on_trial_start(self, iteration, trials, trial, **info):
            self.trials[trial.trial_id] = trial

        def on_experiment_end(self, trials, **info):
            for trial in trials:
                self.trials.setdefault(trial.trial_id, trial)

    return TrialCollector()


def _import_ray():
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError:
        raise ValueError(
            "--search needs Ray Tune: pip install \"ray[tune]>=2.41\""
        ) from None


def _error_of(trial):
    """Last line of the trial's error text: the exception, e.g. ``RuntimeError: ...``.

    Current Ray writes the error file to the driver's staging folder (``error_file``) and
    syncs it to the trial's storage (``get_error``) later, so both are tried.
    """
    texts = []
    for read in (lambda: trial.get_error(), lambda: _read_text(trial.error_file),
                 lambda: _read_text(os.path.join(trial.path, trial.error_filename))):
        try:
            texts.append(read())
        except Exception:  # an attribute this Ray version lacks, or a file not synced yet
            continue
    for text in texts:
        lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return "failed (no error file)" if trial.status == "ERROR" else None


def _read_text(path):
    if not path or not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def _trial_record(trial, mode):
    last = dict(trial.last_result or {})
    if trial.status == "ERROR":
        status = FAILED
    elif trial.status == "TERMINATED":
        status = FINISHED if last.get("finished") else STOPPED
    else:
        status = trial.status  # PENDING / RUNNING when the search was interrupted
    best = last.get("best_valid_score")
    if best is None:
        # Stopped early or failed after some epochs: best reported epoch.
        best = (trial.metric_analysis.get("valid_score") or {}).get(mode)
    return {
        "trial_id": trial.trial_id,
        "status": status,
        "params": _plain(dict(trial.config)),
        "best_valid_score": None if best is None or math.isnan(best) else float(best),
        "metrics": {k: float(v) for k, v in last.items() if k.startswith(("test/", "valid/"))},
        "error": _error_of(trial) if status == FAILED else None,
        "path": getattr(trial, "path", None),
    }


def format_table(trials, valid_metric="valid"):
    """A plain-text table of trial records (as returned by :func:`run_search`)."""
    test_keys = [k for k in ("test/ndcg@10", "test/hit@10") if any(k in t["metrics"] for t in trials)]
    if not test_keys:
        test_keys = sorted({k for t in trials for k in t["metrics"] if k.startswith("test/")})[:2]
    header = ["trial", "status", f"best {valid_metric}"] + test_keys + ["params"]
    rows = []
    for t in trials:
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["params"].items())
        if t["error"]:
            params += f"  [{t['error'][:120]}]"
        rows.append([t["trial_id"], t["status"], fmt(t["best_valid_score"])]
                    + [fmt(t["metrics"].get(k)) for k in test_keys] + [params])
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header) - 1)]
    lines = []
    for r in [header] + rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) + "  " + str(r[-1]))
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


#: Seconds to wait for a TCP connection to a ``--ray_address`` before giving up.
_PROBE_TIMEOUT = 5.0


def check_ray_address(address, timeout=_PROBE_TIMEOUT):
    """Refuse a ``HOST:PORT`` address that does not answer, before Ray is contacted: Ray itself
    retries an unreachable address for minutes, printing its own lines. ``auto``, ``local`` and
    addresses with a scheme (``ray://...``) are left to Ray."""
    import socket

    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"ray_address must be HOST:PORT, 'auto' or ray://HOST:PORT, got {address!r}.")
    if address in ("auto", "local") or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # [IPv6]:port
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--ray_address={address} is not HOST:PORT: give the head node's address as `ray start "
                         "--head` prints it, e.g. --ray_address=10.0.0.1:6379 (or auto for the cluster on this machine).")
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise ValueError(f"--ray_address={address}: host '{host}' cannot be resolved ({error}); check the "
                         "address of the cluster's head node.") from None
    why = None
    for family, kind, proto, _, sockaddr in infos:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.settimeout(timeout)
                probe.connect(sockaddr)
            return
        except OSError as error:
            why = "no answer within {:g} s".format(timeout) if isinstance(error, socket.timeout) else \
                (error.strerror or str(error))
    raise ValueError(f"--ray_address={address}: nothing answers at {host}:{port} ({why}); start the cluster "
                     f"(`ray start --head --port={port}` on its head node) or check the address.")


def _join_cluster(ray, address, runtime_env):
    """``ray.init(address=...)``, with a one-line error when the cluster cannot be joined."""
    try:
        ray.init(address=address, runtime_env=runtime_env, logging_level=logging.WARNING)
    except ConnectionError as error:
        cause = error.__cause__  # Ray 2.60: ConnectionError from RuntimeError quoting the AuthenticationError
        while cause is not None and "AuthenticationError" not in f"{type(cause).__name__} {cause}":
            cause = cause.__cause__
        # Ray 2.60's `ray start` turns token auth on once ~/.ray/auth_token exists; a driver given an
        # explicit address does not, unless RAY_AUTH_MODE says so.
        if cause is not None:
            raise ValueError(
                f"the Ray cluster at {address} requires token authentication: set RAY_AUTH_MODE=token (the token is "
                "read from ~/.ray/auth_token or RAY_AUTH_TOKEN) and run again."
            ) from None
        raise ValueError(
            f"cannot join the Ray cluster at {address} ({error}); check --ray_address with `ray status --address={address}`."
        ) from None


def resolve_search_file(name_or_path):
    """A search space's file: a path, or the name of one we ship (``SASRec`` is
    ``properties/search/SASRec.hyper``, wherever the package is installed)."""
    from recbole_basrec.config.files import properties_dir

    given = os.fspath(name_or_path)
    if os.path.isfile(given):
        return os.path.abspath(given)
    folder = os.path.join(properties_dir(), "search")
    shipped = os.path.join(folder, f"{given}.hyper")
    if os.sep not in given and os.path.isfile(shipped):
        return shipped
    names = sorted(f[: -len(".hyper")] for f in os.listdir(folder) if f.endswith(".hyper")) if os.path.isdir(folder) else []
    raise FileNotFoundError(
        f"Search space file '{os.path.abspath(given)}' not found; pass an existing .hyper file or the name of a shipped "
        f"one ({', '.join(names) or 'none installed'}), e.g. --search=SASRec")


def _check_listed_values(space, config, search_file):
    """Every value a ``choice`` or ``grid`` line lists for a declared key is one that key takes."""
    from ray.tune.search.sample import Categorical

    from recbole_basrec.config import schema

    declared = {key.name for key in schema.keys_for(config["model"])}
    for key, sampler in space.items():
        if key not in declared:
            continue
        if isinstance(sampler, dict) and "grid_search" in sampler:
            values = sampler["grid_search"]
        elif isinstance(sampler, Categorical):
            values = sampler.categories
        else:
            continue
        for value in values:
            try:
                schema.check(key, value)
            except ValueError as error:
                raise ValueError(f"Search space '{search_file}': {error}") from None


def _checked_output(output_file, model, dataset):
    """The absolute path the best config goes to; a one-line error if it cannot be written."""
    from recbole_basrec.config.files import unwritable

    if output_file is None:
        output_file = os.path.join(os.getcwd(), "saved", f"best-{model}-{dataset}.yaml")
    output_file = os.path.abspath(os.fspath(output_file))
    if os.path.isdir(output_file):
        raise ValueError(f"--output {output_file} is a directory; give the YAML file to write, e.g. "
                         f"--output={os.path.join(output_file, 'best.yaml')}")
    above = os.path.dirname(output_file)
    while not os.path.exists(above) and os.path.dirname(above) != above:
        above = os.path.dirname(above)
    why = f"{above} is a file, not a folder" if not os.path.isdir(above) else unwritable(os.path.dirname(output_file))
    if why:
        raise ValueError(f"--output {output_file} cannot be written ({why}); choose a file in a folder you can write")
    return output_file


def run_search(
    model,
    dataset,
    search_file,
    config_file_list=None,
    config_dict=None,
    num_samples=4,
    max_concurrent=None,
    ray_address=None,
    output_file=None,
    run_fn=None,
):
    """Search BASRec's hyper-parameters with Ray Tune and save the best configuration.

    Args:
        model (str): a backbone (``SASRec``, ``GRU4Rec``, ``FMLPRec`` or a stock model the generic path serves) or one of our model names.
        dataset (str): RecBole dataset name.
        search_file (str): search-space file, e.g. ``properties/search/SASRec.hyper``.
        config_file_list (list of str): YAML config files for every trial.
        config_dict (dict): overrides for every trial; sampled parameters go over it.
        num_samples (int): configurations to sample (times the size of any ``grid`` lines).
        max_concurrent (int): trials running at once (default: as many as the CPUs allow);
            each trial gets ``max(1, cpu_count // max_concurrent)`` CPUs.
        ray_address (str): join this Ray cluster (e.g. ``"auto"``) instead of a local Ray.
        output_file (str): where to write the best config (default ``saved/best-<model>-<dataset>.yaml``).
        run_fn (callable): trains one trial, with ``run_recbole_basrec``'s signature (default: it).

    Returns:
        dict: ``best_config`` (config_dict with the best parameters, as written),
        ``best_params``, ``best_valid_score``, ``trials`` (one record per trial: ``trial_id``,
        ``status`` FINISHED/STOPPED/FAILED, ``params``, ``best_valid_score``, ``metrics`` such as
        ``test/ndcg@10``, ``error``), ``output_file`` and ``experiment_path`` (Ray's trial logs).

    Ray is always shut down before returning (also on errors and Ctrl-C), unless the caller had
    initialised it already.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be an integer >= 1, got {num_samples!r}; pass e.g. num_samples=4.")
    if max_concurrent is not None and (
        isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1
    ):
        raise ValueError(f"max_concurrent must be None or an integer >= 1, got {max_concurrent!r}.")
    if ray_address is not None:
        check_ray_address(ray_address)  # Ray would retry an unreachable address for minutes
    output_file = _checked_output(output_file, model, dataset)  # before any trial: not after the whole search
    search_file = resolve_search_file(search_file)
    _import_ray()
    from recbole_basrec.tune.search_space import describe, parse_search_space

    space = parse_search_space(search_file)

    # Ray runs each trial in its own working directory: every path must be absolute.
    config_file_list = [os.path.abspath(p) for p in (config_file_list or [])]
    for path in config_file_list:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Config file '{path}' not found; check --config_files.")
    user_dict = dict(config_dict or {})
    from recbole_basrec.config.configurator import closest_key, known_keys
    from recbole_basrec.quick_start.quick_start import build_config

    config = build_config(model, dataset, config_file_list, user_dict)  # every key checked before Ray starts
    known = known_keys(config)
    for key in space:
        if key not in known and config["strict_keys"]:
            hint = closest_key(key, known)
            raise ValueError(f"Search space '{search_file}' tunes unknown key '{key}' for {config['model']}"
                             f"{f'; did you mean {hint}?' if hint else ''}")
    _check_listed_values(space, config, search_file)
    settings = config.final_config_dict
    trial_dict = dict(user_dict)
    trial_dict["data_path"] = os.path.abspath(config.external_config_dict.get("data_path") or "dataset/")
    trial_dict["checkpoint_dir"] = os.path.abspath(config["checkpoint_dir"])
    mode = "max" if config["valid_metric_bigger"] else "min"
    valid_metric = str(config["valid_metric"]).lower()

    cpu_count = os.cpu_count() or 1
    cpus = max(1, cpu_count // max_concurrent) if max_concurrent else 1
    gpu = _wants_gpu(settings)
    resources = {"cpu": cpus, "gpu": 1 if gpu else 0}
    trainable = _make_trainable(model, dataset, config_file_list, trial_dict, run_fn, cpus, gpu)

    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    print(f"Search space ({search_file}): {describe(space)}")
    print(f"{num_samples} sample(s), max_concurrent={max_concurrent}, resources per trial: {resources}")

    collector = _trial_collector()
    experiment = f"basrec-{model}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    storage_path = os.path.join(trial_dict["checkpoint_dir"], "ray_results")
    owns_ray = not ray.is_initialized()
    try:
        if owns_ray:
            pythonpath = os.pathsep.join(p for p in (_package_root(), os.environ.get("PYTHONPATH")) if p)
            runtime_env = {"env_vars": {"PYTHONPATH": pythonpath}}
            if ray_address:
                _join_cluster(ray, ray_address, runtime_env)
            else:
                ray.init(
                    num_cpus=cpu_count,
                    include_dashboard=False,
                    logging_level=logging.WARNING,
                    runtime_env=runtime_env,
                )
        tuner = tune.Tuner(
            tune.with_resources(trainable, resources),
            param_space=space,
            tune_config=tune.TuneConfig(
                metric="valid_score",
                mode=mode,
                scheduler=ASHAScheduler(time_attr="training_iteration", grace_period=1, max_t=_ASHA_MAX_T),
                num_samples=num_samples,
                max_concurrent_trials=max_concurrent,
                reuse_actors=False,  # a fresh process per trial: clean RecBole logging and seeds
            ),
            run_config=tune.RunConfig(
                name=experiment,
                storage_path=storage_path,
                callbacks=[collector],
                # A failing trial is recorded as FAILED; the others go on.
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                verbose=1,
            ),
        )
        tuner.fit()
        # Trial records read their files and results while Ray is still up.
        trials = [_trial_record(t, mode) for _, t in sorted(collector.trials.items())]
    finally:
        if owns_ray:
            ray.shutdown()

    print(format_table(trials, valid_metric))
    scored = [t for t in trials if t["best_valid_score"] is not None and t["status"] != FAILED]
    if not scored:
        errors = "; ".join(f"{t['trial_id']}: {t['error']}" for t in trials if t["error"]) or "no results"
        raise RuntimeError(
            f"All {len(trials)} trials of the search failed ({errors[:500]}); "
            f"see the trial logs under {os.path.join(storage_path, experiment)}"
        )
    # Prefer trials that ran to the end (they have test results) among equal scores.
    sign = 1 if mode == "max" else -1
    best = max(scored, key=lambda t: (sign * t["best_valid_score"], t["status"] == FINISHED))
    best_config = _plain({**user_dict, **best["params"]})
    os.makedirs(os.path.dirname(output_file), exist_ok=True)
    with open(output_file, "w", encoding="utf-8") as f:
        f.write(
            f"# Best of {len(trials)} trials for {model} on {dataset} (search space {search_file}):\n"
            f"# trial {best['trial_id']}, best valid score {best['best_valid_score']:.6g}.\n"
        )
        yaml.safe_dump(best_config, f, default_flow_style=False, sort_keys=False)
    print(f"Best trial {best['trial_id']} (best valid {best['best_valid_score']:.4f}): "
          + ", ".join(f"{k}={v}" for k, v in best["params"].items()))
    print(f"Best config written to {output_file}")
    return {
        "best_config": best_config,
        "best_params": best["params"],
        "best_valid_score": best["best_valid_score"],
        "trials": trials,
        "output_file": output_file,
        "experiment_path": os.path.join(storage_path, experiment),
    }

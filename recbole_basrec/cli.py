"""Train a RecBole sequential model with BASRec (or tune it with Ray Tune).

    recbole-basrec                                  # BASRec + SASRec on ml-100k
    recbole-basrec --model=GRU4Rec --dataset=Beauty --epochs=50
    recbole-basrec --basrec=False                   # the plain backbone, same pipeline
    recbole-basrec --search=SASRec --num_samples=4
    recbole-basrec compare --seeds 2020 2021 2022   # plain against BASRec from one stage 1, a table over seeds
    recbole-basrec --nproc=2                        # 2 processes (GPUs: NCCL, else gloo); distributed.md below
    torchrun --nproc_per_node=2 run_recbole_basrec.py   # the same, started by torchrun

Any RecBole ``--key=value`` on the command line overrides the config files.
"""
import argparse
import contextlib
import sys

DEFAULT_MODEL, DEFAULT_DATASET = "SASRec", "ml-100k"


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad option as one line (the runner's ``error: ...``) instead of the usage text."""

    def error(self, message):
        raise ValueError(f"{message} (see {self.prog} --help)")


#: Options whose empty value (``--model=``) would silently mean their default: ``(example, what
#: leaving the option out means)``.
_NEEDS_VALUE = {
    "model": ("SASRec", f"the default, {DEFAULT_MODEL}"), "dataset": ("ml-100k", f"the default, {DEFAULT_DATASET}"),
    "config_files": ("my.yaml", "no files"), "search": ("SASRec", "a run without a search"),
    "output": ("best.yaml", "saved/best-<model>-<dataset>.yaml"), "resume": ("saved/<run>-last.pth", "a new run"),
    "ray_address": ("auto", "a local Ray"), "out": ("compare.json", "<run folder>/compare.json"),
}
#: Options that only a search (``--search``) reads.
_SEARCH_ONLY = ("num_samples", "max_concurrent", "output", "ray_address")


class _Once(argparse.Action):
    """An option that may be given once: a second value is an error, not a silent override."""

    def __call__(self, parser, namespace, values, option_string=None):
        if values == "" and self.dest in _NEEDS_VALUE:
            example, default = _NEEDS_VALUE[self.dest]
            parser.error(f"{option_string}= has no value: write {option_string}={example}, or drop "
                         f"{option_string} for {default}")
        seen = getattr(namespace, "_given", set())
        if self.dest in seen:
            parser.error(f"{option_string} is given twice ({getattr(namespace, self.dest)} and {values}); give it once")
        namespace._given = seen | {self.dest}
        setattr(namespace, self.dest, values)


def parse_args(argv=None):
    """The runner's own options and every ``--key=value`` (a key given twice is an error); the
    configuration keys of ``--help`` come from the schema."""
    from recbole_basrec.config.command_line import parse_overrides
    from recbole_basrec.config.reference import help_epilog

    parser = _Parser(
        prog="recbole-basrec", description=__doc__, epilog=help_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--model", "-m", action=_Once, default=None,
                        help=f"a backbone (SASRec, GRU4Rec, FMLPRec or a stock RecBole model the generic path "
                             f"serves, e.g. NARM; BASRec applied) or one of our model names (BASRecNARM, ...); "
                             f"default {DEFAULT_MODEL}, on --resume the checkpoint's")
    parser.add_argument("--dataset", "-d", action=_Once, default=None,
                        help=f"RecBole dataset name under data_path; default {DEFAULT_DATASET}, on --resume the checkpoint's")
    parser.add_argument("--config_files", action=_Once, default=None, help="space-separated YAML files")
    parser.add_argument("--search", action=_Once, default=None, help="a search space (a shipped one by name, e.g. SASRec, or a .hyper file): run a Ray Tune search instead")
    parser.add_argument("--num_samples", action=_Once, type=int, default=4, help="trials of the search")
    parser.add_argument("--max_concurrent", action=_Once, type=int, default=None, help="trials running at once")
    parser.add_argument("--ray_address", action=_Once, default=None, help="join this Ray cluster (default: local Ray)")
    parser.add_argument("--output", action=_Once, default=None, help="YAML file for the search's best config")
    parser.add_argument("--resume", action=_Once, default=None,
                        help="continue an interrupted run from its -last.pth checkpoint (its model, dataset and "
                             "settings; --epochs may change how many the stage runs in all)")
    _launch_arguments(parser)
    args, rest = parser.parse_known_args(argv)
    stray = [f"--{key}" for key in _SEARCH_ONLY if key in getattr(args, "_given", ())]
    if stray and not args.search:
        raise ValueError(f"{' and '.join(stray)} {'has' if len(stray) == 1 else 'have'} no effect without --search: "
                         "add --search=SPACE (e.g. --search=SASRec) to run a Ray Tune search, or drop "
                         f"{'it' if len(stray) == 1 else 'them'}.")
    overrides = parse_overrides(rest)
    if not args.resume:
        args.model, args.dataset = _settled(args, overrides)
    return args, overrides


def _settled(args, overrides):
    """``--model``/``--dataset``, else a config file's ``model:``/``dataset:``, else the defaults."""
    from recbole_basrec.quick_start.quick_start import settle

    files = args.config_files.split() if args.config_files else None
    return settle(args.model, args.dataset, files, overrides, DEFAULT_MODEL, DEFAULT_DATASET)


def parse_compare_args(argv):
    """``compare``'s options, then every ``--key=value`` as for a run."""
    from recbole_basrec.config.command_line import parse_overrides
    from recbole_basrec.quick_start.compare import DEFAULT_SEEDS, __doc__ as doc

    parser = _Parser(prog="recbole-basrec compare", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.add_argument("--model", "-m", action=_Once, default=None, help=f"a backbone (default {DEFAULT_MODEL})")
    parser.add_argument("--dataset", "-d", action=_Once, default=None, help=f"default {DEFAULT_DATASET}")
    parser.add_argument("--config_files", action=_Once, default=None, help="space-separated YAML files")
    parser.add_argument("--seeds", action=_Once, nargs="+", type=int, default=list(DEFAULT_SEEDS),
                        help="one plain run and one run per method for each seed; stage 1 trains under the first "
                             f"(default {' '.join(map(str, DEFAULT_SEEDS))})")
    parser.add_argument("--methods", action=_Once, nargs="+", default=None, metavar="METHOD",
                        help="augmentation methods compared with plain training, from one shared stage 1: basrec, "
                             "ran, ran_s, slide_window, cmr, cmrsi, cl4srec (default basrec)")
    parser.add_argument("--out", action=_Once, default=None, help="JSON record (default <run folder>/compare.json)")
    _launch_arguments(parser)
    args, rest = parser.parse_known_args(argv)
    overrides = parse_overrides(rest)
    if "resume" in overrides:
        parser.error("compare has no --resume: run the same compare command again and it continues where it stopped")
    if "search" in overrides:
        parser.error("compare has no --search: run the search alone (recbole-basrec --search=...), then compare with "
                     "its best config (--config_files=<the search's --output>)")
    args.model, args.dataset = _settled(args, overrides)
    for method in args.methods or ():
        if "," in method:
            parser.error(f"--methods {method}: separate the methods with spaces, e.g. --methods basrec cmr")
    return args, overrides


def _launch_arguments(parser):
    """Several processes (distributed.md); RecBole's names and meanings."""
    parser.add_argument("--nproc", action=_Once, type=int, default=None, help="training processes on this machine (one per GPU)")
    parser.add_argument("--world_size", action=_Once, type=int, default=None, help="processes on all machines (default: --nproc)")
    parser.add_argument("--ip", action=_Once, default=None, help="address of the machine running rank 0 (default: localhost)")
    parser.add_argument("--port", action=_Once, default=None, help="free TCP port on that machine (default: 5678)")
    parser.add_argument("--offset", action=_Once, type=int, default=None, help="global rank of this machine's first process")


def compare(argv):
    import shlex

    from recbole_basrec.quick_start.compare import run_compare

    args, config_dict = parse_compare_args(argv)
    files = args.config_files.split() if args.config_files else None
    command = "recbole-basrec compare " + " ".join(shlex.quote(a) for a in argv)
    settings = _launch(args)
    if not settings:
        run_compare(args.model, args.dataset, args.seeds, config_file_list=files, config_dict=config_dict,
                    out=args.out, command=command, methods=args.methods)
        return 0
    from recbole_basrec import distributed
    from recbole_basrec.quick_start.quick_start import build_config

    config_dict = distributed.default_gpu_ids(config_dict, settings["nproc"])
    from recbole_basrec.config.configurator import effect_checks_off

    with effect_checks_off():  # run_compare checks each key against every arm
        config = build_config(args.model, args.dataset, files, config_dict)  # bad input fails here, once
    distributed.check_launch(config, settings)
    job = {"seeds": args.seeds, "out": args.out, "command": command, "methods": args.methods}
    if settings["torchrun"]:
        keys = {k: settings[k] for k in ("local_rank", *distributed.LAUNCH_KEYS)}
        run_compare(args.model, args.dataset, config_file_list=files, config_dict={**config_dict, **keys}, **job)
        return 0
    if settings["offset"] == 0:
        print(distributed.describe(settings, config), flush=True)
    from recbole_basrec.distributed import launch

    launch.spawn(args.model, args.dataset, files, config_dict, settings, checkpoint_dir=config["checkpoint_dir"],
                 compare=job)
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        return compare(argv[1:])
    if "compare" in argv:
        raise ValueError("compare is a command: put it first, e.g. recbole-basrec compare --epochs=1")
    for arg in argv:
        option = arg.split("=", 1)[0]
        if option in ("--seeds", "--methods", "--out"):
            raise ValueError(f"{option} is an option of the compare command: recbole-basrec compare {option} ...")
    # Overrides go in explicitly: Ray's trial workers never see this command line.
    args, config_dict = parse_args(argv)

    files = args.config_files.split() if args.config_files else None
    if args.search:
        from recbole_basrec.tune.search import run_search

        if _launch(args):
            raise ValueError("a Ray Tune trial trains in one process (one GPU): drop --nproc/--world_size or torchrun, "
                             "and run trials side by side with --max_concurrent.")

        run_search(
            args.model,
            args.dataset,
            args.search,
            config_file_list=files,
            config_dict=config_dict,
            num_samples=args.num_samples,
            max_concurrent=args.max_concurrent,
            ray_address=args.ray_address,
            output_file=args.output,
        )
        return 0

    from recbole_basrec.quick_start import run_recbole_basrec

    launch = _launch(args)
    if not launch and "launch_timeout" in config_dict:
        raise ValueError("launch_timeout has no effect with one process: add --nproc=N (or --world_size=N), or drop it.")
    if args.resume and config_dict.get("epochs") == 0:
        raise ValueError("--epochs=0 with --resume trains nothing more: to test a run's best model, give it as "
                         "--pretrained_path=<best .pth> --epochs=0 without --resume.")
    result = _train(args, files, config_dict) if launch else run_recbole_basrec(
        args.model, args.dataset, config_file_list=files, config_dict=config_dict, resume_file=args.resume
    )
    if result is None:  # a rank other than 0: rank 0 prints
        return 0
    for label, metrics in (("best valid", result["best_valid_result"]), ("test      ", result["test_result"])):
        print(f"{label}: {({name: float(value) for name, value in (metrics or {}).items()})}")  # not np.float64(...)
    if result.get("saved_model_file"):
        print(f"best model: {result['saved_model_file']}")
    return 0


def _launch(args):
    from recbole_basrec import distributed

    return distributed.launch_settings(args.nproc, args.world_size, args.ip, args.port, args.offset)


def _train(args, files, config_dict):
    """Several processes: spawned here (``--nproc``), or this is one of torchrun's."""
    from recbole_basrec import distributed
    from recbole_basrec.quick_start import run_recbole_basrec
    from recbole_basrec.quick_start.quick_start import (build_config, check_same_data,
                                                     resume_settings_and_data)

    settings = _launch(args)
    config_dict = distributed.default_gpu_ids(config_dict, settings["nproc"])
    model, dataset, checked, recorded_data = args.model, args.dataset, config_dict, None
    if args.resume:  # the checkpoint's model, dataset and settings
        model, dataset, checked, recorded_data = resume_settings_and_data(args.resume, model, dataset, files,
                                                                          config_dict)
    from recbole_basrec.config.configurator import effect_checks_off

    with effect_checks_off() if args.resume else contextlib.nullcontext():  # a snapshot holds every key
        config = build_config(model, dataset, None if args.resume else files, checked)  # bad input fails here, once
    if args.resume:
        check_same_data(args.resume, recorded_data, config)
    distributed.check_launch(config, settings)
    main_process = not settings["torchrun"] or settings["offset"] + settings["local_rank"] == 0
    if main_process:
        print(distributed.describe(settings, config), flush=True)
    if settings["torchrun"]:
        keys = {k: settings[k] for k in ("local_rank", *distributed.LAUNCH_KEYS)}
        result = run_recbole_basrec(args.model, args.dataset, config_file_list=files,
                                    config_dict={**config_dict, **keys}, resume_file=args.resume)
        return result if main_process else None
    from recbole_basrec.distributed import launch

    return launch.spawn(args.model, args.dataset, files, config_dict, settings, resume_file=args.resume,
                             checkpoint_dir=config["checkpoint_dir"])


def _raised(error, module, name):
    """``error`` is a ``module.name``; a module not imported yet raised nothing (so ``--help`` and
    early errors load no torch)."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(error, getattr(loaded, name))


def cli(argv=None):
    """``main`` with the runner's exit codes: 0 done, 2 bad input (one line on stderr), 130 Ctrl-C,
    1 a training process died (one line naming it and the checkpoint to resume from)."""
    import signal

    import recbole_basrec

    def stop(signum, frame):  # `kill` (SIGTERM) stops a run as Ctrl-C does: it names what was saved
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        recbole_basrec.setup()
        return main(argv)
    except ImportError as error:  # recbole missing or at another version: the message says what to install
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted before training started", file=sys.stderr)
        return 130
    except Exception as error:
        if _raised(error, "recbole_basrec.quick_start.quick_start", "Interrupted"):
            print(error, file=sys.stderr)
            return 130
        if _raised(error, "recbole_basrec.distributed.launch", "RankFailed") or \
                _raised(error, "recbole_basrec.trainer.checkpoint", "DiskFull"):
            print(f"error: {error}", file=sys.stderr)
            return 1
        if isinstance(error, (ValueError, FileNotFoundError, NotImplementedError)):
            print(f"error: {error}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(cli())

"""Train a RecBole sequential model with BASRec (or tune it with Ray Tune).

    recbole-basrec                                  # BASRec + SASRec on ml-100k
    recbole-basrec --model=GRU4Rec --dataset=Beauty --epochs=50
    recbole-basrec --basrec=False                   # the plain backbone, same pipeline
    recbole-basrec --search=properties/search/SASRec.hyper --num_samples=4

Any RecBole ``--key=value`` on the command line overrides the config files.
"""
import argparse
import sys

DEFAULT_MODEL, DEFAULT_DATASET = "SASRec", "ml-100k"


def parse_args(argv=None):
    from recbole_basrec.config.command_line import parse_overrides
    from recbole_basrec.config.reference import help_epilog

    parser = argparse.ArgumentParser(
        description=__doc__, epilog=help_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--model", "-m", default=None,
                        help=f"a backbone (SASRec, GRU4Rec, FMLPRec or a stock RecBole model the generic path "
                             f"serves, e.g. NARM; BASRec applied) or one of our model names (BASRecNARM, ...) "
                             f"(default {DEFAULT_MODEL}; on --resume, the checkpoint's)")
    parser.add_argument("--dataset", "-d", default=None,
                        help=f"RecBole dataset name under data_path (default {DEFAULT_DATASET}; on --resume, the checkpoint's)")
    parser.add_argument("--config_files", default=None, help="space-separated YAML files")
    parser.add_argument("--search", default=None, help="search-space file: run a Ray Tune search instead")
    parser.add_argument("--num_samples", type=int, default=4, help="trials of the search")
    parser.add_argument("--max_concurrent", type=int, default=None, help="trials running at once")
    parser.add_argument("--ray_address", default=None, help="join this Ray cluster (default: local Ray)")
    parser.add_argument("--output", default=None, help="YAML file for the search's best config")
    parser.add_argument("--resume", default=None, help="continue an interrupted run from its -last.pth checkpoint")
    args, rest = parser.parse_known_args(argv)
    return args, parse_overrides(rest)


def main(argv=None):
    # Overrides go in explicitly: Ray's trial workers never see this command line.
    args, config_dict = parse_args(argv)
    if not args.resume:
        args.model, args.dataset = args.model or DEFAULT_MODEL, args.dataset or DEFAULT_DATASET
    files = args.config_files.split() if args.config_files else None
    if args.search:
        from recbole_basrec.tune.search import run_search

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

    result = run_recbole_basrec(
        args.model, args.dataset, config_file_list=files, config_dict=config_dict, resume_file=args.resume
    )
    for label, metrics in (("best valid", result["best_valid_result"]), ("test      ", result["test_result"])):
        print(f"{label}: {({name: float(value) for name, value in (metrics or {}).items()})}")  # not np.float64(...)
    return 0


def cli(argv=None):
    """``main`` with the runner's exit codes: 0 done, 2 bad input (one line on stderr), 130 Ctrl-C."""
    try:
        import recbole_basrec

        recbole_basrec.setup()
        from recbole_basrec.quick_start.quick_start import Interrupted
    except ImportError as error:  # recbole missing or at another version: the message says what to install
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        return main(argv)
    except Interrupted as stop:
        print(stop, file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted before training started", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, NotImplementedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(cli())

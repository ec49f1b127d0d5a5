"""``python -m benchmarks {speed,accuracy,models,tta,table} ...`` from the repository root: see
``--help`` of each job. Ctrl-C stops a job with exit code 130 and one line naming what it saved."""
import argparse
import shlex
import sys

from benchmarks import common
from benchmarks.accuracy import ARMS as ACCURACY_ARMS

MODELS = ("SASRec", "GRU4Rec", "FMLPRec")


def _data_args(parser):
    parser.add_argument("--dataset", default="Beauty",
                        help="dataset name (default Beauty; ml-100k needs no conversion)")
    parser.add_argument("--data_file", default=None,
                        help="paper-format source file (default <repo>/../shared/data/<dataset>.txt)")
    parser.add_argument("--data_path", default=None,
                        help="RecBole data_path already holding <dataset>/<dataset>.inter (skips conversion)")
    parser.add_argument("--cache_dir", default=None, help="where converted files go (default <repo>/dataset)")
    parser.add_argument("--out", default=common.DEFAULT_OUT, help="output folder for JSON and PNG (default results/)")
    parser.add_argument("--tag", default=None, help="suffix of the output file names")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--loss_type", default="BCE", choices=("BCE", "CE", "BPR"),
                        help="default BCE (the reference's)")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description="Speed and accuracy benchmarks of BASRec.")
    sub = parser.add_subparsers(dest="job", required=True)

    speed = sub.add_parser("speed", help="training-step time and memory, plain vs BASRec")
    speed.add_argument("--model", "--models", dest="models", nargs="+", default=None, choices=MODELS,
                       help="default SASRec; with --reference SASRec GRU4Rec")
    speed.add_argument("--modes", nargs="+", default=["sequence", "prefix"], choices=("sequence", "prefix"))
    speed.add_argument("--batch_size", type=int, default=256)
    speed.add_argument("--max_len", type=int, default=50)
    speed.add_argument("--n_pairs", type=int, default=2)
    speed.add_argument("--n_whole_level", type=int, default=3)
    speed.add_argument("--warmup", type=int, default=3)
    speed.add_argument("--steps", type=int, default=20, help="timed batches (each timed plain and BASRec)")
    speed.add_argument("--full_epochs", action="store_true", help="measure prefix-mode epochs too (slow)")
    speed.add_argument("--no_epochs", action="store_true",
                       help="estimate every epoch from the median step time (no full epoch is run)")
    speed.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    speed.add_argument("--similarity_repeats", type=int, default=3)
    speed.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides",
                       help="config keys for the measured model, e.g. csa_partner_padding=zero (give it a --tag)")
    speed.add_argument("--reference", default=None, metavar="PATH",
                       help="a checkout of the authors' code (KingGugu/BASRec): time their stage-2 training "
                            "and ours side by side at the published Beauty settings (docs/speed.md)")
    speed.add_argument("--pairs", type=int, default=3, help="with --reference: interleaved authors/ours pairs")
    speed.add_argument("--thread_counts", type=int, nargs="+", default=[1, 2],
                       help="with --reference: thread counts to measure (default 1 2)")
    _data_args(speed)

    scale = sub.add_parser("scale", help="loading, similarity, epoch, evaluation and memory against data size (synthetic)")
    scale.add_argument("--points", nargs="+", default=["1e4:2e5:1e4", "3e4:6e5:3e4", "1e5:2e6:1e5"],
                       metavar="USERS:INTERACTIONS:ITEMS", help="synthetic data sizes, e.g. 1e6:2e7:1e5")
    scale.add_argument("--steps", type=int, default=10, help="timed training steps per point")
    scale.add_argument("--warmup", type=int, default=2)
    scale.add_argument("--eval_batches", type=int, default=5, help="timed full-ranking validation batches per point")
    scale.add_argument("--threads", type=int, default=1)
    scale.add_argument("--seed", type=int, default=0)
    scale.add_argument("--out", default=common.DEFAULT_OUT, help="output folder (default results/)")
    scale.add_argument("--tag", default=None, help="suffix of the output file names")
    scale.add_argument("--resume", action="store_true",
                       help="keep the points already in the record (same request and settings), measure the rest")
    acc = sub.add_parser("accuracy", help="stage 1, then plain vs BASRec from the same checkpoint")
    acc.add_argument("--model", default="SASRec", choices=MODELS)
    acc.add_argument("--budget", default="reduced", choices=("reduced", "full", "published"),
                     help="published: the authors' stage-2 schedule and settings from properties/preset/")
    acc.add_argument("--from_reference", nargs="?", const=True, default=False, metavar="PATH",
                     help="stage 1 = the authors' checkpoint: PATH, or without it "
                          "<repo>/../shared/data/reference/<model>-<dataset>-stage1.pt")
    acc.add_argument("--stage1_epochs", type=int, default=None, help="override the budget's stage-1 epochs")
    acc.add_argument("--stage2_epochs", type=int, default=None, help="override the budget's stage-2 epochs")
    acc.add_argument("--arms", nargs="+", default=list(ACCURACY_ARMS), choices=ACCURACY_ARMS,
                     help="stage-2 arms this process trains; once stage 1 has finished, a second process with "
                          "the other arm runs it side by side (same checkpoint_dir)")
    acc.add_argument("--stage2", nargs="+", default=[], metavar="KEY=VALUE",
                     help="config keys set in both stage-2 arms only, e.g. hidden_dropout_prob=0.1 "
                          "n_pairs=2 (values read as YAML); give such a run its own --tag")
    acc.add_argument("--stage1", nargs="+", default=[], metavar="KEY=VALUE",
                     help="config keys set in stage 1 only, over the budget's, e.g. valid_start_epoch=0 for a "
                          "published budget shortened with --stage1_epochs")
    acc.add_argument("--checkpoint_dir", default=None,
                     help="default saved/<output name>; running the same command again resumes at the first unfinished phase")
    _data_args(acc)

    models = sub.add_parser("models", help="plain vs BASRec for served RecBole models, reduced budget")
    models.add_argument("--models", nargs="+", default=["NARM", "STAMP", "LightSANs", "SHAN", "FOSSIL", "SINE"])
    models.add_argument("--stage1_epochs", type=int, default=4, help="plain epochs both arms start from")
    models.add_argument("--stage2_epochs", type=int, default=2, help="epochs of each arm after stage 1")
    models.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="config keys for every model and arm after the job's own, e.g. hidden_dropout_prob=0.2 "
                             "(values read as YAML; give such a run its own --tag)")
    _data_args(models)

    tta = sub.add_parser("tta", help="no TTA vs TNoise vs TMask on trained models (valid and test)")
    tta.add_argument("--models", nargs="+", default=["SASRec", "GRU4Rec"], choices=MODELS)
    tta.add_argument("--checkpoint", default=None,
                     help="trained checkpoint (default: the authors' stage-1 one in <repo>/../shared/data/reference/)")
    tta.add_argument("--variants", nargs="+", default=None, help="names from benchmarks.tta.VARIANTS")
    _data_args(tta)

    table = sub.add_parser("table", help="markdown tables of the JSON records: published vs ours, plain vs BASRec")
    table.add_argument("paths", nargs="*", help="results/accuracy-*.json written by the accuracy job")
    table.add_argument("--summary", action="store_true",
                       help="one row per backbone and dataset: seed means at @10, published and plain beside")
    table.add_argument("--pages", action="store_true",
                       help="rewrite results/{accuracy,models,speed,tta}.md from every JSON record in --out")
    table.add_argument("--out", default=common.DEFAULT_OUT, help="results folder of --pages (default results/)")
    return parser


def _key_values(parser, words, flag="--set"):
    """``['a=1', 'b=x']`` -> ``{'a': 1, 'b': 'x'}`` (values read as YAML, as RecBole reads its command line)."""
    import yaml

    pairs = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            parser.error(f"{flag} takes KEY=VALUE pairs, got '{word}' (e.g. {flag} hidden_dropout_prob=0.1)")
        if key in pairs:
            parser.error(f"{flag} gives {key} twice; give each key once")
        try:
            pairs[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            parser.error(f"{flag} {key}: '{value}' is not a YAML value (quote strings with spaces or colons)")
    return pairs


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.job == "table":
        from benchmarks.report import run_table, write_pages

        try:
            if args.pages:
                for path in write_pages(args.out):
                    print(f"wrote {path}")
            elif not args.paths:
                parser.error("table needs accuracy JSON paths, or --pages")
            else:
                run_table(args.paths, summary=args.summary)
        except common.BadRequest as error:
            parser.exit(2, f"error: {error}\n")
        return 0
    import importlib.util

    if args.job in ("speed", "accuracy", "models") and importlib.util.find_spec("matplotlib") is None:
        parser.exit(2, 'error: the benchmark jobs plot their records with matplotlib: pip install -e ".[bench]"\n')
    words = ["python", "-m", "benchmarks"] + list(sys.argv[1:] if argv is None else argv)
    common.COMMAND = " ".join(shlex.quote(w) for w in words)
    # RecBole's Config also parses sys.argv ('--key=value'): keep our flags away from it.
    sys.argv = sys.argv[:1] if argv is None else sys.argv
    from recbole_basrec.quick_start.compare import CompareError
    from recbole_basrec.quick_start.quick_start import Interrupted

    try:
        import recbole_basrec  # noqa: F401  (registers the models)

        if args.job == "speed" and args.reference:
            from benchmarks.reference import run_reference_speed
            models = [m for m in (args.models or ["SASRec", "GRU4Rec"]) if m != "FMLPRec"]
            run_reference_speed(args.reference, models=models, threads=args.thread_counts, pairs=args.pairs,
                                warmup=args.warmup, steps=args.steps, data_file=args.data_file, out_dir=args.out,
                                tag=args.tag, overrides=_key_values(parser, args.overrides))
        elif args.job == "speed":
            from benchmarks.speed import run_speed

            run_speed(
                models=args.models or ["SASRec"], modes=args.modes, dataset=args.dataset, batch_size=args.batch_size,
                max_len=args.max_len, n_pairs=args.n_pairs, n_whole_level=args.n_whole_level,
                loss_type=args.loss_type, warmup=args.warmup, steps=args.steps, full_epochs=args.full_epochs,
                measure_epochs=not args.no_epochs, threads=args.threads,
                similarity_repeats=args.similarity_repeats, seed=args.seed, data_file=args.data_file,
                data_path=args.data_path, cache_dir=args.cache_dir, out_dir=args.out, tag=args.tag,
                overrides=_key_values(parser, args.overrides),
            )
        elif args.job == "scale":
            from benchmarks.scale import run_scale
            points = []
            for p in args.points:
                try:
                    points.append(tuple(int(float(x)) for x in p.split(":")))
                except ValueError:
                    parser.error(f"--points takes USERS:INTERACTIONS:ITEMS, got '{p}'")
                if len(points[-1]) != 3:
                    parser.error(f"--points takes USERS:INTERACTIONS:ITEMS, got '{p}'")
            run_scale(points, steps=args.steps, warmup=args.warmup, eval_batches=args.eval_batches,
                      threads=args.threads, seed=args.seed, out_dir=args.out, tag=args.tag,
                      resume=args.resume)
        elif args.job == "models":
            from benchmarks.models import run_models

            run_models(models=args.models, dataset=args.dataset, stage1_epochs=args.stage1_epochs,
                       stage2_epochs=args.stage2_epochs, seed=args.seed, loss_type=args.loss_type,
                       data_file=args.data_file, data_path=args.data_path, cache_dir=args.cache_dir,
                       out_dir=args.out, tag=args.tag, overrides=_key_values(parser, args.overrides))
        elif args.job == "tta":
            from benchmarks.tta import run_tta

            run_tta(models=args.models, dataset=args.dataset, checkpoint=args.checkpoint, variants=args.variants,
                    seed=args.seed, data_file=args.data_file, data_path=args.data_path, cache_dir=args.cache_dir,
                    out_dir=args.out, tag=args.tag)
        else:
            from benchmarks.accuracy import budget_settings, run_accuracy

            budget = args.budget
            if args.stage1_epochs is not None or args.stage2_epochs is not None:
                budget = dict(budget_settings(args.budget, args.model), name=args.budget)
                if args.stage1_epochs is not None:
                    budget["stage1_epochs"] = args.stage1_epochs
                if args.stage2_epochs is not None:
                    budget["stage2_epochs"] = args.stage2_epochs
            run_accuracy(
                stage2_config=_key_values(parser, args.stage2, "--stage2"),
                stage1_config=_key_values(parser, args.stage1, "--stage1"),
                model=args.model, dataset=args.dataset, budget=budget, seed=args.seed, loss_type=args.loss_type,
                data_file=args.data_file, data_path=args.data_path, cache_dir=args.cache_dir, out_dir=args.out,
                checkpoint_dir=args.checkpoint_dir, tag=args.tag, from_reference=args.from_reference,
                arms=args.arms,
            )
    except common.DatasetMissing as error:
        print(common.skip_message(args.job, error))
    except (common.BadRequest, CompareError) as error:  # the comparison under a job refuses in one line too
        parser.exit(2, f"error: {error}\n")
    except KeyboardInterrupt:
        print(f"interrupted: saved {common.SAVED or 'nothing yet'}", file=sys.stderr)
        return 130
    except Interrupted as stop:  # a comparison's phase stopped: its own line says what it kept
        print(stop, file=sys.stderr)
        return 130
    finally:
        common.SAVED = None
        if argv is not None:  # called as a function (tests): leave no trace in later records
            common.COMMAND = None
    return 0


if __name__ == "__main__":
    sys.exit(main())

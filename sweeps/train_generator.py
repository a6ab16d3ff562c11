"""Train one learned phase generator on genTrain/genVal with Ray Train (DDP), log it, register it.

    python sweeps/train_generator.py --generator sbdm                      # demo data, tiny net, CPU
    python sweeps/train_generator.py --generator sbdm --config knee --data-root /data/knee \\
        --workers 4 --set generators.sbdm.train.steps=200000 --ray-address auto
"""

import dataclasses
import sys

from phaselab.sweep_cli import exit_on_data_error, load_or_exit, mlflow_ui_hint, print_dry_run, sweep_parser


def main(argv: list[str] | None = None) -> int:
    parser = sweep_parser("Train a phase generator (sbdm, gan, phasegen) with Ray Train.")
    parser.add_argument("--generator", required=True, help="sbdm, gan or phasegen")
    parser.add_argument("--workers", type=int, help="Ray Train workers (default: generators.<name>.workers)")
    args = parser.parse_args(argv)
    if args.workers:
        args.overrides.append(f"generators.{args.generator}.workers={args.workers}")
    config = load_or_exit(args)
    if args.dry_run:
        generator = config.generators.get(args.generator)
        print_dry_run(
            config, [{"generator": args.generator, **(dataclasses.asdict(generator) if generator else {})}]
        )
        return 0

    from phaselab.orchestration.sweep import generator_checkpoint, open_sweep

    def train():
        ctx = open_sweep(
            config,
            print,
            kind=f"train-{args.generator}",
            key_extra={"generator": args.generator},
            synthesize=False,
        )
        with ctx.tracker.closed_on_error(ctx.parent_id):
            return ctx, generator_checkpoint(ctx, args.generator, print)

    ctx, path = exit_on_data_error(config, train)
    if path is None:
        print(f"{args.generator!r} learns nothing: choose a learned generator (sbdm, gan, phasegen)")
        return 2
    ctx.tracker.end_run(ctx.parent_id, "FINISHED")
    print(f"generator saved to {path}; registered in MLflow as phaselab-{args.generator}")
    print(f"  browse: {mlflow_ui_hint(ctx.tracking_uri)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

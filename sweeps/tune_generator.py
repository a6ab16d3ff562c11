"""Search a generator's hyperparameters on genVal (Optuna + ASHA); the best model is registered.

python sweeps/tune_generator.py --generator sbdm --samples 8
"""

import sys

from phaselab.orchestration.generator_search import run_generator_search
from phaselab.sweep_cli import exit_on_data_error, load_or_exit, print_dry_run, sweep_parser


def main(argv: list[str] | None = None) -> int:
    parser = sweep_parser("Tune a phase generator's hyperparameters on genVal with Optuna + ASHA.")
    parser.add_argument("--generator", required=True, help="sbdm, gan or phasegen")
    parser.add_argument("--samples", type=int, default=8, help="number of Optuna trials")
    args = parser.parse_args(argv)
    config = load_or_exit(args)
    if args.dry_run:
        from phaselab.orchestration.generator_search import default_space

        print_dry_run(config, [{k: str(v) for k, v in default_space(args.generator).items()}])
        return 0
    result = exit_on_data_error(
        config, lambda: run_generator_search(config, args.generator, num_samples=args.samples)
    )
    print(f"best val_loss {result.best_val_loss:.4g} with {result.best_params}")
    print(f"registered as phaselab-{args.generator} v{result.registered_version} ({result.checkpoint})")
    print(
        f"use it in the grid: --set generators.{args.generator}.registered=phaselab-{args.generator}/"
        f"{result.registered_version}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

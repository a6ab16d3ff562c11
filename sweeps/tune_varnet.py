"""Search VarNet hyperparameters (lr, cascades, chans, batch size) on recVal with Optuna + ASHA.

python sweeps/tune_varnet.py --source gt --acceleration 6 --num-acs 4 --samples 8
python sweeps/tune_varnet.py --config knee --data-root /data/knee --source gt --acceleration 4 --num-acs 16
"""

import sys

from phaselab.orchestration.varnet_search import run_varnet_search
from phaselab.sweep_cli import exit_on_data_error, load_or_exit, print_dry_run, sweep_parser


def main(argv: list[str] | None = None) -> int:
    parser = sweep_parser("Tune VarNet hyperparameters for one phase source / R / nACS.")
    parser.add_argument("--source", default="gt", help="phase source of the training k-space (default gt)")
    parser.add_argument("--acceleration", type=int, default=4)
    parser.add_argument("--num-acs", type=int, default=None, help="default: the config's first nACS")
    parser.add_argument("--samples", type=int, default=16, help="number of Optuna trials")
    args = parser.parse_args(argv)
    config = load_or_exit(args)
    num_acs = args.num_acs or config.grid.num_acs[0]
    if args.dry_run:
        print_dry_run(
            config,
            [
                {
                    "source": args.source,
                    "acceleration": args.acceleration,
                    "num_acs": num_acs,
                    "samples": args.samples,
                }
            ],
        )
        return 0
    result = exit_on_data_error(
        config,
        lambda: run_varnet_search(
            config,
            source=args.source,
            acceleration=args.acceleration,
            num_acs=num_acs,
            num_samples=args.samples,
        ),
    )
    print(f"best of {result.trials} trials: val SSIM {result.best_val_ssim:.4f} with {result.best_params}")
    section = {"lr": "train", "batch_size": "train", "cascades": "varnet", "chans": "varnet"}
    overrides = " ".join(f"--set {section[k]}.{k}={v}" for k, v in result.best_params.items())
    print(f"use them in the grid: python sweeps/recon_grid.py {overrides}")
    print(f"MLflow parent run {result.parent_run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The main study: VarNets trained on each phase source's k-space over R x nACS x seed, tested on real data.

python sweeps/recon_grid.py                      # the demo (phantoms, CPU, minutes)
python sweeps/recon_grid.py --config knee --data-root /data/knee_singlecoil --ray-address auto
python sweeps/recon_grid.py --set grid.accelerations=[4,8] --dry-run
"""

import sys

from phaselab.orchestration.grid import grid_cells, run_recon_grid
from phaselab.orchestration.report import aggregate, format_grid
from phaselab.sweep_cli import exit_on_data_error, load_or_exit, mlflow_ui_hint, print_dry_run, sweep_parser


def main(argv: list[str] | None = None) -> int:
    args = sweep_parser("Run (or resume) the phase-source x R x nACS x seed VarNet grid.").parse_args(argv)
    config = load_or_exit(args)
    if args.dry_run:
        print_dry_run(config, grid_cells(config))
        return 0
    result = exit_on_data_error(config, lambda: run_recon_grid(config))
    table = aggregate(result.rows)
    print()
    print(format_grid(table, "ssim"))
    print(
        f"sweep finished in {result.seconds:.0f}s ({len(result.rows)} trials; "
        f"trials trained for {result.trial_seconds:.0f}s in total)"
    )
    print(f"MLflow: experiment '{config.tracking.experiment}', parent run {result.parent_run_id}")
    print(f"  browse: {mlflow_ui_hint(result.tracking_uri)}")
    print(f"  grid:   {result.output_dir}  (metric grid + figures are artifacts of the parent run)")
    return 0 if len(result.rows) == len(grid_cells(config)) else 1


if __name__ == "__main__":
    sys.exit(main())

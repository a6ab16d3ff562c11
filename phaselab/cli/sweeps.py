"""``phaselab grid`` (the study: VarNets per phase source x R x nACS x seed) and ``phaselab tune-varnet``."""

from __future__ import annotations

import argparse

from phaselab.cli.commands import Command
from phaselab.cli.common import (
    SMALL_RUNS,
    add_sweep_arguments,
    config_from_args,
    mlflow_ui_hint,
    print_dry_run,
)


def _grid(args: argparse.Namespace) -> int:
    from phaselab.orchestration.grid import grid_cells, run_recon_grid
    from phaselab.orchestration.report import aggregate, format_grid

    config = config_from_args(args)
    cells = grid_cells(config)
    if args.dry_run:
        print_dry_run(config, f"grid: {len(cells)} trials", cells)
        return 0
    result = run_recon_grid(config)
    print()
    print(format_grid(aggregate([r for r in result.rows if "real_fraction" not in r["cell"]]), "ssim"))
    if config.grid.real_fraction:
        from phaselab.orchestration.mixing_report import format_mixing_table, mixing_table

        print(format_mixing_table(mixing_table(result.rows, config.grid.real_fraction)))
    print(
        f"sweep finished in {result.seconds:.0f}s ({len(result.rows)} of {len(cells)} trials; "
        f"trials trained for {result.trial_seconds:.0f}s in total)"
    )
    print(f"MLflow: experiment '{config.tracking.experiment}', parent run {result.parent_run_id}")
    print(f"  browse: {mlflow_ui_hint(result.tracking_uri)}")
    print(f"  grid:   {result.output_dir}  (metric grid + figures are artifacts of the parent run)")
    return 0 if len(result.rows) == len(cells) else 1


def _tune_varnet(args: argparse.Namespace) -> int:
    from phaselab.orchestration.varnet_search import SearchSpace, run_varnet_search

    config = config_from_args(args)
    num_acs = args.num_acs or config.grid.num_acs[0]
    cell = {"source": args.source, "acceleration": args.acceleration, "num_acs": num_acs}
    if args.dry_run:
        space = {k: str(v) for k, v in SearchSpace().describe().items()}
        print_dry_run(config, f"search: {args.samples} Optuna trials on recVal for {cell}", [space])
        return 0
    result = run_varnet_search(config, **cell, num_samples=args.samples)
    print(f"best of {result.trials} trials: val SSIM {result.best_val_ssim:.4f} with {result.best_params}")
    section = {"lr": "train", "batch_size": "train", "cascades": "varnet", "chans": "varnet"}
    overrides = " ".join(f"--set {section[k]}.{k}={v}" for k, v in result.best_params.items())
    print(f"use them in the grid: phaselab grid {overrides}")
    print(f"MLflow parent run {result.parent_run_id}")
    return 0


def _evaluate_phase(args: argparse.Namespace) -> int:
    from phaselab.orchestration.phase_eval import format_phase_table, run_phase_evaluation

    if args.fid_weights:
        args.overrides.append(f"evaluation.fid_weights={args.fid_weights}")
    config = config_from_args(args)
    sources = args.sources.split(",") if args.sources else list(config.grid.sources)
    if args.dry_run:
        what = f"phase metrics of {', '.join(sources)} on recTrain against the acquired phase"
        print_dry_run(config, what, [{"source": s} for s in sources])
        return 0
    rows, parent_id, uri = run_phase_evaluation(config, sources, print)
    print()
    print("distance from the acquired phase on recTrain (lower is closer; 95% bootstrap interval)")
    print(format_phase_table(rows))
    print(f"MLflow parent run {parent_id}: phase_metrics/table.md, phase_metrics/distances.png")
    print(f"  browse: {mlflow_ui_hint(uri)}")
    return 0


def _evaluate_phase_arguments(parser: argparse.ArgumentParser) -> None:
    add_sweep_arguments(parser)
    parser.add_argument(
        "--sources", help="comma-separated phase sources (default: the config's grid.sources)"
    )
    parser.add_argument("--fid-weights", help="local Inception weights file for FID (nothing is downloaded)")


def _grid_arguments(parser: argparse.ArgumentParser) -> None:
    add_sweep_arguments(parser)


def _tune_varnet_arguments(parser: argparse.ArgumentParser) -> None:
    add_sweep_arguments(parser)
    parser.add_argument("--source", default="gt", help="phase source of the training k-space (default gt)")
    parser.add_argument("--acceleration", type=int, default=4, help="acceleration R (default 4)")
    parser.add_argument("--num-acs", type=int, default=None, help="ACS lines (default: the config's first)")
    parser.add_argument("--samples", type=int, default=16, help="number of Optuna trials (default 16)")


GRID = Command(
    "grid",
    "run (or resume) the recon grid: VarNets per phase source x R x nACS x seed, tested on real k-space",
    "Run (or resume) the study: k-space per phase source, a VarNet per source x R x nACS x seed (Ray\n"
    "Tune), each tested on the real recTest k-space; everything in MLflow. Without options: the demo\n"
    "(phantoms, CPU, minutes). Rerunning the same command resumes a killed sweep.",
    _grid_arguments,
    _grid,
    SMALL_RUNS,
)
TUNE_VARNET = Command(
    "tune-varnet",
    "search VarNet hyperparameters on recVal for one phase source / R / nACS (Optuna + ASHA)",
    "Search lr, cascades, chans and batch size of the VarNet on recVal for one cell (Optuna proposes,\n"
    "ASHA stops lagging trials); prints the --set line for the grid. Rerunning resumes the search.",
    _tune_varnet_arguments,
    _tune_varnet,
    SMALL_RUNS,
)
EVALUATE_PHASE = Command(
    "evaluate-phase",
    "score each phase source's samples against the acquired phase (weight-free distances, FID)",
    "For each phase source, synthesize (or find) its recTrain phase and measure how far it is from the\n"
    "acquired phase: Frechet and kernel distances of random-network features, Wasserstein distances of\n"
    "phase gradients and of phase, the distance of power spectra, the paired phase error, and FID with\n"
    "--fid-weights. Learned generators are trained (or taken from the registry) first.",
    _evaluate_phase_arguments,
    _evaluate_phase,
    SMALL_RUNS,
)

"""``phaselab train-generator`` and ``phaselab tune-generator``: learned generators on genTrain/genVal."""

from __future__ import annotations

import argparse
import dataclasses

from phaselab.cli.commands import Command, UsageError
from phaselab.cli.common import (
    SMALL_RUNS,
    add_sweep_arguments,
    config_from_args,
    mlflow_ui_hint,
    print_dry_run,
)

LEARNED = ("sbdm", "gan", "phasegen")


def _learned(name: str) -> str:
    if name not in LEARNED:
        raise UsageError(f"--generator {name!r}: choose a learned generator ({', '.join(LEARNED)})")
    return name


def _train(args: argparse.Namespace) -> int:
    from phaselab.config import GeneratorConfig
    from phaselab.orchestration.generator_runs import train_generator_for_sweep

    name = _learned(args.generator)
    if args.workers:
        args.overrides.append(f"generators.{name}.workers={args.workers}")
    config = config_from_args(args)
    if args.dry_run:
        generator = dataclasses.asdict(config.generators.get(name) or GeneratorConfig())
        print_dry_run(config, f"train generator {name}", [{"generator": name, **generator}])
        return 0
    result = train_generator_for_sweep(config, name)
    print(f"generator saved to {result.checkpoint}; registered in MLflow as {result.model_name}")
    if not result.realism.realistic:  # said loudly during the run too; the grid will refuse it
        print(f"WARNING !!! {result.realism.summary()}")
    print(f"  browse: {mlflow_ui_hint(result.tracking_uri)}")
    return 0


def _tune(args: argparse.Namespace) -> int:
    from phaselab.orchestration.generator_search import default_space, run_generator_search
    from phaselab.orchestration.search import describe_space

    name = _learned(args.generator)
    config = config_from_args(args)
    if args.dry_run:
        space = describe_space(default_space(name))
        print_dry_run(config, f"search: {args.samples} Optuna trials of {name} on genVal over", [space])
        return 0
    result = run_generator_search(config, name, num_samples=args.samples)
    print(f"best realism score {result.best_score:.4g} (< 1: closer to the acquired phase than smooth)")
    print(f"  with {result.best_params}")
    print(f"registered as phaselab-{name} v{result.registered_version} ({result.checkpoint})")
    version = f"phaselab-{name}/{result.registered_version}"
    print(f"use it in the grid: --set generators.{name}.registered={version}")
    return 0


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    add_sweep_arguments(parser)
    parser.add_argument("--generator", required=True, help=", ".join(LEARNED))
    parser.add_argument("--workers", type=int, help="Ray Train workers (default: generators.<name>.workers)")


def _tune_arguments(parser: argparse.ArgumentParser) -> None:
    add_sweep_arguments(parser)
    parser.add_argument("--generator", required=True, help=", ".join(LEARNED))
    parser.add_argument("--samples", type=int, default=8, help="number of Optuna trials (default 8)")


TRAIN_GENERATOR = Command(
    "train-generator",
    "train one learned phase generator with Ray Train (DDP), log it to MLflow, register it",
    "Train sbdm, gan or phasegen on genTrain (selected on genVal) with Ray Train on 1..N workers;\n"
    "the run is logged to MLflow and the model registered. Rerunning resumes from the last checkpoint.",
    _train_arguments,
    _train,
    SMALL_RUNS,
)
TUNE_GENERATOR = Command(
    "tune-generator",
    "search a generator's hyperparameters on genVal (Optuna + ASHA); the best model is registered",
    "Search a learned generator's hyperparameters on genVal (Optuna proposes, ASHA stops lagging\n"
    "trials); the best model is registered in MLflow. Rerunning resumes the search.",
    _tune_arguments,
    _tune,
    SMALL_RUNS,
)

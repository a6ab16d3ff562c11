"""What every sweep command shares: presets, ``--set`` overrides, cluster options, dry runs, summaries."""

from __future__ import annotations

import argparse
from typing import Any

from phaselab.config import SweepConfig, dump_yaml, load_config, preset_names

SMALL_RUNS = """\
small runs:
  --config tiny                             seconds per trial (what the tests run)
  --set train.steps=20 --set grid.accelerations=[4] --set grid.num_acs=[8] --set grid.sources=[gt,zero]
  --dry-run                                 print the resolved config and what would run, run nothing
"""


def add_sweep_arguments(parser: argparse.ArgumentParser, default_preset: str = "demo") -> None:
    parser.add_argument(
        "--config",
        default=default_preset,
        help=f"preset ({', '.join(preset_names())}) or a YAML file, "
        f"`preset: <name>` as its base (default: {default_preset})",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set varnet.cascades=8 (repeatable; values are YAML)",
    )
    parser.add_argument("--data-root", help="fastMRI directory (sets data.source=fastmri, data.root)")
    parser.add_argument("--output-dir", help="where caches, checkpoints and the local MLflow database go")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite file in the output dir)")
    parser.add_argument("--ray-address", help="join a Ray cluster ('auto' on a cluster node)")
    parser.add_argument("--storage-path", help="Ray results storage (shared filesystem or s3:// URI)")
    parser.add_argument(
        "--skip-bad-files", action="store_true", help="leave out unreadable data files instead of stopping"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the resolved config and what would run; run nothing"
    )


def config_from_args(args: argparse.Namespace) -> SweepConfig:
    """The preset, then the shortcuts (--data-root, ...), then --set overrides in order."""
    overrides = []
    if args.data_root:
        overrides += ["data.source=fastmri", f"data.root={args.data_root}"]
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    if args.tracking_uri:
        overrides.append(f"tracking.uri={args.tracking_uri}")
    if args.ray_address:
        overrides.append(f"ray_address={args.ray_address}")
    if args.storage_path:
        overrides.append(f"storage_path={args.storage_path}")
    if args.skip_bad_files:
        overrides.append("data.skip_bad_files=true")
    return load_config(args.config, [*overrides, *args.overrides])


def print_dry_run(config: SweepConfig, what: str, items: list[dict[str, Any]]) -> None:
    """The resolved config, the data it would read, and one line per trial (or search setting)."""
    from phaselab.data.prepare import describe_data_source

    print("# resolved config")
    print(dump_yaml(config))
    print(f"# data: {describe_data_source(config.data)}")
    for line in describe_generators(config):
        print(line)
    print(f"# {what}")
    for item in items:
        print("  " + "  ".join(f"{k}={v}" for k, v in item.items()))


def describe_generators(config: SweepConfig) -> list[str]:
    """What each learned source of the grid will be: its recipe, resolved training and model settings
    (lengths in epochs of genTrain), and where phaselab departs from the paper."""
    from phaselab.config import GeneratorConfig, generator_settings
    from phaselab.generators import phase_source_class
    from phaselab.generators.recipes import get_recipe

    lines = []
    for name in config.grid.sources:
        if not phase_source_class(name).requires_training:
            continue
        gen = config.generators.get(name) or GeneratorConfig()
        if gen.checkpoint or gen.registered:
            lines.append(
                f"# generator {name}: {'file ' + gen.checkpoint if gen.checkpoint else gen.registered}"
            )
            continue
        model, train = generator_settings(name, gen)
        recipe = get_recipe(gen.recipe) if gen.recipe else None
        lines.append(f"# generator {name}: recipe {gen.recipe or '(none: the generic defaults)'}")
        if recipe is not None:
            lines.append(f"#   published: {recipe.reference}")
        lines.append("#   train: " + ", ".join(f"{k}={v}" for k, v in train.items()))
        lines.append("#   model: " + ", ".join(f"{k}={v}" for k, v in model.items()))
        for key, why in recipe.deviations.items() if recipe else ():
            lines.append(f"#   deviation {key}: {why}")
    return lines


def mlflow_ui_hint(tracking_uri: str) -> str:
    if tracking_uri.startswith("sqlite:"):
        return f"mlflow ui --backend-store-uri {tracking_uri} --host 127.0.0.1 --port 5000"
    return f"open {tracking_uri} in a browser"

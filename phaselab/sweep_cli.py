"""Command-line plumbing shared by the sweep scripts: presets, ``--set`` overrides, dry runs, summaries."""

from __future__ import annotations

import argparse
import sys

from phaselab.config import ConfigError, SweepConfig, dump_yaml, load_config


def sweep_parser(description: str, default_preset: str = "demo") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--config",
        default=default_preset,
        help=f"preset (demo, knee, brain) or a YAML file (default: {default_preset})",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set varnet.cascades=8 (repeatable)",
    )
    parser.add_argument("--data-root", help="fastMRI directory (sets data.source=fastmri, data.root)")
    parser.add_argument("--output-dir", help="where caches, checkpoints and the local MLflow database go")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite file in the output dir)")
    parser.add_argument("--ray-address", help="join a Ray cluster ('auto' on a cluster node)")
    parser.add_argument("--storage-path", help="Ray results storage (shared filesystem or s3:// URI)")
    parser.add_argument("--skip-bad-files", action="store_true", help="skip unreadable input files")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the resolved config and the grid, run nothing"
    )
    return parser


def config_from_args(args: argparse.Namespace) -> SweepConfig:
    overrides = list(args.overrides)
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
    return load_config(args.config, overrides)


def load_or_exit(args: argparse.Namespace) -> SweepConfig:
    try:
        return config_from_args(args)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def exit_on_data_error(config: SweepConfig, run):
    """Call ``run()``; bad input ends the script with the file and the problem, not a traceback."""
    from phaselab.data.errors import DataError

    try:
        return run()
    except DataError as err:
        print(f"data error: {err}", file=sys.stderr)
        if not config.data.skip_bad_files:
            print("(pass --skip-bad-files to run on the remaining files)", file=sys.stderr)
        raise SystemExit(2) from None


def print_dry_run(config: SweepConfig, cells: list[dict]) -> None:
    print("# resolved config")
    print(dump_yaml(config))
    print(f"# grid: {len(cells)} trials")
    for cell in cells:
        print("  " + "  ".join(f"{k}={v}" for k, v in cell.items()))


def mlflow_ui_hint(tracking_uri: str) -> str:
    if tracking_uri.startswith("sqlite:"):
        return f"mlflow ui --backend-store-uri {tracking_uri} --host 127.0.0.1 --port 5000"
    return f"open {tracking_uri} in a browser"

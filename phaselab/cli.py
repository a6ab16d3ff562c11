"""The ``phaselab`` command line: one argparse subparser per command group, one small function per command."""

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from phaselab.synthesize_cli import add_synthesize_commands


def _data_check(args: argparse.Namespace) -> int:
    from phaselab.data.check import check_directory
    from phaselab.data.errors import DataError
    from phaselab.data.fastmri_io import list_volumes

    try:
        total = len(list_volumes(args.directory))
    except DataError:  # the directory itself is the problem; check_directory reports it
        total = 0
    problems = check_directory(args.directory)
    for err in problems:
        print(f"BAD {err}")
    print(f"checked {total} file(s) in {args.directory}: {len(problems)} problem(s)")
    return 1 if problems else 0


def _data_phantoms(args: argparse.Namespace) -> int:
    from phaselab.data.phantoms import write_phantom_dataset

    files = write_phantom_dataset(
        args.out, patients=args.patients, slices=args.slices, size=args.size, kind=args.kind, seed=args.seed
    )
    print(f"wrote {len(list(files))} {args.kind} phantom volume(s) to {args.out}")
    return 0


def _data_split(args: argparse.Namespace) -> int:
    from phaselab.data.splits import patients_of, split_patients

    patient_files = patients_of(args.directory)
    manifest = split_patients(patient_files, seed=args.seed, kind=args.kind, root=args.directory)
    path = manifest.to_json(args.out)
    for name in manifest.split_names():
        print(f"{name:9s} {len(manifest.patients[name]):5d} patients {len(manifest.volumes[name]):6d} files")
    print(f"wrote split manifest {path}")
    return 0


def add_data_commands(commands: argparse._SubParsersAction) -> None:
    """``phaselab data check|phantoms|split``."""
    data = commands.add_parser("data", help="fastMRI data: validate, make phantoms, split by patient")
    sub = data.add_subparsers(dest="data_command", required=True)

    check = sub.add_parser("check", help="validate every .h5 file of a directory; exit 1 if any is bad")
    check.add_argument("directory", type=Path)
    check.set_defaults(func=_data_check)

    phantoms = sub.add_parser("phantoms", help="write a phantom dataset in fastMRI format")
    phantoms.add_argument("--out", type=Path, required=True)
    phantoms.add_argument("--patients", type=int, default=10)
    phantoms.add_argument("--slices", type=int, default=4)
    phantoms.add_argument("--size", type=int, default=256)
    phantoms.add_argument("--kind", choices=("knee", "brain"), default="knee")
    phantoms.add_argument("--seed", type=int, default=0)
    phantoms.set_defaults(func=_data_phantoms)

    split = sub.add_parser("split", help="split a directory's volumes by patient; write a JSON manifest")
    split.add_argument("directory", type=Path)
    split.add_argument("--out", type=Path, required=True)
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--kind", choices=("knee", "brain"), default="knee", help="split fraction preset")
    split.set_defaults(func=_data_split)


# Each entry adds one command group; later groups (sweeps, generators, ...) register here.
COMMAND_GROUPS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_data_commands,
    add_synthesize_commands,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="phaselab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for add_commands in COMMAND_GROUPS:
        add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``phaselab`` console script; returns the exit status."""
    from phaselab.data.errors import DataError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

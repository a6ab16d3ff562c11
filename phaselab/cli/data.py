"""``phaselab data check|phantoms|split``: validate a fastMRI folder, write phantoms, split by patient."""

from __future__ import annotations

import argparse
from pathlib import Path

from phaselab.cli.commands import Command


def at_least(minimum: int):
    """An argparse type: an integer >= ``minimum`` (a bad value is a usage error naming the option)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _check(args: argparse.Namespace) -> int:
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


def _phantoms(args: argparse.Namespace) -> int:
    from phaselab.data.phantoms import write_phantom_dataset

    files = write_phantom_dataset(
        args.out, patients=args.patients, slices=args.slices, size=args.size, kind=args.kind, seed=args.seed
    )
    print(f"wrote {len(list(files))} {args.kind} phantom volume(s) to {args.out}")
    return 0


def _split(args: argparse.Namespace) -> int:
    from phaselab.data.errors import DataError
    from phaselab.data.splits import PARTS, patients_of, split_patients

    patient_files = patients_of(args.directory)
    if len(patient_files) < len(PARTS):
        raise DataError(
            args.directory,
            f"{len(patient_files)} patient(s); a split needs at least {len(PARTS)} (one per split: "
            f"{', '.join(PARTS)})",
        )
    manifest = split_patients(patient_files, seed=args.seed, kind=args.kind, root=args.directory)
    path = manifest.to_json(args.out)
    for name in manifest.split_names():
        note = "  (= recTrain + recVal + recTest)" if name == "genTest" else ""
        print(
            f"{name:9s} {len(manifest.patients[name]):5d} patients "
            f"{len(manifest.volumes[name]):6d} files{note}"
        )
    print(f"wrote split manifest {path}")
    return 0


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="folder of fastMRI .h5 files")


def _phantom_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder for the .h5 files (one per patient)")
    parser.add_argument("--patients", type=at_least(1), default=10, help="number of patients (default 10)")
    parser.add_argument("--slices", type=at_least(1), default=4, help="slices per patient (default 4)")
    parser.add_argument("--size", type=at_least(32), default=256, help="image size in pixels (default 256)")
    parser.add_argument("--kind", choices=("knee", "brain"), default="knee", help="anatomy (default knee)")
    parser.add_argument("--seed", type=at_least(0), default=0, help="generation seed (default 0)")


def _split_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="folder of fastMRI .h5 files with a patient_id attr")
    parser.add_argument("--out", type=Path, required=True, help="the JSON manifest to write")
    parser.add_argument("--seed", type=at_least(0), default=0, help="shuffle seed (default 0)")
    parser.add_argument(
        "--kind",
        choices=("knee", "brain"),
        default="knee",
        help="split fractions of the first study's knee or brain table (default knee)",
    )


CHECK = Command(
    "check",
    "validate every .h5 file of a folder; exit 1 if any is bad",
    "Read every fastMRI .h5 file of a folder and list each bad one with its problem (exit 1 if any).",
    _check_arguments,
    _check,
)
PHANTOMS = Command(
    "phantoms",
    "write a phantom dataset in fastMRI format",
    "Write knee- or brain-like phantoms (magnitude and a realistic phase) as fastMRI single-coil files.\n"
    "A folder holds phantoms of one setting: writing other settings into it is refused.",
    _phantom_arguments,
    _phantoms,
)
SPLIT = Command(
    "split",
    "split a folder's volumes by patient; write a JSON manifest",
    "Split patients (never slices) into genTrain, genVal, recTrain, recVal, recTest with the first study's\n"
    "fractions; genTest is the union of the three rec splits, so its patients are counted twice.",
    _split_arguments,
    _split,
)
COMMANDS = (CHECK, PHANTOMS, SPLIT)

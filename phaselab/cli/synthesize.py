"""``phaselab synthesize``: k-space training data from a magnitude-only archive (DICOM, NIfTI, ...)."""

from __future__ import annotations

import argparse
from pathlib import Path

from phaselab.cli.commands import Command, UsageError
from phaselab.cli.data import at_least


def _synthesize(args: argparse.Namespace) -> int:
    from phaselab.synthesis import BadInputs, run_in_process, synthesize_archive

    runner = run_in_process
    if args.ray:
        from phaselab.orchestration.synthesis_job import run_tasks_on_ray

        runner = run_tasks_on_ray
    try:
        result = synthesize_archive(
            args.input,
            args.out,
            args.source,
            checkpoint=args.checkpoint,
            size=args.size,
            seed=args.seed,
            skip_bad=args.skip_bad_files,
            nifti_4d=args.nifti_4d,
            runner=runner,
            log_fn=print,
        )
    except BadInputs as err:  # each bad file was printed as "BAD <path>: <problem>" while checking
        print(
            f"{len(err.errors)} bad input file(s) in {args.input}; nothing written "
            "(fix or remove them, or pass --skip-bad-files)"
        )
        return 1
    except ValueError as err:  # unknown source, 'gt', an untrained generator, a size it was not trained at
        if type(err) is not ValueError:
            raise
        raise UsageError(str(err)) from None
    print(
        f"wrote {len(result.written)} volume(s), {len(result.skipped)} already done, "
        f"{len(result.bad)} bad file(s) skipped; manifest {result.manifest}"
    )
    return 0


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", type=Path, required=True, help="folder of magnitude images (recursive)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the .h5 files (one per volume)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--source", help="untrained phase source by name: zero, iid_gaussian, smooth, sinusoid"
    )
    which.add_argument(
        "--checkpoint", type=Path, help="a trained generator saved by phaselab (sbdm, gan, ...)"
    )
    parser.add_argument("--size", type=at_least(8), default=256, help="working size in pixels (default 256)")
    parser.add_argument("--seed", type=at_least(0), default=0, help="phase sampling seed (default 0)")
    parser.add_argument(
        "--skip-bad-files", action="store_true", help="report bad inputs and go on without them"
    )
    parser.add_argument(
        "--nifti-4d",
        choices=("first", "all"),
        default="first",
        help="4-D NIfTI: first volume only (default) or all volumes",
    )
    parser.add_argument(
        "--ray", action="store_true", help="spread volumes over Ray Data actors (one per GPU)"
    )


SYNTHESIZE = Command(
    "synthesize",
    "magnitude-only images (DICOM, NIfTI, .npy, PNG/TIFF) + a phase source -> fastMRI k-space files",
    "Turn a folder of magnitude-only images into fastMRI single-coil k-space files: each volume's magnitude\n"
    "with a phase from a baseline source or a trained generator. Bad inputs are listed (exit 1) and\n"
    "nothing is written unless --skip-bad-files; a rerun skips finished volumes.",
    _arguments,
    _synthesize,
)

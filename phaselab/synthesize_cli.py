"""``phaselab synthesize``: k-space training data from a magnitude-only archive (DICOM, NIfTI, ...)."""

import argparse
import sys
from pathlib import Path


def _synthesize(args: argparse.Namespace) -> int:
    from phaselab.data.errors import DataError
    from phaselab.magnitude_synthesis import BadInputs, synthesize_archive

    try:
        result = synthesize_archive(
            args.input,
            args.out,
            args.source,
            checkpoint=args.checkpoint,
            size=args.size,
            seed=args.seed,
            skip_bad=args.skip_bad_files,
            use_ray=args.ray,
            nifti_4d=args.nifti_4d,
            log_fn=print,
        )
    except BadInputs as err:  # each bad file was printed as "BAD <path>: <problem>" while checking
        print(
            f"{len(err.errors)} bad input file(s) in {args.input}; nothing written "
            "(fix or remove them, or pass --skip-bad-files)"
        )
        return 1
    except DataError:
        raise  # main prints "error: <path>: <problem>" and exits 1
    except ValueError as err:  # a usage problem: unknown source, 'gt', an untrained generator
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"wrote {len(result.written)} volume(s), {len(result.skipped)} already done, "
        f"{len(result.bad)} bad file(s) skipped; manifest {result.manifest}"
    )
    return 0


def add_synthesize_commands(commands: argparse._SubParsersAction) -> None:
    """``phaselab synthesize --input DIR --out DIR (--source NAME | --checkpoint PATH)``."""
    parser = commands.add_parser(
        "synthesize",
        help="magnitude-only images (DICOM, NIfTI, .npy, PNG/TIFF) + a phase source -> fastMRI k-space files",
    )
    parser.add_argument("--input", type=Path, required=True, help="folder of magnitude images (recursive)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the .h5 files (one per volume)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--source", help="untrained phase source by name: zero, iid_gaussian, smooth, sinusoid"
    )
    which.add_argument(
        "--checkpoint", type=Path, help="a trained generator saved by phaselab (sbdm, gan, ...)"
    )
    parser.add_argument("--size", type=int, default=256, help="working size in pixels (default 256)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--skip-bad-files", action="store_true", help="report bad inputs and go on without them"
    )
    parser.add_argument(
        "--nifti-4d",
        choices=("first", "all"),
        default="first",
        help="4-D NIfTI: first volume only (default) or all volumes",
    )
    parser.add_argument("--ray", action="store_true", help="spread volumes over Ray Data actors (GPUs)")
    parser.set_defaults(func=_synthesize)

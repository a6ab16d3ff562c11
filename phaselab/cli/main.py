"""``phaselab <command>``: the parser of every command and the console script's entry point."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from phaselab.cli import data, generators, sweeps, synthesize
from phaselab.cli.commands import Command, make_parser, run_guarded

DESCRIPTION = """\
phaselab: realistic k-space from magnitude-only MRI, and which phase generator makes the best
reconstruction models.

  phaselab grid                           the demo study (phantoms, CPU, minutes); --config knee|brain
  phaselab data phantoms --out DIR        phantom data in fastMRI format
  phaselab synthesize --input DICOMS --out DIR --source smooth
                                          k-space from a magnitude-only archive

Each command's --help lists its options; sweeps/*.py run the same commands as scripts.
"""

COMMANDS: tuple[Command, ...] = (
    sweeps.GRID,
    sweeps.TUNE_VARNET,
    sweeps.EVALUATE_PHASE,
    generators.TRAIN_GENERATOR,
    generators.TUNE_GENERATOR,
    synthesize.SYNTHESIZE,
)
GROUPS: dict[str, tuple[str, tuple[Command, ...]]] = {
    "data": ("fastMRI data: validate a folder, make phantoms, split by patient", data.COMMANDS),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phaselab", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(parent: argparse._SubParsersAction, command: Command) -> None:
        child = parent.add_parser(
            command.name,
            help=command.help,
            description=command.description,
            epilog=command.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(child)
        child.set_defaults(command_object=command)

    for command in COMMANDS:
        add(sub, command)
    for name, (help_text, members) in GROUPS.items():
        group = sub.add_parser(name, help=help_text, description=help_text)
        group_sub = group.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")
        for command in members:
            add(group_sub, command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``phaselab`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    return run_guarded(args.command_object, args)


def run_command(name: str, argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run one command as a standalone script (``sweeps/*.py``): ``prog`` names the script in --help."""
    command = next(c for c in COMMANDS if c.name == name)
    args = make_parser(command, prog=prog).parse_args(argv)
    return run_guarded(command, args)


if __name__ == "__main__":
    sys.exit(main())

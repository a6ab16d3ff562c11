"""A command of the ``phaselab`` tool: its arguments, what it runs, and one error style for all of them.

Exit status: 0 done; 1 the command ran and found bad inputs (listed); 2 it could not run (a config error,
bad input, a usage error: one line on stderr naming the key or the file); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass


class UsageError(ValueError):
    """The command line asks for something that cannot be done; the message says what to do instead."""


@dataclass(frozen=True)
class Command:
    name: str
    help: str  # one line for ``phaselab --help``
    description: str  # for ``phaselab <name> --help``
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    epilog: str | None = None


def make_parser(command: Command, prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=command.description,
        epilog=command.epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_arguments(parser)
    return parser


def run_guarded(command: Command, args: argparse.Namespace) -> int:
    """Run a command; expected failures become one line on stderr and an exit status, not a traceback."""
    from phaselab.config import ConfigError
    from phaselab.data.errors import DataError
    from phaselab.generators.realism import UnrealisticGenerator

    try:
        return command.run(args)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
    except DataError as err:
        print(f"data error: {err}", file=sys.stderr)
    except UnrealisticGenerator as err:
        print(f"error: {err}", file=sys.stderr)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted: finished work is kept; run the same command again to resume", file=sys.stderr)
        return 130
    return 2

"""The ``phaselab`` command line: one subcommand per job, the same functions the ``sweeps/`` scripts call."""

from phaselab.cli.main import build_parser, main, run_command

__all__ = ["build_parser", "main", "run_command"]

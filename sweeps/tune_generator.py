"""Search a generator's hyperparameters on genVal (Optuna + ASHA); the best model is registered.

python sweeps/tune_generator.py --generator sbdm --samples 8

The same command as `phaselab tune-generator` (see `--help`).
"""

import sys

from phaselab.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("tune-generator", prog="sweeps/tune_generator.py"))

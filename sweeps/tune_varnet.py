"""Search VarNet hyperparameters (lr, cascades, chans, batch size) on recVal with Optuna + ASHA.

python sweeps/tune_varnet.py --source gt --acceleration 6 --num-acs 4 --samples 8
python sweeps/tune_varnet.py --config knee --data-root /data/knee --source gt --acceleration 4 --num-acs 16

The same command as `phaselab tune-varnet` (see `--help`).
"""

import sys

from phaselab.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("tune-varnet", prog="sweeps/tune_varnet.py"))

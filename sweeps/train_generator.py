"""Train one learned phase generator on genTrain/genVal with Ray Train (DDP), log it, register it.

    python sweeps/train_generator.py --generator sbdm                      # demo data, tiny net, CPU
    python sweeps/train_generator.py --generator sbdm --config knee --data-root /data/knee \\
        --workers 4 --set generators.sbdm.train.steps=200000 --ray-address auto

The same command as `phaselab train-generator` (see `--help`).
"""

import sys

from phaselab.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("train-generator", prog="sweeps/train_generator.py"))

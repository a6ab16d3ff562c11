"""The main study: VarNets trained on each phase source's k-space over R x nACS x seed, tested on real data.

python sweeps/recon_grid.py                      # the demo (phantoms, CPU, minutes)
python sweeps/recon_grid.py --config knee --data-root /data/knee_singlecoil --ray-address auto
python sweeps/recon_grid.py --set grid.accelerations=[4,8] --dry-run

The same command as `phaselab grid` (see `--help`).
"""

import sys

from phaselab.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("grid", prog="sweeps/recon_grid.py"))

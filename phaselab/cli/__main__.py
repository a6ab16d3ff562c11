import sys

from phaselab.cli.main import main

sys.exit(main())

"""`python3 -m zoo.cli ...` (what torchrun starts) is the `zoo` command."""

import sys

from zoo.cli import main

sys.exit(main())

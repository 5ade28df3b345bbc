"""`python -m distill_core …` — see `distill_core.cli`."""

import sys

from distill_core.cli import main

sys.exit(main())

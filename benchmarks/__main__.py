"""``python -m benchmarks [--quick] [--only SUITE,...] [--repeats N] [--out DIR]``."""

import sys

from ._harness import main

sys.exit(main())

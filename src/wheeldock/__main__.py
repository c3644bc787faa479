"""``python -m wheeldock``: the same CLI as the ``wheeldock`` console script."""

import sys

from wheeldock.cli import main

sys.exit(main())

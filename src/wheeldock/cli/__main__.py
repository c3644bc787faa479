"""``python -m wheeldock.cli``: the command, with unbuffered output for its child processes."""

import os
import sys

from wheeldock.cli.app import main

os.environ.setdefault("PYTHONUNBUFFERED", "1")
sys.exit(main())

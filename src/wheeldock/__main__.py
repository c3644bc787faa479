"""``python -m wheeldock``: the same CLI as the ``wheeldock`` console script."""

from wheeldock.cli import leave, main

leave(main())

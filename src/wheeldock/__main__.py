"""``python -m wheeldock``: the same CLI as the ``wheeldock`` console script."""

from wheeldock.cli.app import leave, main

leave(main())

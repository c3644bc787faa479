"""The unit tests, one folder per wheeldock area (``core``: project, platforms, errors)."""

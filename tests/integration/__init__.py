"""The integration tests, one folder per wheeldock area (``core``: project, platforms, errors)."""

"""The integration tests of ``wheeldock.deps``."""

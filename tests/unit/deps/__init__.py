"""The unit tests of ``wheeldock.deps``."""

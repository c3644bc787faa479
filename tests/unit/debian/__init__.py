"""The unit tests of ``wheeldock.debian``."""

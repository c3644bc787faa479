"""The integration tests of ``wheeldock.debian``."""

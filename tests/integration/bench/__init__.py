"""The integration tests of ``wheeldock.bench``."""

"""The unit tests of ``wheeldock.bench``."""

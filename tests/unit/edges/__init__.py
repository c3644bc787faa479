"""The unit tests of ``wheeldock.edges``."""

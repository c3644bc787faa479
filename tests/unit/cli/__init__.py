"""The unit tests of ``wheeldock.cli``."""

"""The unit tests of ``wheeldock.compose``."""

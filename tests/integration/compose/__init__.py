"""The integration tests of ``wheeldock.compose``."""

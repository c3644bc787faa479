"""The integration tests of ``wheeldock.build``."""

"""The unit tests of ``wheeldock.build``."""

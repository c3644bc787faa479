"""The unit tests of ``wheeldock.oci``."""

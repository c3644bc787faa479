"""The integration tests of ``wheeldock.oci``."""

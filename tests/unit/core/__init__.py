"""The unit tests of ``wheeldock``'s project, platforms and errors modules."""

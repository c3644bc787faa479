"""Debian as data: the archive's package index, ELF files, which runtime packages a set of wheels
needs (``libs``) and the Python base images made with mmdebstrap (``bases``)."""

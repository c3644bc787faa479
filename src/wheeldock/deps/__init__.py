"""A service's Python dependencies: requirements files, the hash-locked ``pylock`` format, wheel
tags, the package-index client and the per-wheel wheelhouse cache."""

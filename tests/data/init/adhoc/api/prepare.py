"""A step the start command runs before the server (as a migration would): the image keeps it."""

from pathlib import Path

Path("/tmp/prepared").write_text("yes")

"""A one-shot job: writes its events into the folder it mounts, then ends."""

import json
import pathlib

import six

events = pathlib.Path("/app/events")
events.mkdir(exist_ok=True)
(events / "done.json").write_text(
    json.dumps({"six": six.__version__, "stale": sorted(p.name for p in events.iterdir())})
)
print("job done")

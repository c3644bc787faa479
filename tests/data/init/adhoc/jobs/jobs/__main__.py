"""A background worker: proves its dependencies (one with native code) import, then waits."""

import time

import cffi
import msgpack

print("jobs ready", msgpack.unpackb(msgpack.packb({"cffi": cffi.__version__})), flush=True)
while True:
    time.sleep(3600)

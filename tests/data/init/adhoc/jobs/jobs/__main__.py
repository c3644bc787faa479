"""A background worker: proves its dependencies (one with native code) and the system library
its start command apt-get installed are there, then waits."""

import ctypes
import time

import cffi
import msgpack

ctypes.CDLL("libyaml-0.so.2")  # from the command's `apt-get install libyaml-0-2`
print("jobs ready", msgpack.unpackb(msgpack.packb({"cffi": cffi.__version__})), flush=True)
while True:
    time.sleep(3600)

"""A queue worker with no port: it proves cffi (libffi) and PyYAML work, then beats forever."""

import os
import signal
import sys
import time

import cffi
import yaml

ffi = cffi.FFI()
ffi.cdef("int abs(int);")
libc = ffi.dlopen(None)
loader = "CLoader" if getattr(yaml, "__with_libyaml__", False) else "Loader"
job = yaml.load("job: {n: -7}", Loader=getattr(yaml, loader))
print(
    f"worker ready: abs({job['job']['n']}) = {libc.abs(job['job']['n'])} yaml={loader}", flush=True
)
# As PID 1 a process ignores SIGTERM unless it handles it: exit at once on `down`.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
interval = float(os.environ.get("JOBS_INTERVAL", "1"))
while True:
    time.sleep(interval)
    sys.stdout.flush()

"""The edges: the file system, subprocesses, the Docker engine CLI and the host's CA bundle.

Every side effect on the machine goes through one of these small modules, so the core above them
stays pure and tests can fake the edge they need.
"""

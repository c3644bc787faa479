"""The Docker path: compose files read and patched, the start commands surveyed, ``init``'s plan
(generated Dockerfiles, reversible), ``up`` with health waiting, and foreign-platform stacks."""

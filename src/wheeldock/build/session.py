"""What one command's builds share beyond the caches on disk: the index client and the answers
asked early (:class:`wheeldock.deps.lock.LockSession`), the compilers started ahead of need
(:class:`wheeldock.build.install.Compilers`) and what is known of the engine's layers
(:class:`wheeldock.oci.daemon.EngineLayers`).

The CLI makes one per command and closes it at the end; ``build --watch`` keeps it across
rebuilds (warm connections, known layers); a test makes a fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wheeldock.build.install import Compilers
from wheeldock.deps.lock import LockSession

if TYPE_CHECKING:
    from wheeldock.oci.daemon import EngineLayers


@dataclass
class Session:
    """One command's shared state (see the module's notes); :meth:`close` when done."""

    locks: LockSession = field(default_factory=LockSession)
    compilers: Compilers = field(default_factory=Compilers)
    _engine: EngineLayers | None = field(default=None, init=False, repr=False)

    @property
    def engine(self) -> EngineLayers:
        """What is known of the engine's layers, made on first use."""
        if self._engine is None:
            # imported here: the OCI stack is slow to import, and ``build`` makes its session
            # before that, to start the index requests first
            from wheeldock.oci.daemon import EngineLayers

            self._engine = EngineLayers()
        return self._engine

    def close(self) -> None:
        """End the compilers nobody used and close the index client's connections."""
        self.compilers.close()
        self.locks.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Session"]

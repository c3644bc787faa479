"""What a service's image runs, the same in both build paths: the exec-form command, the health
check and the non-root account's uid."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from wheeldock.debian import bases
from wheeldock.project import Service

APP_UID = bases.APP_USER.uid


def _port_expr(service: Service) -> str:
    """Python source for the port, inside the health check script."""
    port = service.port
    literal = str(port)
    # A port fixed on the command line stays fixed; otherwise the app reads $PORT like compose sets.
    if any(arg == literal or arg.endswith(":" + literal) for arg in service.command):
        return literal
    # `--port ${API_PORT}`: the check follows the variable the command listens on
    named = _PORT_VARIABLE.search(" ".join(service.command))
    return f"int(os.environ.get('{named[1] if named else 'PORT'}', '{literal}'))"


#: A port the command takes from a variable: ``--port $API_PORT``, ``--bind 0.0.0.0:${PORT}``.
_PORT_VARIABLE = re.compile(r"(?:--port[= ]|-p |:)[\"']?\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def health_command(service: Service) -> list[str]:
    """The exec-form health check: python's urllib (slim has no curl), a socket, or ``kill -0``."""
    if service.port is None or service.health == "process":
        return ["python3", "-c", "import os; os.kill(1, 0)"]
    port = _port_expr(service)
    if service.health == "tcp":
        script = f"import os, socket; socket.create_connection(('127.0.0.1', {port}), 2).close()"
    else:
        # No proxy: an HTTP_PROXY in the container's environment must not catch 127.0.0.1.
        script = (
            "import os, urllib.request as u; "
            "u.build_opener(u.ProxyHandler({})).open("
            f"'http://127.0.0.1:%d{service.health}' % {port}, timeout=2)"
        )
    return ["python3", "-c", script]


#: The shells a service's command may be a script of (``/bin/sh -c "…"``).
SCRIPT_SHELLS = ("sh", "/bin/sh", "bash", "/bin/bash")


def exec_form(argv: Sequence[str]) -> list[str]:
    """``CMD``'s exec form; a command that uses ``$VAR`` runs through ``sh -c "exec …"``
    (one that is a shell script already is kept as it is)."""
    if not any("$" in arg for arg in argv) or (
        len(argv) == 3 and argv[0] in SCRIPT_SHELLS and argv[1] == "-c"
    ):
        return list(argv)
    words = [f'"{a}"' if "$" in a and '"' not in a else shlex.quote(a) for a in argv]
    return ["/bin/sh", "-c", "exec " + " ".join(words)]

"""Real OCI registries for tests: Debian's ``docker-registry`` (distribution 2.8) on 127.0.0.1.

Two session fixtures, for any test that pushes or pulls:

``registry``
    plain HTTP, no auth.
``registry_auth``
    TLS with a self-signed CA (``ca_file``) and htpasswd Basic auth (``username``/``password``).

Each runs with its own config and storage in a temp folder on a free port; its access log is
readable through :meth:`Registry.requests` (so tests can assert what was, or was not, uploaded).
"""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.oci import tool

_ACCESS = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP/[\d.]+" (\d{3})')


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    status: int


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:PORT
    root: Path
    log_path: Path
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None

    @property
    def tls(self) -> bool:
        return self.ca_file is not None

    def ref(self, repository: str, tag: str = "latest") -> str:
        return f"docker://{self.host}/{repository}:{tag}"

    def requests(self) -> list[Request]:
        """Every request in the access log so far, oldest first."""
        text = self.log_path.read_text(errors="replace")
        return [Request(m[1], m[2], int(m[3])) for m in _ACCESS.finditer(text)]

    def skopeo_args(self) -> list[str]:
        """Options for ``skopeo inspect/copy`` against this registry."""
        args = [f"--cert-dir={self.ca_file.parent}"] if self.ca_file else ["--tls-verify=false"]
        if self.username:
            args.append(f"--creds={self.username}:{self.password}")
        return args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_up(url: str, ca_file: Path | None, proc: subprocess.Popen[bytes], log: Path) -> None:
    ctx = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"docker-registry exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2, context=ctx)
            return
        except urllib.error.HTTPError:
            return  # 401 from the auth registry: it is up
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"docker-registry did not answer at {url}: {log.read_text()[-2000:]}")


def _start(tmp: Path, *, auth: bool) -> Iterator[Registry]:
    binary = tool("docker-registry")
    port = _free_port()
    host = f"127.0.0.1:{port}"
    storage = tmp / "storage"
    storage.mkdir()
    config = [
        "version: 0.1",
        "log:",
        "  level: info",
        "  accesslog:",
        "    disabled: false",
        "storage:",
        f"  filesystem: {{rootdirectory: {storage}}}",
        "  delete: {enabled: true}",
        "http:",
        f"  addr: {host}",
    ]
    username = password = None
    ca_file = None
    if auth:
        username, password = "wheeldock", "s3cret-pw"
        htpasswd = subprocess.run(
            [tool("htpasswd"), "-Bbn", username, password], check=True, capture_output=True
        ).stdout
        (tmp / "htpasswd").write_bytes(htpasswd)
        certs = tmp / "certs"
        certs.mkdir()
        subprocess.run(
            [
                tool("openssl"),
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                str(tmp / "key.pem"),
                "-out",
                str(certs / "ca.crt"),
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )
        ca_file = certs / "ca.crt"
        config += [
            f"  tls: {{certificate: {ca_file}, key: {tmp / 'key.pem'}}}",
            "auth:",
            f"  htpasswd: {{realm: wheeldock-test, path: {tmp / 'htpasswd'}}}",
        ]
    (tmp / "config.yml").write_text("\n".join(config) + "\n")
    log_path = tmp / "registry.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [binary, "serve", str(tmp / "config.yml")], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        scheme = "https" if auth else "http"
        _wait_up(f"{scheme}://{host}/v2/", ca_file, proc, log_path)
        yield Registry(host, storage, log_path, username, password, ca_file)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A plain-HTTP registry without auth on 127.0.0.1 (session-wide)."""
    yield from _start(tmp_path_factory.mktemp("registry"), auth=False)


@pytest.fixture(scope="session")
def registry_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A TLS registry (self-signed CA in ``ca_file``) with htpasswd Basic auth."""
    yield from _start(tmp_path_factory.mktemp("registry-auth"), auth=True)

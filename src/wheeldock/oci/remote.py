"""The registry destination: the OCI distribution spec over httpx.

Push (ko's model): for each blob a ``HEAD`` asks whether the registry has it; if so its bytes
are never read (a lazy layer is not even built). Missing blobs go up in one streamed ``PUT``
(or ``PATCH`` chunks when ``chunk_size`` is set), optionally mounted from another repository
first; manifests go last, each with its own media type, an index after its images.

Retries: every call that can be repeated (``HEAD``/``GET``, a manifest ``PUT``, a blob's upload
as a whole: a new upload session then its ``PUT``) is tried again on a 5xx, 408 or 429 answer or a
lost connection, after a capped exponential backoff with jitter, or the ``Retry-After`` the
registry asked for. A chunked upload resumes from the offset the registry reports (the spec's
upload status: ``GET`` the upload URL, read its ``Range``). Each operation is bounded by
:class:`RetryPolicy` (attempts and seconds); the final error says what failed, how, and the fix.

Auth: explicit user/password, else ``~/.docker/config.json`` (``auths``, or a credential helper).
A 401 answer's ``WWW-Authenticate`` challenge picks Basic or Bearer; for Bearer a token is
fetched from the realm for ``repository:NAME:pull,push`` and reused. TLS is verified (``ca_file``
adds a CA); plain HTTP is used only for localhost/127.0.0.1 or with ``insecure``.

Why not oras-py: see ``docs/registry-client.md``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any, TypedDict, TypeVar, Unpack

import httpx

from wheeldock.edges import process
from wheeldock.errors import (
    CommandFailed,
    DigestMismatch,
    InvalidDockerConfig,
    InvalidReference,
    NotFound,
    RegistryUnreachable,
    ToolNotFound,
    WheeldockError,
)
from wheeldock.oci.blobs import CHUNK, BlobStore, default_store
from wheeldock.oci.digest import Digest
from wheeldock.oci.image import (
    DOCKER_MEDIA_TYPE_LIST,
    DOCKER_MEDIA_TYPE_MANIFEST,
    INDEX_MEDIA_TYPES,
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_MANIFEST,
    Image,
    Index,
    Platform,
    iter_images,
)
from wheeldock.oci.layer import Layer
from wheeldock.oci.reference import Name, RegistryRef, parse, parse_name
from wheeldock.oci.result import PublishResult

log = logging.getLogger(__name__)

ACCEPT = ", ".join(
    [MEDIA_TYPE_MANIFEST, MEDIA_TYPE_INDEX, DOCKER_MEDIA_TYPE_MANIFEST, DOCKER_MEDIA_TYPE_LIST]
)
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
#: Seconds one request may take (a connection: 30).
TIMEOUT = 300.0
#: Blobs uploaded at once: enough to hide round trips, few enough for a small registry.
PARALLEL_UPLOADS = 4


class RegistryError(WheeldockError):
    """The registry answered with an error (status, and the spec's error codes when given)."""


#: Answers that say "not now" rather than "no": the same request may succeed later.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How one registry operation is tried again after a transient failure.

    At most ``attempts`` tries and ``seconds`` of wall-clock time per operation (a blob's
    upload, a manifest, a ``HEAD``). The n-th wait is drawn from ``[d/2, d]`` with
    ``d = min(max_delay, first_delay * 2**(n-1))``; a ``Retry-After`` answer replaces it (capped
    by the time left). ``sleep`` and ``clock`` are for tests; ``seed`` makes the jitter repeatable.
    """

    attempts: int = 6
    seconds: float = 180.0
    first_delay: float = 0.5
    max_delay: float = 15.0
    seed: int | None = None
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def backoff(self, failures: int, rng: random.Random) -> float:
        """The wait after the ``failures``-th failure (1-based), jitter included."""
        ceiling = min(self.max_delay, self.first_delay * 2.0 ** (failures - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class _Transient(Exception):
    """One attempt failed in a way that may pass: a 5xx/408/429 answer (internal to retries)."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


def _retry_after(resp: httpx.Response, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the registry asked to wait (``Retry-After``: delta-seconds or an HTTP date)."""
    value = resp.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now())
    except (TypeError, ValueError):
        return None


def _transient(resp: httpx.Response) -> _Transient:
    if not resp.is_stream_consumed:
        resp.read()
    detail = _detail(resp)
    reason = f"the registry answered {resp.status_code}" + (f" ({detail})" if detail else "")
    return _Transient(reason, resp.status_code, _retry_after(resp))


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


Body = Callable[[], Iterator[bytes]] | bytes | None


class _CallOptions(TypedDict, total=False):
    """What :meth:`_Session.call` passes on to :meth:`_Session.request`."""

    body: Body
    headers: dict[str, str] | None
    follow_redirects: bool


# -- credentials --------------------------------------------------------------------------------


def docker_config_path() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"


def credentials_for(registry: str, config: Path | None = None) -> Credentials | None:
    """Credentials for ``registry`` from Docker's config: ``auths``, ``credHelpers``,
    ``credsStore`` (a ``docker-credential-*`` helper, run through :mod:`wheeldock.edges.process`)."""
    path = config or docker_config_path()
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InvalidDockerConfig(
            f"Docker's config is unreadable ({exc})",
            path=path,
            fix="fix or remove it, or pass the user and password explicitly",
        ) from exc
    keys = [registry, f"https://{registry}", f"http://{registry}"]
    if registry in ("docker.io", DOCKER_HUB_API, "index.docker.io"):
        keys.insert(0, DOCKER_HUB_AUTH_KEY)
    auths = data.get("auths") or {}
    for key in keys:
        entry = auths.get(key) or {}
        if entry.get("auth"):
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            return Credentials(user, password)
        if entry.get("username"):
            return Credentials(entry["username"], entry.get("password", ""))
    helper = (data.get("credHelpers") or {}).get(registry) or data.get("credsStore")
    if helper:
        for key in keys:
            try:
                out = process.run(
                    [f"docker-credential-{helper}", "get"],
                    streams=process.Streams(input=key.encode()),
                ).stdout
            except (CommandFailed, ToolNotFound):
                continue
            found = json.loads(out)
            if found.get("Username"):
                return Credentials(found["Username"], found.get("Secret", ""))
    return None


# -- the session --------------------------------------------------------------------------------

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class _Session:
    """One registry and repository: scheme chosen, auth negotiated once, reused by all calls."""

    def __init__(
        self,
        name: Name,
        *,
        auth: Credentials | tuple[str, str] | None,
        ca_file: Path | None,
        insecure: bool,
        actions: str,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        pull_from: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        #: other repositories a token must let us read (blobs mounted from them)
        self.pull_from = pull_from
        self.retry = retry or RetryPolicy()
        self._rng = random.Random(self.retry.seed)
        self.host = DOCKER_HUB_API if name.registry == "docker.io" else name.registry
        if isinstance(auth, tuple):
            auth = Credentials(*auth)
        self.credentials = auth if auth is not None else credentials_for(name.registry)
        self.actions = actions
        self._auth_header: str | None = None
        self._lock = threading.Lock()
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            verify = ssl.create_default_context()
            verify.load_verify_locations(cafile=str(ca_file))
        elif insecure:
            verify = False
        self.client = httpx.Client(
            verify=verify,
            transport=transport,
            timeout=httpx.Timeout(TIMEOUT, connect=30.0),
            trust_env=not name.is_local,  # no proxy for a registry on this machine
            follow_redirects=False,
        )
        self.plain_http_ok = name.is_local or insecure
        self.base = self._pick_scheme(ca_file is not None)

    def close(self) -> None:
        self.client.close()

    def _pick_scheme(self, tls_required: bool) -> str:
        https = f"https://{self.host}"
        try:
            # a connection that cannot be made here is an answer (wrong address, TLS, or plain
            # HTTP next), not a hiccup: only a broken answer is tried again
            self.retrying(f"reaching {https}", lambda: self._ping(https), connect=False)
            return https
        except httpx.TransportError as exc:
            tls_error = exc
            if tls_required or not self.plain_http_ok:
                raise RegistryUnreachable(
                    f"cannot reach {https} over TLS ({exc})",
                    fix="check the address; for a self-signed registry pass its CA file "
                    "(ca_file / --ca-file), or --insecure to allow plain HTTP",
                ) from exc
        http = f"http://{self.host}"
        try:
            self.retrying(f"reaching {http}", lambda: self._ping(http), connect=False)
        except (httpx.TransportError, RegistryError) as exc:
            raise RegistryUnreachable(
                f"cannot reach the registry at {self.host} over TLS ({tls_error}) "
                f"nor plain HTTP ({exc})",
                fix="start it or check the host and port; for a registry with a self-signed "
                "certificate pass its CA file (ca_file / --ca-file)",
            ) from exc
        return http

    def _ping(self, base: str) -> None:
        resp = self.client.get(f"{base}/v2/")
        if resp.status_code == 401:
            self._authenticate(resp)
        elif resp.status_code in RETRY_STATUSES:
            raise _transient(resp)
        elif resp.status_code != 200:
            raise RegistryError(
                f"{base}/v2/ answered {resp.status_code}: not the registry API",
                fix="check the host and port in the reference",
            )

    def _authenticate(self, resp: httpx.Response) -> None:
        challenge = resp.headers.get("www-authenticate", "")
        scheme, _, rest = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(rest))
        with self._lock:
            if scheme.lower() == "basic":
                if self.credentials is None:
                    raise self._needs_login()
                token = f"{self.credentials.username}:{self.credentials.password}"
                self._auth_header = "Basic " + base64.b64encode(token.encode()).decode()
            elif scheme.lower() == "bearer":
                self._auth_header = "Bearer " + self._token(params)
            else:
                raise RegistryError(
                    f"{self.host} asks for an unsupported auth scheme: {challenge!r}",
                    fix="use a registry with Basic or Bearer token auth",
                )

    def _token(self, params: dict[str, str]) -> str:
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"{self.host}'s Bearer challenge names no realm")
        scopes = [f"repository:{self.name.repository}:{self.actions}"]
        scopes += [f"repository:{repo}:pull" for repo in self.pull_from]
        query: dict[str, str | list[str]] = {"scope": scopes if len(scopes) > 1 else scopes[0]}
        if params.get("service"):
            query["service"] = params["service"]
        basic = None
        if self.credentials is not None:
            basic = (self.credentials.username, self.credentials.password)
        resp = self.client.get(realm, params=query, auth=basic)
        if resp.status_code in (401, 403):
            raise self._needs_login()
        if resp.status_code != 200:
            raise RegistryError(f"the token endpoint {realm} answered {resp.status_code}")
        data = resp.json()
        token = data.get("token") or data.get("access_token")
        if not token:
            raise RegistryError(f"the token endpoint {realm} returned no token")
        return str(token)

    def _needs_login(self) -> WheeldockError:
        return RegistryError(
            f"{self.host} refused the credentials for {self.name.repository} "
            f"({'none found' if self.credentials is None else 'user ' + self.credentials.username})",
            fix=f"`docker login {self.name.registry}`, or pass the user and password explicitly",
        )

    def url(self, path: str) -> str:
        return f"{self.base}/v2/{self.name.repository}/{path}"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": self._auth_header} if self._auth_header else {}

    def request(
        self,
        method: str,
        url: str,
        *,
        body: Body = None,
        headers: dict[str, str] | None = None,
        follow_redirects: bool = False,
        stream: bool = False,
    ) -> httpx.Response:
        """Send with the negotiated auth; on 401 re-negotiate from the new challenge, retry once."""
        for attempt in (0, 1):
            hdrs = dict(headers or {})
            if self._auth_header:
                hdrs["Authorization"] = self._auth_header
            content = body() if callable(body) else body
            req = self.client.build_request(method, url, content=content, headers=hdrs)
            resp = self.client.send(req, stream=stream, follow_redirects=follow_redirects)
            if resp.status_code != 401 or attempt == 1:
                return resp
            resp.close()
            self._authenticate(resp)
        raise AssertionError("unreachable")  # pragma: no cover

    def call(self, method: str, url: str, **options: Unpack[_CallOptions]) -> httpx.Response:
        """:meth:`request` (not streamed) that turns a 5xx/408/429 answer into
        :class:`_Transient`, for use inside :meth:`retrying`."""
        resp = self.request(method, url, **options)
        if resp.status_code in RETRY_STATUSES:
            raise _transient(resp)
        return resp

    def retrying(self, what: str, attempt: Callable[[], T], *, connect: bool = True) -> T:
        """``attempt()`` until it returns, tried again after :class:`_Transient` or a lost
        connection within :attr:`retry`'s bounds; with ``connect`` False a connection that
        cannot be made (refused, TLS handshake) is raised at once. ``attempt`` must be safe to
        repeat. Gives up with a :class:`RegistryError` saying what failed and how."""
        policy = self.retry
        started = policy.clock()
        failures = 0
        while True:
            try:
                return attempt()
            except _Transient as exc:
                reason, status, asked = exc.reason, exc.status, exc.retry_after
            except httpx.TransportError as exc:
                if not connect and isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                    raise
                reason, status, asked = f"the connection failed ({_describe(exc)})", None, None
            failures += 1
            left = policy.seconds - (policy.clock() - started)
            wait = asked if asked is not None else policy.backoff(failures, self._rng)
            if failures >= policy.attempts or wait > left:
                raise self._gave_up(what, reason, status, failures, policy.clock() - started)
            log.info("%s: %s; trying again in %.1f s (%d/%d)",
                     what, reason, wait, failures + 1, policy.attempts)  # fmt: skip
            policy.sleep(wait)

    def _gave_up(
        self, what: str, reason: str, status: int | None, tries: int, seconds: float
    ) -> RegistryError:
        if status == 429:
            fix = (
                "the registry is rate-limiting: wait, or log in (`docker login`) for a higher limit"
            )
        elif status is None:
            fix = f"check that {self.host} is up and reachable from here (proxy, firewall)"
        else:
            fix = f"{self.host} is failing: check its health and logs"
        return RegistryError(
            f"{what} on {self.host}: {reason}; gave up after {tries} attempt(s) in {seconds:.1f} s",
            fix=fix + "; then run again (what was uploaded stays: a rerun skips it)",
        )


def _describe(exc: httpx.TransportError) -> str:
    return str(exc) or type(exc).__name__


def _detail(resp: httpx.Response) -> str:
    """The spec's error codes and messages in an answer, else the start of its body."""
    try:
        errors = resp.json().get("errors") or []
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
    except (ValueError, AttributeError, json.JSONDecodeError):
        return resp.text[:200] if not resp.is_stream_consumed or resp.is_closed else ""


def _fail(resp: httpx.Response, what: str) -> RegistryError:
    detail = _detail(resp)
    fix = None
    if resp.status_code in (401, 403):
        fix = "check the credentials have push access to this repository (`docker login`)"
    return RegistryError(
        f"{what}: the registry answered {resp.status_code}" + (f" ({detail})" if detail else ""),
        fix=fix,
    )


def _chunks(opener: Callable[[], IO[bytes]], size: int | None = None) -> Iterator[bytes]:
    with opener() as fh:
        while chunk := fh.read(CHUNK if size is None else min(CHUNK, size)):
            yield chunk


# -- push ---------------------------------------------------------------------------------------


@dataclass
class _Upload:
    """A blob's upload across attempts: the session's URL and, when chunked, the bytes the
    registry has (``offset``)."""

    digest: Digest
    size: int
    opener: Callable[[], IO[bytes]]
    location: str | None = None
    offset: int = 0
    attempts: int = 0


@dataclass
class _Counts:
    written: int = 0
    skipped: int = 0
    bytes: int = 0


class _Pusher:
    def __init__(self, session: _Session, chunk_size: int | None, mount_from: str | None) -> None:
        self.s = session
        self.chunk_size = chunk_size
        self.mount_from = mount_from
        self.counts = _Counts()
        self._lock = threading.Lock()
        self._done: set[Digest] = set()

    def _count(self, *, written: bool, size: int) -> None:
        with self._lock:
            if written:
                self.counts.written += 1
                self.counts.bytes += size
            else:
                self.counts.skipped += 1

    def exists(self, digest: Digest) -> bool:
        return self.s.retrying(f"checking blob {digest.short}", lambda: self._exists(digest))

    def _exists(self, digest: Digest) -> bool:
        resp = self.s.call("HEAD", self.s.url(f"blobs/{digest}"))
        if resp.status_code == 200:
            return True
        if resp.status_code == 404:
            return False
        raise _fail(resp, f"checking blob {digest.short}")

    def blob(self, digest: Digest, size: int, opener: Callable[[], IO[bytes]]) -> None:
        """Upload one blob unless the registry has it; ``opener`` is called only to upload."""
        with self._lock:
            if digest in self._done:
                return
            self._done.add(digest)
        if self.exists(digest):
            log.debug("blob %s already there", digest.short)
            self._count(written=False, size=size)
            return
        upload = _Upload(digest, size, opener)
        written = self.s.retrying(
            f"uploading blob {digest.short} ({size} bytes)", lambda: self._upload(upload)
        )
        self._count(written=written, size=size)

    def _upload(self, up: _Upload) -> bool:
        """One attempt at an upload; True when bytes were sent, False when the blob was mounted
        or an earlier attempt's bytes had landed after all (its answer was lost)."""
        if up.attempts:
            if up.location is not None:
                self._resume(up)
            if up.location is None and self._exists(up.digest):
                return False
        up.attempts += 1
        if up.location is None:
            started = self._start_upload(up.digest)
            if started is None:
                return False
            up.location, up.offset = started, 0
        if self.chunk_size:
            self._patch_chunks(up)
            body: Body = b""
            headers = {"Content-Type": "application/octet-stream", "Content-Length": "0"}
        else:
            body = lambda: _chunks(up.opener)  # noqa: E731 - re-openable on an auth retry
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(up.size)}
        assert up.location is not None
        url = httpx.URL(up.location).copy_merge_params({"digest": str(up.digest)})
        if not self.chunk_size:
            up.location = None  # a failed monolithic PUT starts a new session next time
        resp = self.s.call("PUT", str(url), body=body, headers=headers)
        if resp.status_code == 404 and "BLOB_UPLOAD_UNKNOWN" in _detail(resp):
            raise _session_gone(up)
        if resp.status_code != 201:
            raise _fail(resp, f"uploading blob {up.digest.short} ({up.size} bytes)")
        return True

    def _start_upload(self, digest: Digest) -> str | None:
        """A new upload session's URL, or None when the blob was mounted from ``mount_from``."""
        start_url = self.s.url("blobs/uploads/")
        if self.mount_from:
            mount = httpx.URL(start_url).copy_merge_params(
                {"mount": str(digest), "from": self.mount_from}
            )
            resp = self.s.call("POST", str(mount), body=b"")
            if resp.status_code == 201:
                return None
        else:
            resp = self.s.call("POST", start_url, body=b"")
        if resp.status_code != 202:
            raise _fail(resp, f"starting the upload of {digest.short}")
        return self._location(resp)

    def _resume(self, up: _Upload) -> None:
        """Ask the registry how much of a chunked upload it has (``GET`` of the upload URL, its
        ``Range``: ``0-LAST``); a session it no longer knows is dropped (``location`` None)."""
        assert up.location is not None
        resp = self.s.call("GET", up.location)
        if resp.status_code == 404:
            log.info("the upload session of %s is gone; starting anew", up.digest.short)
            up.location, up.offset = None, 0
            return
        if resp.status_code != 204:
            raise _fail(resp, f"asking the status of the upload of {up.digest.short}")
        have = resp.headers.get("range", "")
        last = have.rpartition("-")[2]
        up.offset = int(last) + 1 if have and last.isdigit() else 0
        up.location = self._location(resp) if resp.headers.get("location") else up.location
        log.info("resuming the upload of %s at byte %d", up.digest.short, up.offset)

    def _location(self, resp: httpx.Response) -> str:
        location = resp.headers.get("location")
        if not location:
            raise RegistryError("the registry started an upload but gave no Location")
        return str(httpx.URL(self.s.base).join(location))

    def _patch_chunks(self, up: _Upload) -> None:
        """Send the bytes from ``up.offset`` on, one ``PATCH`` per chunk; ``up`` follows the
        registry's progress so a failed attempt resumes where it stopped."""
        assert self.chunk_size and up.location is not None
        with up.opener() as fh:
            fh.seek(up.offset)
            while chunk := fh.read(self.chunk_size):
                end = up.offset + len(chunk) - 1
                resp = self.s.call(
                    "PATCH",
                    up.location,
                    body=chunk,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{up.offset}-{end}",
                        "Content-Length": str(len(chunk)),
                    },
                )
                if resp.status_code == 404:
                    raise _session_gone(up)
                if resp.status_code != 202:
                    raise _fail(resp, f"uploading bytes {up.offset}-{end} of {up.size}")
                up.location = self._location(resp)
                up.offset = end + 1

    def manifest(self, data: bytes, media_type: str, reference: str) -> Digest:
        digest = Digest.of_bytes(data)
        resp = self.s.retrying(
            f"putting the manifest {reference}",
            lambda: self.s.call(
                "PUT",
                self.s.url(f"manifests/{reference}"),
                body=data,
                headers={"Content-Type": media_type},
            ),
        )
        if resp.status_code not in (200, 201):
            raise _fail(resp, f"putting the manifest {reference}")
        said = resp.headers.get("docker-content-digest")
        if said and said != str(digest):
            raise DigestMismatch(
                "the registry stored the manifest under another digest",
                expected=str(digest),
                actual=said,
            )
        with self._lock:
            self.counts.bytes += len(data)
        return digest

    def image_blobs(self, image: Image, pool: ThreadPoolExecutor) -> None:
        config = image.config_bytes()
        jobs = [
            pool.submit(self.blob, lay.digest, lay.size, lay.compressed) for lay in image.layers
        ]
        jobs.append(pool.submit(self.blob, image.config_digest, len(config), _bytes_opener(config)))
        for job in jobs:
            job.result()


def _session_gone(up: _Upload) -> _Transient:
    """The registry forgot an upload session (it restarted, or purged it): start anew."""
    up.location, up.offset = None, 0
    return _Transient("the registry no longer knows the upload session (404)", 404)


def _bytes_opener(data: bytes) -> Callable[[], IO[bytes]]:
    import io

    return lambda: io.BytesIO(data)


def _name_of(ref: RegistryRef | Name | str) -> Name:
    if isinstance(ref, Name):
        return ref
    if isinstance(ref, RegistryRef):
        return ref.name
    parsed = parse(ref) if ref.startswith("docker://") else RegistryRef(parse_name(ref))
    if not isinstance(parsed, RegistryRef):
        raise InvalidReference(
            f"not a registry reference: {ref!r}", fix="use docker://HOST/REPO:TAG"
        )
    return parsed.name


@dataclass(frozen=True)
class Upload:
    """How :func:`push` sends the blobs the registry lacks: in one request, or in chunks of
    ``chunk_size`` bytes; ``mount_from`` names a repository on the same registry to mount them
    from instead (a blob it lacks is uploaded); ``retry`` bounds the retries of each call
    (default: :class:`RetryPolicy`'s)."""

    chunk_size: int | None = None
    mount_from: str | None = None
    retry: RetryPolicy | None = None


_MONOLITHIC = Upload()


def push(
    target: Image | Index,
    ref: RegistryRef | Name | str,
    store: BlobStore | None = None,
    *,
    auth: Credentials | tuple[str, str] | None = None,
    ca_file: Path | None = None,
    insecure: bool = False,
    upload: Upload = _MONOLITHIC,
    transport: httpx.BaseTransport | None = None,
) -> PublishResult:
    """Push ``target`` to ``ref`` (``docker://HOST/REPO:TAG`` or its parsed form).

    ``upload`` says how missing blobs go up and how often a call is retried (see
    :class:`Upload`). ``transport`` replaces httpx's (for tests). ``store`` is unused: layers
    carry their bytes.
    """
    name = _name_of(ref)
    session = _Session(
        name,
        auth=auth,
        ca_file=ca_file,
        insecure=insecure,
        actions="pull,push",
        transport=transport,
        retry=upload.retry,
        pull_from=(upload.mount_from,) if upload.mount_from else (),
    )
    pusher = _Pusher(session, upload.chunk_size, upload.mount_from)
    try:
        with ThreadPoolExecutor(PARALLEL_UPLOADS, thread_name_prefix="wheeldock-push") as pool:
            for image in iter_images(target):
                pusher.image_blobs(image, pool)
        if isinstance(target, Index):
            for image in target.manifests:
                pusher.manifest(image.manifest_bytes(), image.media_type, str(image.digest))
        digest = pusher.manifest(target.manifest_bytes(), target.media_type, name.reference)
    except httpx.TransportError as exc:
        raise RegistryUnreachable(
            f"lost the connection to {session.host} ({exc})", fix="check the registry is up; retry"
        ) from exc
    finally:
        session.close()
    c = pusher.counts
    log.info("pushed %s: %d blobs uploaded, %d already there", name, c.written, c.skipped)
    return PublishResult(f"docker://{name}", digest, c.bytes, c.written, c.skipped)


# -- read ---------------------------------------------------------------------------------------


def read(
    ref: RegistryRef | Name | str,
    store: BlobStore | None = None,
    *,
    platform: Platform | None = None,
    auth: Credentials | tuple[str, str] | None = None,
    ca_file: Path | None = None,
    insecure: bool = False,
    transport: httpx.BaseTransport | None = None,
    retry: RetryPolicy | None = None,
) -> Image | Index:
    """Read an image (or, without ``platform``, a whole index) from a registry.

    Manifests and configs are fetched now and checked against their digests; layers are lazy:
    each is downloaded into ``store`` (checked against its digest) the first time its bytes
    are needed, so pushing it back to the same registry never downloads it.
    """
    name = _name_of(ref)
    store = store or default_store()
    session = _Session(
        name, auth=auth, ca_file=ca_file, insecure=insecure, actions="pull", transport=transport,
        retry=retry,
    )  # fmt: skip
    try:
        raw = _get_manifest(session, name.reference, name.digest)
        media_type = json.loads(raw).get("mediaType")
        if media_type in INDEX_MEDIA_TYPES:
            children = json.loads(raw).get("manifests", [])
            if platform is not None:
                index = Index(tuple(_stub(c) for c in children))
                chosen = index.image(platform)
                return _read_image(session, store, chosen.annotations["digest"])
            images = tuple(_read_image(session, store, c["digest"]) for c in children)
            return Index(images, dict(json.loads(raw).get("annotations") or {}), raw_manifest=raw)
        return _image_from(session, store, raw)
    except httpx.TransportError as exc:
        raise RegistryUnreachable(
            f"lost the connection to {session.host} ({exc})", fix="check the registry is up"
        ) from exc


def _stub(desc: dict[str, Any]) -> Image:
    """A placeholder image carrying a child descriptor's platform, to choose among them."""
    return Image(
        platform=Platform.from_json(desc.get("platform") or {}),
        annotations={"digest": desc["digest"]},
    )


def _get_manifest(session: _Session, reference: str, digest: Digest | None) -> bytes:
    what = f"getting the manifest {reference}"
    resp = _get(session, f"manifests/{reference}", what, headers={"Accept": ACCEPT})
    if resp.status_code == 404:
        raise NotFound(
            f"{session.name.registry}/{session.name.repository}:{reference} does not exist",
            fix="check the name and tag (`skopeo list-tags docker://…`)",
        )
    if resp.status_code != 200:
        raise _fail(resp, what)
    if digest is not None:
        _check_digest(resp.content, digest, "the manifest does not match the digest asked for")
    return resp.content


def _read_image(session: _Session, store: BlobStore, digest_text: str) -> Image:
    digest = Digest.parse(digest_text)
    return _image_from(session, store, _get_manifest(session, str(digest), digest))


def _get_blob(session: _Session, digest: Digest) -> bytes:
    what = f"getting blob {digest.short}"
    resp = _get(session, f"blobs/{digest}", what, follow_redirects=True)
    if resp.status_code != 200:
        raise _fail(resp, what)
    _check_digest(resp.content, digest, "a blob does not match its digest")
    return resp.content


def _get(
    session: _Session, path: str, what: str, **options: Unpack[_CallOptions]
) -> httpx.Response:
    """A GET of ``path`` in the repository, retried as :meth:`_Session.retrying` says."""
    url = session.url(path)
    return session.retrying(what, lambda: session.call("GET", url, **options))


def _check_digest(content: bytes, digest: Digest, what: str) -> None:
    actual = Digest.of_bytes(content)
    if actual != digest:
        raise DigestMismatch(what, expected=str(digest), actual=str(actual))


def _image_from(session: _Session, store: BlobStore, raw: bytes) -> Image:
    manifest = json.loads(raw)
    config_raw = _get_blob(session, Digest.parse(manifest["config"]["digest"]))
    diff_ids = json.loads(config_raw).get("rootfs", {}).get("diff_ids", [])
    layers = []
    for ldesc, diff_id in zip(manifest.get("layers", []), diff_ids, strict=True):
        digest = Digest.parse(ldesc["digest"])
        layers.append(
            Layer(
                digest=digest,
                diff_id=Digest.parse(diff_id),
                size=int(ldesc["size"]),
                media_type=ldesc["mediaType"],
                locate=_download_locator(session, store, digest),
                annotations=dict(ldesc.get("annotations") or {}),
            )
        )
    return Image.from_raw(raw, config_raw, tuple(layers))


def _download_locator(session: _Session, store: BlobStore, digest: Digest) -> Callable[[], Path]:
    # The session outlives read(): a lazy layer may be fetched long after.
    url = session.url(f"blobs/{digest}")

    def download() -> None:
        with session.client.stream(
            "GET", url, headers=session.auth_headers(), follow_redirects=True
        ) as resp:
            if resp.status_code in RETRY_STATUSES:
                raise _transient(resp)
            if resp.status_code != 200:
                resp.read()
                raise _fail(resp, f"downloading layer {digest.short}")
            with store.writer(expected=digest) as w:
                for chunk in resp.iter_bytes(CHUNK):
                    w.write(chunk)

    def locate() -> Path:
        cached = store.verified(digest)
        if cached is not None:
            return cached
        session.retrying(f"downloading layer {digest.short}", download)
        return store.path(digest)

    return locate


# -- one request at a time ----------------------------------------------------------------------


class Repository:
    """One repository on a registry, for a caller that asks one thing at a time (the registry
    cache): a manifest by tag, a blob's presence, a blob or manifest put. The connection (scheme,
    auth) is made here, so an unreachable registry raises :class:`RegistryUnreachable` at once;
    each call is retried as ``retry`` says. :meth:`close` when done."""

    def __init__(
        self,
        ref: RegistryRef | Name | str,
        *,
        push: bool,
        auth: Credentials | tuple[str, str] | None = None,
        ca_file: Path | None = None,
        insecure: bool = False,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.name = _name_of(ref)
        self._session = _Session(
            self.name,
            auth=auth,
            ca_file=ca_file,
            insecure=insecure,
            actions="pull,push" if push else "pull",
            transport=transport,
            retry=retry,
        )
        self._pusher = _Pusher(self._session, None, None)

    def close(self) -> None:
        self._session.close()

    def manifest(self, reference: str) -> bytes | None:
        """The manifest tagged (or digested) ``reference``, None when there is none; a manifest
        asked by digest is checked against it."""
        what = f"getting the manifest {reference}"
        resp = _get(self._session, f"manifests/{reference}", what, headers={"Accept": ACCEPT})
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise _fail(resp, what)
        if reference.startswith("sha256:"):
            _check_digest(
                resp.content, Digest.parse(reference), "a manifest does not match its digest"
            )
        return resp.content

    def has_manifest(self, reference: str) -> bool:
        """Whether ``reference`` names a manifest (one ``HEAD``)."""
        url = self._session.url(f"manifests/{reference}")
        resp = self._session.retrying(
            f"checking the manifest {reference}",
            lambda: self._session.call("HEAD", url, headers={"Accept": ACCEPT}),
        )
        if resp.status_code in (200, 404):
            return resp.status_code == 200
        raise _fail(resp, f"checking the manifest {reference}")

    def put_blob(self, digest: Digest, size: int, opener: Callable[[], IO[bytes]]) -> bool:
        """Upload a blob unless the registry has it (it is there when this returns, whatever
        other threads do); True when bytes were sent."""
        if self._pusher.exists(digest):
            return False
        upload = _Upload(digest, size, opener)
        return self._session.retrying(
            f"uploading blob {digest.short} ({size} bytes)",
            lambda: self._pusher._upload(upload),
        )

    def put_manifest(self, data: bytes, media_type: str, reference: str) -> Digest:
        """Put a manifest under ``reference`` (a tag); its digest."""
        return self._pusher.manifest(data, media_type, reference)

    def blob_locator(self, store: BlobStore, digest: Digest) -> Callable[[], Path]:
        """A function that gives the blob's file in ``store``, downloading it first (checked
        against ``digest``) when the store lacks it."""
        return _download_locator(self._session, store, digest)


__all__ = [
    "RETRY_STATUSES",
    "Credentials",
    "RegistryError",
    "Repository",
    "RetryPolicy",
    "credentials_for",
    "push",
    "read",
]

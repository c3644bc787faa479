"""Registry retries: a fake registry (the distribution spec's push and pull calls) behind
httpx.MockTransport, with faults injected per request."""

from __future__ import annotations

import hashlib
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest
from support.oci import EPOCH

from wheeldock.oci import image, mutate, remote
from wheeldock.oci.blobs import BlobStore
from wheeldock.oci.image import Image
from wheeldock.oci.layer import TarEntry, build_layer
from wheeldock.oci.remote import RegistryError, RetryPolicy

pytestmark = pytest.mark.usefixtures("cache_in_tmp")

#: A fault: given the request, a response to answer instead, an exception to raise, or None.
Fault = Callable[[httpx.Request], httpx.Response | Exception | None]

_UPLOAD = re.compile(r"/v2/(.+)/blobs/uploads/([^/]*)$")
_BLOB = re.compile(r"/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$")
_MANIFEST = re.compile(r"/v2/(.+)/manifests/([^/]+)$")


@dataclass
class FakeRegistry:
    """Just enough of a registry: uploads (monolithic and chunked, with their status), blobs
    and manifests. ``fault`` runs before a request is served; ``cut`` after (the registry did
    the work but the answer is lost)."""

    fault: Fault = lambda _req: None
    cut: Callable[[httpx.Request], bool] = lambda _req: False
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, bytes] = field(default_factory=dict)
    sessions: dict[str, bytearray] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    #: (session, first byte) of each PATCH the registry accepted
    patched: list[tuple[str, int]] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, req: httpx.Request) -> httpx.Response:
        self.log.append(f"{req.method} {req.url.path}")
        injected = self.fault(req)
        if isinstance(injected, Exception):
            raise injected
        if injected is not None:
            return injected
        resp = self.serve(req)
        if self.cut(req):
            raise httpx.RemoteProtocolError("peer closed connection mid-response")
        return resp

    def serve(self, req: httpx.Request) -> httpx.Response:
        path = req.url.path
        if path == "/v2/":
            return httpx.Response(200)
        if m := _UPLOAD.match(path):
            return self.upload(req, m[1], m[2])
        if m := _BLOB.match(path):
            data = self.blobs.get(m[2])
            if data is None:
                return httpx.Response(404)
            return httpx.Response(200, content=b"" if req.method == "HEAD" else data)
        if m := _MANIFEST.match(path):
            if req.method == "PUT":
                digest = "sha256:" + hashlib.sha256(req.content).hexdigest()
                self.manifests[m[2]] = self.manifests[digest] = req.content
                return httpx.Response(201, headers={"Docker-Content-Digest": digest})
            found = self.manifests.get(m[2])
            return httpx.Response(200, content=found) if found else httpx.Response(404)
        return httpx.Response(400)

    def upload(self, req: httpx.Request, repo: str, session: str) -> httpx.Response:
        if req.method == "POST":
            session = uuid.uuid4().hex
            self.sessions[session] = bytearray()
        if session not in self.sessions:
            return httpx.Response(404, json={"errors": [{"code": "BLOB_UPLOAD_UNKNOWN"}]})
        data = self.sessions[session]
        if req.method == "PATCH":
            start = int(req.headers["content-range"].split("-")[0])
            if start != len(data):
                return httpx.Response(416)
            data += req.content
            self.patched.append((session, start))
        elif req.method == "PUT":
            data += req.content
            digest = req.url.params["digest"]
            if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
                return httpx.Response(400, json={"errors": [{"code": "DIGEST_INVALID"}]})
            self.blobs[digest] = bytes(data)
            del self.sessions[session]
            return httpx.Response(201)
        headers = {
            "Location": f"/v2/{repo}/blobs/uploads/{session}",
            "Range": f"0-{max(len(data) - 1, 0)}",
        }
        return httpx.Response(204 if req.method == "GET" else 202, headers=headers)


@dataclass
class FakeTime:
    """A clock that moves only when slept on."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def policy(self, **kwargs: float) -> RetryPolicy:
        return RetryPolicy(sleep=self.sleep, clock=lambda: self.now, seed=7, **kwargs)  # type: ignore[arg-type]


def two_layer_image(store: BlobStore) -> Image:
    big = random.Random(1).randbytes(600_000)  # incompressible: several chunks
    layers = [
        build_layer([TarEntry.file("app/big", big)], store=store, mtime=EPOCH),
        build_layer([TarEntry.file("app/x", b"x")], store=store, mtime=EPOCH),
    ]
    return mutate.append_layers(image.empty(), layers)


def failing(times: int, match: str, answer: Callable[[], httpx.Response | Exception]) -> Fault:
    """A fault for the first ``times`` requests whose "METHOD path" contains ``match``."""
    left = [times]

    def fault(req: httpx.Request) -> httpx.Response | Exception | None:
        if match in f"{req.method} {req.url.path}" and left[0] > 0:
            left[0] -= 1
            return answer()
        return None

    return fault


def push(
    img: Image,
    reg: FakeRegistry,
    clock: FakeTime,
    *,
    retry: RetryPolicy | None = None,
    chunk_size: int | None = None,
) -> remote.PublishResult:
    upload = remote.Upload(chunk_size=chunk_size, retry=retry or clock.policy())
    return remote.push(
        img, "docker://127.0.0.1:5999/team/app:1", transport=reg.transport(), upload=upload
    )


def assert_pushed(reg: FakeRegistry, img: Image) -> None:
    assert reg.manifests["1"] == img.manifest_bytes()
    for lay in img.layers:
        assert hashlib.sha256(reg.blobs[str(lay.digest)]).hexdigest() == lay.digest.hex
    assert str(img.config_digest) in reg.blobs


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408], ids=lambda s: f"answered-{s}")
def test_transient_statuses_are_retried_until_the_push_completes(
    store: BlobStore, status: int
) -> None:
    img = two_layer_image(store)
    clock = FakeTime()
    reg = FakeRegistry(
        fault=failing(2, "PUT /v2/team/app/manifests", lambda: httpx.Response(status))
    )
    result = push(img, reg, clock)
    assert result.digest == img.digest
    assert_pushed(reg, img)
    assert len(clock.sleeps) == 2


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(first_delay=0.5, max_delay=4.0)
    rng = random.Random(3)
    for failures, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (9, 4.0)]:
        waits = {policy.backoff(failures, rng) for _ in range(50)}
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(waits) > 1  # jittered


def test_retry_after_is_honoured(store: BlobStore) -> None:
    img = two_layer_image(store)
    clock = FakeTime()
    reg = FakeRegistry(
        fault=failing(1, "HEAD", lambda: httpx.Response(429, headers={"Retry-After": "7"}))
    )
    push(img, reg, clock)
    assert clock.sleeps == [7.0]


def test_gives_up_after_the_attempts_with_what_failed_and_the_fix(store: BlobStore) -> None:
    img = two_layer_image(store)
    clock = FakeTime()
    always = failing(99, "PUT /v2/team/app/manifests", lambda: httpx.Response(
        503, json={"errors": [{"code": "UNAVAILABLE", "message": "storage offline"}]}
    ))  # fmt: skip
    reg = FakeRegistry(fault=always)
    with pytest.raises(RegistryError) as info:
        push(img, reg, clock, retry=clock.policy(attempts=4))
    message = info.value.message
    assert "putting the manifest 1 on 127.0.0.1:5999" in message
    assert "answered 503 (UNAVAILABLE: storage offline)" in message
    assert "gave up after 4 attempt(s)" in message
    assert "check its health" in (info.value.fix or "")
    assert reg.log.count("PUT /v2/team/app/manifests/1") == 4


def test_total_time_bounds_the_retries(store: BlobStore) -> None:
    img = two_layer_image(store)
    clock = FakeTime()
    slow = failing(
        99, "PUT /v2/team/app/manifests", lambda: httpx.Response(429, headers={"Retry-After": "30"})
    )
    reg = FakeRegistry(fault=slow)
    with pytest.raises(RegistryError, match=r"answered 429.*gave up after 2 attempt") as info:
        push(img, reg, clock, retry=clock.policy(seconds=45, attempts=10))
    assert clock.sleeps == [30.0]  # the second wait would pass the 45 s bound
    assert "rate-limiting" in (info.value.fix or "")


def test_client_errors_are_not_retried(store: BlobStore) -> None:
    img = two_layer_image(store)
    clock = FakeTime()
    reg = FakeRegistry(fault=failing(99, "manifests", lambda: httpx.Response(400)))
    with pytest.raises(RegistryError, match="answered 400"):
        push(img, reg, clock)
    assert clock.sleeps == []


def test_lost_connections_restart_a_monolithic_upload(store: BlobStore) -> None:
    img = two_layer_image(store)
    clock = FakeTime()
    refused = failing(2, "POST", lambda: httpx.ConnectError("connection refused"))
    reg = FakeRegistry(fault=refused)
    result = push(img, reg, clock)
    assert result.blobs_written == 3
    assert_pushed(reg, img)


def test_an_upload_whose_answer_was_lost_is_not_sent_again(store: BlobStore) -> None:
    img = two_layer_image(store)
    clock = FakeTime()
    cut_once = [True]

    def cut(req: httpx.Request) -> bool:
        if req.method == "PUT" and "/blobs/uploads/" in req.url.path and cut_once[0]:
            cut_once[0] = False
            return True
        return False

    reg = FakeRegistry(cut=cut)
    result = push(img, reg, clock)
    assert_pushed(reg, img)
    blob_puts = [e for e in reg.log if e.startswith("PUT") and "/blobs/uploads/" in e]
    assert len(blob_puts) == 3  # the HEAD before the retry found the blob: no second PUT
    assert (result.blobs_written, result.blobs_skipped) == (2, 1)


def test_a_chunked_upload_resumes_from_the_registrys_range(store: BlobStore) -> None:
    img = two_layer_image(store)
    clock = FakeTime()
    patches = [0]

    def third_patch_cut(req: httpx.Request) -> bool:
        if req.method == "PATCH":
            patches[0] += 1
            return patches[0] == 3
        return False

    reg = FakeRegistry(cut=third_patch_cut)
    push(img, reg, clock, chunk_size=128 * 1024)
    assert_pushed(reg, img)
    assert sum(e.startswith("GET /v2/team/app/blobs/uploads/") for e in reg.log) == 1
    sizes = [lay.size for lay in img.layers] + [len(img.config_bytes())]
    chunks = sum(-(-size // (128 * 1024)) for size in sizes)
    assert len(reg.patched) == chunks == len(set(reg.patched))  # every chunk once, none resent


def test_a_chunked_upload_whose_session_is_gone_starts_anew(store: BlobStore) -> None:
    img = two_layer_image(store)
    clock = FakeTime()
    reg = FakeRegistry()
    first_patch = [True]

    def lose_session(req: httpx.Request) -> httpx.Response | Exception | None:
        if req.method == "PATCH" and first_patch[0]:
            first_patch[0] = False
            reg.sessions.clear()  # e.g. the registry restarted and purged its uploads
            return httpx.Response(503)
        return None

    reg.fault = lose_session
    push(img, reg, clock, chunk_size=128 * 1024)
    assert_pushed(reg, img)
    assert any(e.startswith("GET /v2/team/app/blobs/uploads/") for e in reg.log)


def test_reads_are_retried_too(store: BlobStore) -> None:
    img = two_layer_image(store)
    clock = FakeTime()
    reg = FakeRegistry()
    push(img, reg, clock)
    reg.fault = failing(1, "GET /v2/team/app/manifests", lambda: httpx.Response(502))
    blob_gets = [0]

    def first_blob_get_cut(req: httpx.Request) -> bool:
        if req.method == "GET" and "/blobs/sha256:" in req.url.path:
            blob_gets[0] += 1
            return blob_gets[0] == 1
        return False

    reg.cut = first_blob_get_cut
    pulled = remote.read(
        "docker://127.0.0.1:5999/team/app:1", BlobStore(store.root.parent / "pulled"),
        transport=reg.transport(), retry=clock.policy(),
    )  # fmt: skip
    assert isinstance(pulled, Image) and pulled.digest == img.digest
    top = pulled.layers[0]
    assert hashlib.sha256(top.compressed().read()).hexdigest() == top.digest.hex
    assert len(clock.sleeps) == 2  # the manifest's 502 and the config's lost answer


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("5", 5.0), ("0", 0.0), ("Wed, 21 Oct 2026 07:28:10 GMT", 10.0), ("soon", None), ("", None)],
)
def test_retry_after_reads_seconds_and_dates(header: str, seconds: float | None) -> None:
    resp = httpx.Response(503, headers={"Retry-After": header} if header else {})
    now = 1792567680.0  # 2026-10-21 07:28:00 GMT
    assert remote._retry_after(resp, now=lambda: now) == seconds

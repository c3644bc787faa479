"""calidda-api: the kiosk's account-balance service.

Wraps the gas utility's upstream customer-account API (``GET /v1/accounts/{id}``) for the totem
screens: validates the account number, calls the upstream with explicit timeouts and a bounded
number of retries, keeps successful answers for a short time, and turns upstream failures into
answers the kiosk can show.

Settings come from ``config.yaml`` next to this file (or ``$CONFIG_FILE``), then the environment:
``UPSTREAM_URL``, ``UPSTREAM_CONNECT_TIMEOUT``, ``UPSTREAM_READ_TIMEOUT``, ``UPSTREAM_RETRIES``,
``UPSTREAM_BACKOFF``, ``CACHE_TTL``, ``CACHE_MAX_ENTRIES``; ``HOST``/``PORT`` for the listener.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

import cffi
import httpx
import uvicorn
import yaml
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger("calidda_api")

HERE = Path(__file__).resolve().parent
ACCOUNT_PATTERN = r"^[0-9]{6,12}$"

# The compiled loader is several times faster; fall back when PyYAML was built without libyaml.
_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# --- settings ---------------------------------------------------------------------------------


class ConfigError(Exception):
    """The YAML config or the environment holds a value the service cannot start with."""


class Settings(BaseModel):
    """Effective settings; field ``x_y`` is YAML ``x: {y: ...}`` and env ``X_Y``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    upstream_url: str = Field("http://127.0.0.1:9000", pattern=r"^https?://[^\s/]+(/\S*)?$")
    upstream_connect_timeout: float = Field(2.0, gt=0, le=60)
    upstream_read_timeout: float = Field(5.0, gt=0, le=120)
    upstream_retries: int = Field(2, ge=0, le=5)
    upstream_backoff: float = Field(0.1, ge=0, le=5)
    cache_ttl: float = Field(30.0, ge=0, le=3600)
    cache_max_entries: int = Field(1024, ge=1, le=100_000)


def _flatten(data: Mapping[str, Any], where: Path) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for section, body in data.items():
        if not isinstance(body, Mapping):
            raise ConfigError(f"{where}: section {section!r} must be a mapping, got {body!r}")
        for key, value in body.items():
            flat[f"{section}_{key}"] = value
    return flat


def read_config(path: Path) -> dict[str, Any]:
    """The YAML file's settings, flattened to ``Settings`` field names."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YamlLoader)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return _flatten(data, path)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Defaults, overridden by the YAML config, overridden by the environment."""
    env = os.environ if env is None else env
    explicit = env.get("CONFIG_FILE")
    config_path = Path(explicit) if explicit else HERE / "config.yaml"
    values: dict[str, Any] = {}
    if config_path.is_file():
        values.update(read_config(config_path))
    elif explicit:
        raise ConfigError(f"CONFIG_FILE={explicit} does not exist; unset it or point it at a file")
    for field in Settings.model_fields:
        if field.upper() in env:
            values[field] = env[field.upper()]
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings (from {config_path} and env): {problems}") from exc


# --- receipt reference: ISO 7064 MOD 97-10 check digits, parsed by libc via cffi -----------------

_ffi = cffi.FFI()
_ffi.cdef("unsigned long long strtoull(const char *nptr, char **endptr, int base);")
_libc = _ffi.dlopen(None)


def check_digits(account_id: str) -> int:
    """The two MOD 97-10 check digits the printed receipt carries after the account number."""
    raw = account_id.encode("ascii")
    buffer = _ffi.new("char[]", raw)
    end = _ffi.new("char **")
    value = _libc.strtoull(buffer, end, 10)
    if not raw.isdigit() or end[0] - buffer != len(raw):
        raise ValueError(f"account number must be decimal digits: {account_id!r}")
    return 98 - (value * 100) % 97


# --- cache ------------------------------------------------------------------------------------

V = TypeVar("V")


class TTLCache(Generic[V]):
    """Bounded LRU map whose entries expire ``ttl`` seconds after they were stored.

    Only the event loop's thread touches it, so it needs no lock.
    """

    def __init__(
        self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        if self.ttl <= 0:
            return
        self._entries[key] = (self._clock() + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


# --- upstream ---------------------------------------------------------------------------------


class UpstreamAccount(BaseModel):
    """What the upstream answers for ``GET /v1/accounts/{id}``; extra fields are ignored."""

    account_id: str
    holder: str
    balance: Decimal
    currency: str = Field("PEN", pattern=r"^[A-Z]{3}$")
    due_date: date | None = None


class Balance(BaseModel):
    account_id: str
    holder: str = Field(description="masked: the kiosk screen is public")
    balance: Decimal
    currency: str
    due_date: date | None
    reference: str = Field(description="account number and its MOD 97-10 check digits")


class LookupRequest(BaseModel):
    account_id: str = Field(pattern=ACCOUNT_PATTERN, description="6 to 12 digits")


class UpstreamError(Exception):
    """An upstream failure, already mapped to the status the kiosk gets."""

    def __init__(self, status_code: int, detail: str, retry_after: str | None = None) -> None:
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail
        self.retry_after = retry_after


def mask_name(name: str) -> str:
    return " ".join(word[:1] + "*" * (len(word) - 1) for word in name.split())


class Upstream:
    """The upstream account API: retries connect errors and 5xx answers with exponential backoff.

    Only ``GET`` is sent, so repeating a request the upstream may have seen is safe.
    """

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.client = client
        self._sleep = sleep

    async def account(self, account_id: str) -> UpstreamAccount:
        attempts = self.settings.upstream_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                response = await self.client.get(f"/v1/accounts/{account_id}")
            except httpx.ConnectTimeout as exc:
                failure = UpstreamError(
                    504,
                    "upstream did not accept the connection within "
                    f"{self.settings.upstream_connect_timeout}s",
                )
                reason = repr(exc)
            except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
                failure = UpstreamError(502, f"upstream unreachable: {exc or type(exc).__name__}")
                reason = repr(exc)
            except httpx.TimeoutException as exc:
                # The request may be in progress upstream; waiting again would only double the
                # kiosk's wait, so a slow answer is not retried.
                raise UpstreamError(
                    504, f"upstream did not answer within {self.settings.upstream_read_timeout}s"
                ) from exc
            except httpx.HTTPError as exc:
                raise UpstreamError(502, f"upstream request failed: {exc!r}") from exc
            else:
                if response.status_code < 500:
                    return self._parse(account_id, response)
                failure = UpstreamError(502, f"upstream failed with HTTP {response.status_code}")
                reason = f"HTTP {response.status_code}"
            if attempt == attempts:
                log.warning("upstream gave up after %d attempt(s): %s", attempts, reason)
                raise failure
            delay = self.settings.upstream_backoff * 2 ** (attempt - 1)
            log.info(
                "upstream attempt %d/%d failed (%s); retry in %.2fs",
                attempt,
                attempts,
                reason,
                delay,
            )
            await self._sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    @staticmethod
    def _parse(account_id: str, response: httpx.Response) -> UpstreamAccount:
        status = response.status_code
        if status == 404:
            raise UpstreamError(404, f"account {account_id} not found")
        if status == 429:
            raise UpstreamError(
                503,
                "upstream is rate limiting; try again shortly",
                retry_after=response.headers.get("retry-after", "1"),
            )
        if status != 200:
            # The account number was validated here, so any other refusal (401, 403, 400...) is a
            # problem between this service and the upstream, not the kiosk's request.
            raise UpstreamError(502, f"upstream refused the lookup with HTTP {status}")
        try:
            data = response.json()
        except ValueError as exc:
            raise UpstreamError(502, "upstream sent invalid JSON") from exc
        try:
            account = UpstreamAccount.model_validate(data)
        except ValidationError as exc:
            raise UpstreamError(
                502, f"upstream answer has an unexpected shape: {exc.error_count()} error(s)"
            ) from exc
        if account.account_id != account_id:
            raise UpstreamError(502, "upstream answered for a different account")
        return account


# --- app --------------------------------------------------------------------------------------


def create_app(
    settings: Settings | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """The ASGI app; ``transport`` replaces the network for tests."""
    settings = settings or load_settings()
    cache: TTLCache[Balance] = TTLCache(settings.cache_ttl, settings.cache_max_entries)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(
            connect=settings.upstream_connect_timeout,
            read=settings.upstream_read_timeout,
            write=settings.upstream_read_timeout,
            pool=settings.upstream_connect_timeout,
        )
        async with httpx.AsyncClient(
            base_url=settings.upstream_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "calidda-api/1.0", "Accept": "application/json"},
        ) as client:
            app.state.upstream = Upstream(settings, client)
            yield

    app = FastAPI(title="calidda-api", version="1.0.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.cache = cache

    async def lookup(request: Request, response: Response, account_id: str) -> Balance:
        cached = cache.get(account_id)
        if cached is not None:
            response.headers["X-Cache"] = "hit"
            return cached
        upstream: Upstream = request.app.state.upstream
        try:
            account = await upstream.account(account_id)
        except UpstreamError as exc:
            headers = {"Retry-After": exc.retry_after} if exc.retry_after else None
            raise HTTPException(exc.status_code, exc.detail, headers=headers) from exc
        answer = Balance(
            account_id=account_id,
            holder=mask_name(account.holder),
            balance=account.balance,
            currency=account.currency,
            due_date=account.due_date,
            reference=f"{account_id}-{check_digits(account_id):02d}",
        )
        cache.put(account_id, answer)
        response.headers["X-Cache"] = "miss"
        return answer

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/accounts/{account_id}/balance")
    async def balance(
        request: Request,
        response: Response,
        account_id: Annotated[
            str, PathParam(pattern=ACCOUNT_PATTERN, description="6 to 12 digits")
        ],
    ) -> Balance:
        return await lookup(request, response, account_id)

    @app.post("/lookup")
    async def lookup_by_body(request: Request, response: Response, body: LookupRequest) -> Balance:
        return await lookup(request, response, body.account_id)

    return app


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        app = create_app()
        port = int(os.environ.get("PORT", "8000"))
    except (ConfigError, ValueError) as exc:
        print(f"calidda-api: {exc}", file=sys.stderr)
        return 2
    # 0.0.0.0: inside a container the published/host-network port must be reachable from outside.
    uvicorn.run(app, host=os.environ.get("HOST", "0.0.0.0"), port=port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""calidda-api (vcc-totem/api_wrapper.py) against a real fake upstream on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

# Short enough to keep the suite quick, long enough for a loaded CI runner's loopback.
FAST_ENV = {
    "UPSTREAM_CONNECT_TIMEOUT": "1.0",
    "UPSTREAM_READ_TIMEOUT": "0.4",
    "UPSTREAM_RETRIES": "2",
    "UPSTREAM_BACKOFF": "0.01",
    "CACHE_TTL": "30",
}

ClientFactory = Callable[..., TestClient]


@pytest.fixture
def client_for(api: ModuleType) -> Iterator[ClientFactory]:
    """Builds a started TestClient for an app whose settings come from ``env``."""
    clients: list[TestClient] = []

    def make(upstream_url: str, **env: str) -> TestClient:
        settings = api.load_settings({**FAST_ENV, "UPSTREAM_URL": upstream_url, **env})
        client = TestClient(api.create_app(settings))
        client.__enter__()  # runs the lifespan: the upstream client exists from here on
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(client_for: ClientFactory, upstream: Any) -> TestClient:
    return client_for(upstream.url)


def hits(upstream: Any, account_id: str) -> int:
    return int(upstream.hits[f"/v1/accounts/{account_id}"])


def test_health_answers_ok(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_balance_answers_upstream_data_with_masked_holder_and_reference(
    client: TestClient, upstream: Any, fake_upstream_module: ModuleType, api: ModuleType
) -> None:
    expected = fake_upstream_module.account_answer("123456")
    response = client.get("/accounts/123456/balance")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["account_id"] == "123456"
    assert body["balance"] == expected["balance"]
    assert body["currency"] == "PEN"
    assert body["due_date"] == expected["due_date"]
    assert body["holder"] == api.mask_name(expected["holder"])
    assert body["holder"] != expected["holder"]
    # 12345600 mod 97 = 22, so the MOD 97-10 check digits are 98 - 22 = 76.
    assert body["reference"] == "123456-76"
    assert response.headers["x-cache"] == "miss"


def test_post_lookup_answers_like_the_get_endpoint(client: TestClient) -> None:
    by_get = client.get("/accounts/98765432/balance").json()
    by_post = client.post("/lookup", json={"account_id": "98765432"})
    assert by_post.status_code == 200
    assert by_post.json() == by_get


def test_second_lookup_is_served_from_cache_without_reaching_upstream(
    client: TestClient, upstream: Any
) -> None:
    first = client.get("/accounts/246810/balance")
    second = client.get("/accounts/246810/balance")
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["x-cache"] == "hit"
    assert hits(upstream, "246810") == 1


def test_expired_cache_entry_asks_upstream_again(client_for: ClientFactory, upstream: Any) -> None:
    client = client_for(upstream.url, CACHE_TTL="0.05")
    client.get("/accounts/135791/balance")
    time.sleep(0.1)
    again = client.get("/accounts/135791/balance")
    assert again.headers["x-cache"] == "miss"
    assert hits(upstream, "135791") == 2


@pytest.mark.parametrize(
    "account_id",
    ["12345", "1234567890123", "12345a", "abcdef", "123 456", "-123456", "１２３４５６"],
)
def test_get_rejects_account_numbers_that_are_not_6_to_12_digits(
    client: TestClient, upstream: Any, account_id: str
) -> None:
    response = client.get(f"/accounts/{account_id}/balance")
    assert response.status_code == 422
    assert sum(upstream.hits.values()) == 0


@pytest.mark.parametrize(
    "body",
    [{"account_id": "12345"}, {"account_id": 123456}, {}, {"account": "123456"}, ["123456"]],
)
def test_post_rejects_invalid_bodies(client: TestClient, upstream: Any, body: object) -> None:
    response = client.post("/lookup", json=body)
    assert response.status_code == 422
    assert sum(upstream.hits.values()) == 0


def test_upstream_404_is_answered_as_404(client: TestClient, upstream: Any) -> None:
    response = client.get("/accounts/404404/balance")
    assert response.status_code == 404
    assert "404404" in response.json()["detail"]
    assert hits(upstream, "404404") == 1  # a 404 is an answer, not a failure to retry


@pytest.mark.parametrize("account_id", ["400400", "401401"])
def test_upstream_refusals_other_than_404_are_answered_as_502(
    client: TestClient, upstream: Any, account_id: str
) -> None:
    response = client.get(f"/accounts/{account_id}/balance")
    assert response.status_code == 502
    assert "HTTP 4" in response.json()["detail"]
    assert hits(upstream, account_id) == 1


def test_upstream_rate_limit_is_answered_as_503_with_retry_after(client: TestClient) -> None:
    response = client.get("/accounts/429429/balance")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"


def test_persistent_upstream_5xx_is_retried_then_answered_as_502(
    client: TestClient, upstream: Any
) -> None:
    response = client.get("/accounts/500500/balance")
    assert response.status_code == 502
    assert "HTTP 500" in response.json()["detail"]
    assert hits(upstream, "500500") == 3  # 1 attempt + UPSTREAM_RETRIES=2


def test_transient_upstream_5xx_is_recovered_by_retries(client: TestClient, upstream: Any) -> None:
    response = client.get("/accounts/503503/balance")
    assert response.status_code == 200, response.text
    assert hits(upstream, "503503") == 3  # two 503s, then the answer


def test_retries_are_bounded_by_setting(client_for: ClientFactory, upstream: Any) -> None:
    client = client_for(upstream.url, UPSTREAM_RETRIES="1")
    response = client.get("/accounts/503503/balance")
    assert response.status_code == 502
    assert hits(upstream, "503503") == 2


def test_failures_are_not_cached(client: TestClient, upstream: Any) -> None:
    client.get("/accounts/500500/balance")
    client.get("/accounts/500500/balance")
    assert hits(upstream, "500500") == 6


def test_invalid_json_from_upstream_is_answered_as_502(client: TestClient) -> None:
    response = client.get("/accounts/888888/balance")
    assert response.status_code == 502
    assert "invalid JSON" in response.json()["detail"]


def test_slow_upstream_is_answered_as_504_within_read_timeout(
    client: TestClient, upstream: Any
) -> None:
    started = time.monotonic()
    response = client.get("/accounts/777777/balance")
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert "0.4s" in response.json()["detail"]
    assert elapsed < upstream.slow_seconds  # gave up before the upstream answered
    assert hits(upstream, "777777") == 1  # a read timeout is not retried


def test_refused_connection_is_retried_then_answered_as_502(
    client_for: ClientFactory, free_port: int
) -> None:
    client = client_for(f"http://127.0.0.1:{free_port}")
    response = client.get("/accounts/123456/balance")
    assert response.status_code == 502
    assert "unreachable" in response.json()["detail"]


# --- the upstream client with a fake transport: what a real socket cannot easily produce ---------


def _upstream_with(
    api: ModuleType, handler: Callable[[httpx.Request], httpx.Response], **settings: Any
) -> tuple[Any, list[float]]:
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    config = api.Settings(**{"upstream_retries": 3, "upstream_backoff": 0.1, **settings})
    client = httpx.AsyncClient(
        base_url="http://upstream.test", transport=httpx.MockTransport(handler)
    )
    return api.Upstream(config, client, sleep=sleep), slept


def test_connect_timeout_is_retried_with_doubling_backoff_then_504(api: ModuleType) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        raise httpx.ConnectTimeout("timed out", request=request)

    upstream, slept = _upstream_with(api, handler)
    with pytest.raises(api.UpstreamError) as caught:
        asyncio.run(upstream.account("123456"))
    assert caught.value.status_code == 504
    assert len(calls) == 4
    assert slept == pytest.approx([0.1, 0.2, 0.4])


def test_refused_connection_is_retried_up_to_the_bound_then_502(api: ModuleType) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        raise httpx.ConnectError("connection refused", request=request)

    upstream, slept = _upstream_with(api, handler, upstream_retries=2)
    with pytest.raises(api.UpstreamError) as caught:
        asyncio.run(upstream.account("123456"))
    assert caught.value.status_code == 502
    assert calls == ["/v1/accounts/123456"] * 3
    assert len(slept) == 2


def test_upstream_answer_of_unexpected_shape_is_502(api: ModuleType) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"account_id": "123456", "balance": "lots"})

    upstream, _ = _upstream_with(api, handler)
    with pytest.raises(api.UpstreamError) as caught:
        asyncio.run(upstream.account("123456"))
    assert caught.value.status_code == 502
    assert "unexpected shape" in caught.value.detail


def test_upstream_answer_for_another_account_is_502(api: ModuleType) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"account_id": "999999", "holder": "X", "balance": "1"})

    upstream, _ = _upstream_with(api, handler)
    with pytest.raises(api.UpstreamError) as caught:
        asyncio.run(upstream.account("123456"))
    assert caught.value.status_code == 502


# --- pieces -----------------------------------------------------------------------------------


def test_cache_evicts_least_recently_used_beyond_its_bound(api: ModuleType) -> None:
    cache = api.TTLCache(ttl=10, max_entries=2, clock=lambda: 0.0)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


def test_cache_entries_expire_after_ttl(api: ModuleType) -> None:
    now = [0.0]
    cache = api.TTLCache(ttl=5, max_entries=10, clock=lambda: now[0])
    cache.put("a", 1)
    now[0] = 4.9
    assert cache.get("a") == 1
    now[0] = 5.0
    assert cache.get("a") is None
    assert len(cache) == 0


@pytest.mark.parametrize(
    ("account_id", "expected"),
    [("123456", 76), ("000000", 98), ("999999999999", 98 - (999999999999 * 100) % 97)],
)
def test_check_digits_are_mod_97_10(api: ModuleType, account_id: str, expected: int) -> None:
    assert api.check_digits(account_id) == expected
    # The defining property: the number followed by its check digits is 1 modulo 97.
    assert int(f"{account_id}{expected:02d}") % 97 == 1


@pytest.mark.parametrize("bad", ["12a456", " 123456", "+123456", ""])
def test_check_digits_reject_non_digits(api: ModuleType, bad: str) -> None:
    with pytest.raises(ValueError, match="decimal digits"):
        api.check_digits(bad)


def test_settings_layer_env_over_yaml_over_defaults(api: ModuleType, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("upstream:\n  url: http://127.0.0.1:9100\n  retries: 4\ncache:\n  ttl: 7\n")
    settings = api.load_settings({"CONFIG_FILE": str(config), "UPSTREAM_RETRIES": "1"})
    assert settings.upstream_url == "http://127.0.0.1:9100"
    assert settings.upstream_retries == 1
    assert settings.cache_ttl == 7
    assert settings.upstream_read_timeout == 5.0


def test_shipped_config_yaml_loads_with_the_defaults(api: ModuleType) -> None:
    assert api.load_settings({}) == api.Settings()


@pytest.mark.parametrize(
    ("yaml_text", "env", "message"),
    [
        ("upstream:\n  retries: 9\n", {}, "upstream_retries"),
        ("upstream:\n  colour: blue\n", {}, "upstream_colour"),
        ("upstream: 3\n", {}, "must be a mapping"),
        ("- a\n- b\n", {}, "top level must be a mapping"),
        ("upstream: [unclosed\n", {}, "cannot read config"),
        ("", {"UPSTREAM_READ_TIMEOUT": "soon"}, "upstream_read_timeout"),
        ("", {"UPSTREAM_URL": "127.0.0.1:9000"}, "upstream_url"),
    ],
)
def test_invalid_settings_name_the_problem(
    api: ModuleType, tmp_path: Path, yaml_text: str, env: dict[str, str], message: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml_text)
    with pytest.raises(api.ConfigError, match=message):
        api.load_settings({"CONFIG_FILE": str(config), **env})


def test_missing_explicit_config_file_is_an_error(api: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(api.ConfigError, match="does not exist"):
        api.load_settings({"CONFIG_FILE": str(tmp_path / "nope.yaml")})

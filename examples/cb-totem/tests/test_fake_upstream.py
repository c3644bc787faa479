"""The demo's fake upstream answers deterministically and plays its failure cases."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import httpx
import pytest


def test_normal_answers_are_deterministic(fake_upstream_module: ModuleType) -> None:
    first = fake_upstream_module.account_answer("55555555")
    assert first == fake_upstream_module.account_answer("55555555")
    assert first != fake_upstream_module.account_answer("55555556")
    assert first["account_id"] == "55555555"


@pytest.mark.parametrize(
    ("account_id", "status"),
    [
        ("123456", 200),
        ("404404", 404),
        ("400400", 400),
        ("401401", 401),
        ("429429", 429),
        ("500500", 500),
    ],
)
def test_demo_accounts_answer_their_status(upstream: Any, account_id: str, status: int) -> None:
    response = httpx.get(f"{upstream.url}/v1/accounts/{account_id}", timeout=5)
    assert response.status_code == status


def test_flaky_account_fails_twice_then_answers(upstream: Any) -> None:
    statuses = [
        httpx.get(f"{upstream.url}/v1/accounts/503503", timeout=5).status_code for _ in range(4)
    ]
    assert statuses == [503, 503, 200, 200]


def test_unknown_paths_are_404(upstream: Any) -> None:
    assert httpx.get(f"{upstream.url}/v2/whatever", timeout=5).status_code == 404

"""Fixtures for graphsim's own tests: an HTTP client pointed at the session's graphsim."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from graphsim.server import SimServer

TOKEN = "test-token"


@pytest.fixture
async def client(graphsim: SimServer) -> AsyncIterator[httpx.AsyncClient]:
    """An async client for the Graph routes, sending a bearer token."""
    async with httpx.AsyncClient(
        base_url=graphsim.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5.0
    ) as http:
        yield http


@pytest.fixture
async def control(graphsim: SimServer) -> AsyncIterator[httpx.AsyncClient]:
    """An async client for the ``/_sim`` control API."""
    async with httpx.AsyncClient(base_url=graphsim.root_url, timeout=5.0) as http:
        yield http

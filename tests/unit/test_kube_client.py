"""The Kubernetes client under HTTP faults: a scripted fake API server on loopback (fault injection only;
real semantics are tested against real API servers)."""

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from sharedcore.kube.client import ApiError, KubeClient
from sharedcore.kube.credentials import Credentials
from sharedcore.kube.resources import DEPLOYMENTS, LEASES

Script = list[Callable[[web.Request], web.StreamResponse]]


def status(
    code: int, reason: str, headers: dict[str, str] | None = None
) -> Callable[[web.Request], web.Response]:
    return lambda _: web.json_response(
        {"kind": "Status", "code": code, "reason": reason, "message": reason}, status=code, headers=headers
    )


def ok(body: dict[str, Any]) -> Callable[[web.Request], web.Response]:
    return lambda _: web.json_response(body)


class FakeApiServer:
    def __init__(self) -> None:
        self.script: Script = []
        self.requests: list[tuple[str, str, dict[str, str], str]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs, dict(request.headers), await request.text()))
        if not self.script:
            return web.json_response(
                {"kind": "Status", "code": 500, "message": "script exhausted"}, status=500
            )
        return self.script.pop(0)(request)


async def serve(fake: FakeApiServer) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def with_client(
    fake: FakeApiServer, body: Callable[[KubeClient], Any], seen: list[tuple[str, int]] | None = None
) -> tuple[Any, list[tuple[str, int]]]:
    """Run body against a client of the fake server; `seen` collects (verb, code) as the observer reports."""
    runner, port = await serve(fake)
    seen = [] if seen is None else seen
    client = KubeClient(
        Credentials(server=f"http://127.0.0.1:{port}", token="t0ken"),
        timeout=2,
        observer=lambda verb, code: seen.append((verb, code)),
    )
    try:
        return await body(client), seen
    finally:
        await client.close()
        await runner.cleanup()


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "e-office"},
}


def test_get_missing_object_is_none_and_token_is_sent() -> None:
    fake = FakeApiServer()
    fake.script = [status(404, "NotFound")]
    result, seen = asyncio.run(with_client(fake, lambda c: c.get(DEPLOYMENTS, "web", "e-office")))
    assert result is None and seen == [("get", 404)]
    method, path, headers, _ = fake.requests[0]
    assert (method, path) == ("GET", "/apis/apps/v1/namespaces/e-office/deployments/web")
    assert headers["Authorization"] == "Bearer t0ken"


def test_too_many_requests_is_retried_after_the_servers_delay() -> None:
    fake = FakeApiServer()
    fake.script = [status(429, "TooManyRequests", {"Retry-After": "1"}), ok(DEPLOYMENT)]
    loop_time: list[float] = []

    async def timed(client: KubeClient) -> Any:
        started = asyncio.get_running_loop().time()
        result = await client.apply(DEPLOYMENT)
        loop_time.append(asyncio.get_running_loop().time() - started)
        return result

    result, seen = asyncio.run(with_client(fake, timed))
    assert result == DEPLOYMENT and seen == [("apply", 429), ("apply", 200)]
    assert loop_time[0] >= 1.0, "Retry-After was honoured"
    method, path, headers, body = fake.requests[1]
    assert method == "PATCH" and "fieldManager=sharedcore" in path and "force=true" in path
    assert headers["Content-Type"] == "application/apply-patch+yaml" and '"name": "web"' in body


def test_server_errors_are_retried_for_reads_only() -> None:
    fake = FakeApiServer()
    fake.script = [status(503, "ServiceUnavailable"), ok({"items": [DEPLOYMENT]})]
    result, _ = asyncio.run(with_client(fake, lambda c: c.list(DEPLOYMENTS, "e-office", {"app": "web"})))
    assert result == [DEPLOYMENT] and "labelSelector=app%3Dweb" in fake.requests[0][1]

    fake = FakeApiServer()
    fake.script = [status(503, "ServiceUnavailable"), ok(DEPLOYMENT)]
    with pytest.raises(ApiError) as error:
        asyncio.run(with_client(fake, lambda c: c.apply(DEPLOYMENT)))
    assert error.value.status == 503 and len(fake.requests) == 1, "a write is never repeated blindly"


def test_retries_are_bounded() -> None:
    fake = FakeApiServer()
    fake.script = [status(500, "InternalError")] * 10
    with pytest.raises(ApiError):
        asyncio.run(with_client(fake, lambda c: c.get(DEPLOYMENTS, "web", "e-office")))
    assert len(fake.requests) == 4


def test_dropped_connections_surface_as_errors_with_code_zero() -> None:
    def hang_up(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    fake = FakeApiServer()
    fake.script = [hang_up] * 20  # aiohttp itself may retry a dropped keep-alive connection once
    seen: list[tuple[str, int]] = []
    with pytest.raises(Exception) as error:
        asyncio.run(with_client(fake, lambda c: c.get(DEPLOYMENTS, "web", "e-office"), seen))
    assert not isinstance(error.value, ApiError)
    assert seen == [("get", 0)] * 4, "every attempt is counted, as a failure without an HTTP status"


@pytest.mark.parametrize(
    ("answer", "call"),
    [
        (lambda _: web.Response(text="<html>proxy error</html>"), "get"),
        (lambda _: web.Response(text="<html>bad gateway</html>", status=502), "get"),
        (lambda _: web.json_response(["a", "list"]), "get"),
        (lambda _: web.json_response({"kind": "Status"}), "list"),
        (lambda _: web.json_response({"items": "none"}), "list"),
    ],
)
def test_a_garbage_answer_is_an_api_error_not_a_crash(
    answer: Callable[[web.Request], web.Response], call: str
) -> None:
    """Another site, or whatever stands in its way, may answer anything: callers handle ApiError."""
    fake = FakeApiServer()
    fake.script = [answer]

    async def ask(client: KubeClient) -> Any:
        no_retry = KubeClient(client.credentials, timeout=2, retry_backoff=())
        try:
            if call == "get":
                return await no_retry.get(DEPLOYMENTS, "web", "e-office")
            return await no_retry.list(DEPLOYMENTS, "e-office")
        finally:
            await no_retry.close()

    with pytest.raises(ApiError) as refused:
        asyncio.run(with_client(fake, ask))
    assert refused.value.reason == "InvalidResponse" or refused.value.status == 502


def test_ready_is_the_api_servers_readyz_and_a_refusal_is_no_reason_to_wait() -> None:
    fake = FakeApiServer()
    fake.script = [
        lambda _: web.Response(status=500, text="[-]poststarthook/apiservice-registration-controller failed"),
        lambda _: web.Response(text="ok"),
        status(403, "Forbidden"),
    ]

    async def body(client: KubeClient) -> str:
        with pytest.raises(ApiError) as starting:
            await client.ready()
        await client.ready()
        await client.ready()
        return starting.value.message

    message, seen = asyncio.run(with_client(fake, body))
    assert "apiservice-registration-controller" in message
    assert [path for _, path, _, _ in fake.requests] == ["/readyz"] * 3
    assert seen == [("get", 500), ("get", 200), ("get", 403)]


def test_a_watch_of_one_object_yields_its_events_and_an_error_event_raises() -> None:
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "hb"}}
    lines = [
        {"type": "ADDED", "object": {**lease, "metadata": {"name": "hb", "resourceVersion": "7"}}},
        {"type": "BOOKMARK", "object": {**lease, "metadata": {"resourceVersion": "9"}}},
        {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}},
    ]
    stream = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    fake = FakeApiServer()
    fake.script = [lambda _: web.Response(body=stream, content_type="application/json")]
    events: list[tuple[str, str]] = []

    async def follow(client: KubeClient) -> None:
        async for kind, obj in client.watch(LEASES, "sharedcore-system", "hb", since="5"):
            events.append((kind, obj["metadata"]["resourceVersion"]))

    with pytest.raises(ApiError) as error:
        asyncio.run(with_client(fake, follow))
    assert error.value.status == 410 and events == [("ADDED", "7"), ("BOOKMARK", "9")]
    method, path, _, _ = fake.requests[0]
    assert method == "GET" and path.startswith(
        "/apis/coordination.k8s.io/v1/namespaces/sharedcore-system/leases?"
    )
    assert "fieldSelector=metadata.name%3Dhb" in path and "resourceVersion=5" in path and "watch=1" in path

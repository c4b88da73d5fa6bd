"""An API server that is still starting, in front of a real one: a plain-HTTP proxy on this machine that
forwards every request with the operator's own credentials and, while `starting` is set, answers as a
kube-apiserver does for its first seconds: its discovery (`GET /apis`) lists one API group, and `/readyz`
fails (measured on the testbed's planes: one group for about 3 s, /readyz failing until every group is
listed).

    with StartingApi(credentials.load(kubeconfig)) as api:
        api.kubeconfig(path)         # what the operator is given
        ...; api.started()           # the API server has finished starting
"""

import asyncio
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from sharedcore.kube.credentials import Credentials

FORWARDED_HEADERS = ("Accept", "Content-Type", "User-Agent")


class StartingApi:
    def __init__(self, upstream: Credentials) -> None:
        self.upstream = upstream
        self.starting = threading.Event()
        self.starting.set()
        self.asked_while_starting: dict[str, int] = {"/apis": 0, "/readyz": 0}
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="starting-api", daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def __enter__(self) -> "StartingApi":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def started(self) -> None:
        self.starting.clear()

    def kubeconfig(self, path: Path) -> Path:
        server = f"http://127.0.0.1:{self.port}"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "starting", "cluster": {"server": server}}],
            "users": [{"name": "operator", "user": {}}],
            "contexts": [{"name": "starting", "context": {"cluster": "starting", "user": "operator"}}],
            "current-context": "starting",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    async def _serve(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.upstream.ssl_context()),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),  # watches stream for minutes
        )
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _close(self) -> None:
        if self._runner:
            await self._runner.cleanup()
        if self._session:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.starting.is_set() and request.path in self.asked_while_starting:
            self.asked_while_starting[request.path] += 1
        if self.starting.is_set() and request.path == "/readyz":
            return web.Response(status=500, text="[-]poststarthook/apiservice-registration-controller failed")
        body = await request.read()
        headers = {key: request.headers[key] for key in FORWARDED_HEADERS if key in request.headers}
        if not body:
            headers.pop("Content-Type", None)
        if token := self.upstream.bearer():
            headers["Authorization"] = f"Bearer {token}"
        assert self._session is not None
        async with self._session.request(
            request.method, f"{self.upstream.server}{request.path_qs}", headers=headers, data=body or None
        ) as upstream:
            if self.starting.is_set() and request.path == "/apis" and upstream.status == 200:
                discovery: dict[str, Any] = await upstream.json()
                discovery["groups"] = discovery["groups"][:1]
                return web.json_response(discovery)
            response = web.StreamResponse(status=upstream.status)
            response.content_type = upstream.content_type
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

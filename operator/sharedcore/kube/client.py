"""A small asyncio Kubernetes client: the only place sharedcore's own requests to an API server are made.

Kopf watches; this client reads, applies (server-side apply) and deletes, and watches one object by name.
Every request is reported to an observer (the metrics count them by verb and status code, which is how "zero
writes when idle" is checked).
"""

import asyncio
import json
from collections.abc import AsyncGenerator, Callable, Mapping
from urllib.parse import urlencode

import aiohttp

from sharedcore import Body
from sharedcore.kube.credentials import Credentials
from sharedcore.kube.resources import Resource, for_object

FIELD_MANAGER = "sharedcore"
# 429 means the server did not process the request: safe to repeat for any verb. Reads also survive
# a failing apiserver replica or a dropped connection. Backoff in seconds; a Retry-After header wins.
RETRY_BACKOFF = (0.2, 0.5, 1.0)
RETRYABLE_READ_STATUSES = frozenset({500, 502, 503, 504})
READ_VERBS = frozenset({"get", "list"})
# How long the API server keeps a watch open before it ends it (the client then renews it).
WATCH_SECONDS = 300
RequestObserver = Callable[[str, int], None]  # (verb, HTTP status or 0 for a connection failure)


class ApiError(Exception):
    """The API server refused a request; `status` is the HTTP code, `reason` Kubernetes' reason."""

    def __init__(self, status: int, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message, self.retry_after = status, reason, message, retry_after


def _object(payload: bytes) -> Body | None:
    """The JSON object answered (an empty answer is an empty one), or None for anything else: whatever
    stands between us and another site (a proxy, a captive portal) may answer in HTML."""
    try:
        parsed = json.loads(payload) if payload else {}
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _refusal(status: int, parsed: Body | None, retry_after: str) -> ApiError:
    return ApiError(
        status,
        str((parsed or {}).get("reason", "")),
        str((parsed or {}).get("message", "(not a Kubernetes answer)")),
        float(retry_after) if retry_after.isdigit() else None,
    )


def namespace_terminating(error: ApiError) -> bool:
    """The API server refuses new objects in a namespace being deleted: nothing to do there any more."""
    return error.status == 403 and "being terminated" in error.message


class KubeClient:
    def __init__(
        self,
        credentials: Credentials,
        *,
        timeout: float = 10.0,
        observer: RequestObserver | None = None,
        retry_backoff: tuple[float, ...] = RETRY_BACKOFF,
        user_agent: str = FIELD_MANAGER,
    ) -> None:
        """`retry_backoff=()` fails fast: for another site, whose silence is itself the news."""
        self.credentials = credentials
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._observer = observer
        self._retry_backoff = retry_backoff
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.credentials.ssl_context(), limit=32),
                timeout=self._timeout,
            )
        return self._session

    async def _request(
        self,
        verb: str,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Body | None = None,
        content_type: str = "application/json",
    ) -> Body:
        for delay in (*self._retry_backoff, None):
            try:
                return await self._request_once(
                    verb, method, path, query=query, body=body, content_type=content_type
                )
            except ApiError as error:
                retryable = error.status == 429 or (
                    verb in READ_VERBS and error.status in RETRYABLE_READ_STATUSES
                )
                if delay is None or not retryable:
                    raise
                await asyncio.sleep(error.retry_after or delay)
            except (aiohttp.ClientError, TimeoutError):
                if delay is None or verb not in READ_VERBS:
                    raise
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _request_once(
        self,
        verb: str,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None,
        body: Body | None,
        content_type: str,
    ) -> Body:
        headers = self._headers(content_type if body is not None else None)
        url = self._url(path, query)
        try:
            async with self._open().request(
                method, url, headers=headers, data=json.dumps(body) if body is not None else None
            ) as response:
                payload = await response.read()
                status = response.status
                retry_after = response.headers.get("Retry-After", "")
        except (aiohttp.ClientError, TimeoutError):
            if self._observer:
                self._observer(verb, 0)
            raise
        if self._observer:
            self._observer(verb, status)
        parsed = _object(payload)
        if status >= 400:
            raise _refusal(status, parsed, retry_after)
        if parsed is None:
            raise ApiError(status, "InvalidResponse", f"not a Kubernetes answer to {method} {path}")
        return parsed

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        if token := self.credentials.bearer():
            headers["Authorization"] = f"Bearer {token}"
        if content_type is not None:
            headers["Content-Type"] = content_type
        return headers

    def _url(self, path: str, query: Mapping[str, str] | None) -> str:
        return f"{self.credentials.server}{path}" + (f"?{urlencode(query)}" if query else "")

    async def watch(
        self, resource: Resource, namespace: str, name: str, since: str | None = None
    ) -> AsyncGenerator[tuple[str, Body], None]:
        """The events (type, object) of the object `name`, from resourceVersion `since` (None: from now,
        starting with the object as it is), until the API server ends the watch (after WATCH_SECONDS);
        BOOKMARK events carry only the resourceVersion to go on from. A 410 Gone means `since` is too old."""
        query = {
            "watch": "1",
            "fieldSelector": f"metadata.name={name}",
            "timeoutSeconds": str(WATCH_SECONDS),
            "allowWatchBookmarks": "true",
        } | ({"resourceVersion": since} if since else {})
        # No total timeout: the stream stays open; silence beyond the server's own end means a dead link.
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._timeout.total, sock_read=WATCH_SECONDS + 30
        )
        try:
            async with self._open().get(
                self._url(resource.path(namespace), query), headers=self._headers(None), timeout=timeout
            ) as response:
                if self._observer:
                    self._observer("watch", response.status)
                if response.status >= 400:
                    raise _refusal(response.status, _object(await response.read()), "")
                async for line in response.content:
                    event = _object(line)
                    if event is None or not isinstance(event.get("object"), dict):
                        raise ApiError(
                            response.status, "InvalidResponse", f"not a watch event: {line[:200]!r}"
                        )
                    if event.get("type") == "ERROR":
                        error = event["object"]
                        raise ApiError(int(error.get("code", 500)), str(error.get("reason", "")), str(error))
                    yield str(event.get("type")), event["object"]
        except (aiohttp.ClientError, TimeoutError):
            if self._observer:
                self._observer("watch", 0)
            raise

    async def ready(self) -> None:
        """Return if the API server says it is ready (`GET /readyz`), else raise. A kube-apiserver serves
        requests before then, its discovery listing part of its API groups (one, for its first seconds).
        Not allowed to ask (401, 403): nothing to wait for."""
        try:
            async with self._open().get(self._url("/readyz", None), headers=self._headers(None)) as answer:
                status, text = answer.status, await answer.text()
        except (aiohttp.ClientError, TimeoutError):
            if self._observer:
                self._observer("get", 0)
            raise
        if self._observer:
            self._observer("get", status)
        if status not in (200, 401, 403):
            raise ApiError(status, "NotReady", text.strip()[:200] or "not ready")

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> Body | None:
        try:
            return await self._request("get", "GET", resource.path(namespace, name))
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> list[Body]:
        """`labels` and `fields` (such as metadata.name) select on the server: only those cross the link."""
        query = {
            key: ",".join(f"{k}={v}" for k, v in selector.items())
            for key, selector in (("labelSelector", labels), ("fieldSelector", fields))
            if selector
        }
        path = resource.path(namespace)
        items = (await self._request("list", "GET", path, query=query or None)).get("items")
        if not isinstance(items, list):
            raise ApiError(200, "InvalidResponse", f"not a Kubernetes list from GET {path}")
        return items

    async def apply(self, obj: Body, *, dry_run: bool = False) -> Body:
        """Server-side apply as field manager `sharedcore`, taking over conflicting fields (we own them)."""
        resource = for_object(obj)
        metadata = obj["metadata"]
        query = {"fieldManager": FIELD_MANAGER, "force": "true"} | ({"dryRun": "All"} if dry_run else {})
        return await self._request(
            "apply",
            "PATCH",
            resource.path(metadata.get("namespace"), metadata["name"]),
            query=query,
            body=obj,
            content_type="application/apply-patch+yaml",
        )

    async def create(self, resource: Resource, obj: Body, *, dry_run: bool = False) -> Body:
        query = {"fieldManager": FIELD_MANAGER} | ({"dryRun": "All"} if dry_run else {})
        return await self._request(
            "create", "POST", resource.path(obj["metadata"].get("namespace")), query=query, body=obj
        )

    async def patch(
        self,
        resource: Resource,
        name: str,
        namespace: str | None,
        patch: Body,
        subresource: str | None = None,
    ) -> Body:
        """A JSON merge patch (status updates, labels)."""
        return await self._request(
            "patch",
            "PATCH",
            resource.path(namespace, name, subresource),
            query={"fieldManager": FIELD_MANAGER},
            body=patch,
            content_type="application/merge-patch+json",
        )

    async def delete(self, resource: Resource, name: str, namespace: str | None = None) -> bool:
        """Delete in the background (owned objects go with it); False if it was already gone."""
        try:
            await self._request(
                "delete", "DELETE", resource.path(namespace, name), body={"propagationPolicy": "Background"}
            )
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        return True

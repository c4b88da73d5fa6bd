"""Clients for the other site and the witness, built from the kubeconfig Secrets the Topology names.

Each site keeps, in Secrets of its own, how it reaches the others. A client is rebuilt when its Secret's
bytes change, and those bytes are never logged. A Secret that is gone or holds no usable, self-contained
kubeconfig is refused (`rejected`, with the reason) and the last good client stays in use: a mistake in a
Secret must not cut a working link. Requests to another site fail fast and are not retried: a
site that does not answer is itself the news, and the next heartbeat asks again.
"""

import base64
import hashlib
import logging
import ssl
from collections.abc import Callable

import aiohttp

from sharedcore import Body
from sharedcore.api import KubeconfigSecretRef
from sharedcore.kube import credentials
from sharedcore.kube.client import ApiError, KubeClient, RequestObserver
from sharedcore.kube.resources import SECRETS
from sharedcore.metrics import KUBECONFIG_REJECTED

log = logging.getLogger(__name__)
# How a request to another cluster fails: refused, or not answered at all.
REMOTE_ERRORS = (ApiError, aiohttp.ClientError, TimeoutError, OSError)


def describe(error: BaseException) -> str:
    """An error in words, for a condition message (a timeout has none of its own)."""
    return str(error) or type(error).__name__


def explain(error: BaseException, at: str, site: str, namespace: str) -> str:
    """An error from another cluster in words, with what a person must do where only a person can act."""
    setup = (
        f"give {site} its identity at {at}: sharedcore peer-identity --site {at} --for {site} "
        f"| kubectl --context <{at}> apply --server-side -f -"
    )
    if isinstance(error, ApiError) and error.status == 404:
        return f"{describe(error)}: the namespace {namespace} is missing at {at}; {setup}"
    if isinstance(error, ApiError) and error.status in (401, 403):
        return f"{describe(error)}: {at} does not grant {site} what it needs; {setup}"
    return describe(error)


class Remote:
    """Another cluster: a client for it, or why there is none."""

    def __init__(self, name: str, ref: KubeconfigSecretRef) -> None:
        self.name, self.ref = name, ref
        self.client: KubeClient | None = None
        self.problem: str | None = f"{self.where} not read yet"  # why there is no client
        self.rejected: str | None = None  # why the Secret's current content is not used
        self.digest: str | None = None  # of the kubeconfig last judged

    @property
    def where(self) -> str:
        return f"Secret {self.ref.namespace}/{self.ref.name}"

    def matches(self, body: Body) -> bool:
        meta = body["metadata"]
        return (meta.get("namespace"), meta["name"]) == (self.ref.namespace, self.ref.name)


class Peers:
    def __init__(
        self,
        local: KubeClient,
        *,
        timeout: float,
        observer: Callable[[str], RequestObserver],
        user_agent: str,
    ) -> None:
        self._local = local
        self._timeout = timeout
        self._observer = observer
        self._user_agent = user_agent
        self._remotes: dict[str, Remote] = {}

    async def configure(self, refs: dict[str, KubeconfigSecretRef]) -> None:
        """Follow these Secrets (by remote name), reading those not followed yet."""
        for name, remote in list(self._remotes.items()):
            if refs.get(name) != remote.ref:
                del self._remotes[name]
                if remote.client:
                    await remote.client.close()
        added = [Remote(name, ref) for name, ref in refs.items() if name not in self._remotes]
        self._remotes.update((remote.name, remote) for remote in added)
        for remote in added:
            await self._read(remote)

    async def _read(self, remote: Remote) -> None:
        try:
            secret = await self._local.get(SECRETS, remote.ref.name, remote.ref.namespace)
        except REMOTE_ERRORS as error:  # this site's API server; the Secret's watch events follow anyway
            remote.problem = f"cannot read {remote.where}: {describe(error)}"
            return
        await self._update(remote, secret)

    async def on_secret(self, event_type: str | None, body: Body) -> None:
        for remote in self._remotes.values():
            if remote.matches(body):
                await self._update(remote, None if event_type == "DELETED" else body)

    def client(self, name: str) -> KubeClient | None:
        remote = self._remotes.get(name)
        return remote.client if remote else None

    def problem(self, name: str) -> str | None:
        remote = self._remotes.get(name)
        return remote.problem if remote else f"no kubeconfig Secret configured for {name}"

    def rejected(self, name: str) -> str | None:
        """Why the Secret for `name` is refused (whatever client is still used), if it is."""
        remote = self._remotes.get(name)
        return remote.rejected if remote else None

    async def close(self) -> None:
        for remote in self._remotes.values():
            if remote.client:
                await remote.client.close()

    async def _update(self, remote: Remote, secret: Body | None) -> None:
        encoded = ((secret or {}).get("data") or {}).get(remote.ref.key)
        digest = hashlib.sha256(str(encoded).encode()).hexdigest() if secret else None
        if digest is not None and digest == remote.digest:
            return
        remote.digest = digest
        try:
            creds = self._judge(remote, secret, encoded)
        except ValueError as error:  # CredentialsError: our own words, which never quote the Secret
            self._reject(remote, f"{remote.where}: {error}")
            return
        old, remote.client = (
            remote.client,
            KubeClient(
                creds,
                timeout=self._timeout,
                observer=self._observer(remote.name),
                retry_backoff=(),
                user_agent=self._user_agent,
            ),
        )
        if old:
            await old.close()
        remote.problem = remote.rejected = None
        KUBECONFIG_REJECTED.labels(remote.name).set(0)
        log.info("reaching %s at %s (from %s)", remote.name, creds.server, remote.where)

    @staticmethod
    def _judge(remote: Remote, secret: Body | None, encoded: object) -> credentials.Credentials:
        if secret is None:
            raise credentials.CredentialsError("not found")
        if not isinstance(encoded, str):
            raise credentials.CredentialsError(f"has no key {remote.ref.key}")
        try:
            text = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise credentials.CredentialsError(f"key {remote.ref.key} is not base64") from None
        creds = credentials.from_kubeconfig(text, self_contained=True)
        try:
            creds.ssl_context()
        except (ssl.SSLError, ValueError):
            raise credentials.CredentialsError("its certificates or key cannot be loaded") from None
        return creds

    @staticmethod
    def _reject(remote: Remote, reason: str) -> None:
        kept = "; still using the kubeconfig read before" if remote.client else ""
        remote.rejected = f"{reason}{kept}"
        if remote.client is None:
            remote.problem = reason
        KUBECONFIG_REJECTED.labels(remote.name).set(1)
        log.warning("kubeconfig for %s refused: %s", remote.name, remote.rejected)

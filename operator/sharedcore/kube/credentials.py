"""How to reach one cluster: from a kubeconfig (a file, or a Secret's bytes) or the pod's service account.

One shape serves our own HTTP client, and Kopf's login (so Kopf and the operator use the same identity).
Credentials are never logged: `repr` shows only the server.
"""

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class CredentialsError(ValueError):
    """The kubeconfig cannot be used (missing context, unsupported auth, unreadable file)."""


@dataclass(frozen=True)
class Credentials:
    server: str
    ca_data: bytes | None = field(default=None, repr=False)
    cert_data: bytes | None = field(default=None, repr=False)
    key_data: bytes | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = field(default=None, repr=False)  # re-read on use: projected tokens rotate
    insecure: bool = False
    namespace: str | None = None

    def bearer(self) -> str | None:
        if self.token_file:
            return self.token_file.read_text().strip()
        return self.token

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.ca_data.decode() if self.ca_data else None)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_data and self.key_data:
            # ssl only loads client certificates from files: a private temp dir, removed at once.
            with tempfile.TemporaryDirectory() as tmp:
                cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
                cert.write_bytes(self.cert_data)
                key.write_bytes(self.key_data)
                context.load_cert_chain(cert, key)
        return context


def _data(entry: dict[str, Any], key: str, base: Path | None) -> bytes | None:
    """`<key>-data` (base64) or `<key>` (a path, relative to the kubeconfig's folder)."""
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        path = Path(entry[key])
        return ((base / path) if base and not path.is_absolute() else path).read_bytes()
    return None


def from_kubeconfig(text: str | bytes, base: Path | None = None, context: str | None = None) -> Credentials:
    """Credentials of the current (or named) context: client certificates or a bearer token."""
    try:
        config = yaml.safe_load(text) or {}
        name = context or config.get("current-context")
        ctx = next(c["context"] for c in config.get("contexts", []) if c["name"] == name)
        cluster = next(c["cluster"] for c in config.get("clusters", []) if c["name"] == ctx["cluster"])
        user: dict[str, Any] = next(
            (u["user"] for u in config.get("users", []) if u["name"] == ctx.get("user")), {}
        )
    except (StopIteration, KeyError, TypeError, yaml.YAMLError) as error:
        raise CredentialsError(f"kubeconfig has no usable context {context or ''}: {error!r}") from error
    if user.get("exec") or user.get("auth-provider"):
        raise CredentialsError("kubeconfig uses an exec/auth-provider plugin: give a token or certificates")
    return Credentials(
        server=cluster["server"].rstrip("/"),
        ca_data=_data(cluster, "certificate-authority", base),
        cert_data=_data(user, "client-certificate", base),
        key_data=_data(user, "client-key", base),
        token=user.get("token"),
        token_file=Path(user["tokenFile"]) if user.get("tokenFile") else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        namespace=ctx.get("namespace"),
    )


def in_cluster() -> Credentials:
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
    host = f"[{host}]" if ":" in host else host
    return Credentials(
        server=f"https://{host}:{port}",
        ca_data=(SERVICE_ACCOUNT_DIR / "ca.crt").read_bytes(),
        token_file=SERVICE_ACCOUNT_DIR / "token",
        namespace=(SERVICE_ACCOUNT_DIR / "namespace").read_text().strip(),
    )


def load(kubeconfig: Path | None = None) -> Credentials:
    """--kubeconfig, else $KUBECONFIG, else the pod's service account, else ~/.kube/config."""
    path = kubeconfig or (Path(os.environ["KUBECONFIG"]) if os.environ.get("KUBECONFIG") else None)
    if path is None and "KUBERNETES_SERVICE_HOST" in os.environ:
        return in_cluster()
    path = path or Path.home() / ".kube" / "config"
    try:
        return from_kubeconfig(path.read_text(), base=path.parent)
    except OSError as error:
        raise CredentialsError(f"cannot read kubeconfig {path}: {error.strerror}") from error

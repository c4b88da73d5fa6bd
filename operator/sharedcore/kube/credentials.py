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


# Keys naming files: in a kubeconfig kept in a Secret they would name files of the operator's own pod.
FILE_KEYS = ("certificate-authority", "client-certificate", "client-key", "tokenFile")
STRING_KEYS = ("server", "token", "namespace", *FILE_KEYS, *(f"{key}-data" for key in FILE_KEYS[:3]))


def _data(entry: dict[str, Any], key: str, base: Path | None) -> bytes | None:
    """`<key>-data` (base64) or `<key>` (a path, relative to the kubeconfig's folder)."""
    if entry.get(f"{key}-data"):
        try:
            return base64.b64decode(entry[f"{key}-data"], validate=True)
        except ValueError:
            raise CredentialsError(f"kubeconfig {key}-data is not base64") from None
    if entry.get(key):
        path = Path(entry[key])
        try:
            return ((base / path) if base and not path.is_absolute() else path).read_bytes()
        except OSError as error:
            raise CredentialsError(f"cannot read the kubeconfig's {key} {path}: {error.strerror}") from None
    return None


def _entry(config: dict[str, Any], section: str, name: object) -> dict[str, Any]:
    """The body (`cluster`, `context` or `user`) of the entry `name` of a kubeconfig section, type-checked."""
    key = section.removesuffix("s")
    items = config.get(section)
    if not isinstance(items, list):
        raise CredentialsError(f"kubeconfig has no list `{section}`")
    body = next((i.get(key) for i in items if isinstance(i, dict) and i.get("name") == name), None)
    if not isinstance(body, dict):
        raise CredentialsError(f"kubeconfig has no {key} named {name!r} with a mapping `{key}`")
    for field_name in STRING_KEYS:
        if field_name in body and not isinstance(body[field_name], str):
            raise CredentialsError(f"kubeconfig {key} {name!r}: `{field_name}` is not a string")
    return body


def _refuse_outside_references(cluster: dict[str, Any], user: dict[str, Any]) -> None:
    """A kubeconfig from a Secret must hold everything itself and verify the server."""
    named = [key for key in FILE_KEYS if (cluster | user).get(key)]
    if named:
        raise CredentialsError(
            f"kubeconfig names files ({', '.join(named)}): give the contents instead "
            "(certificate-authority-data, client-certificate-data, client-key-data, token)"
        )
    if cluster.get("insecure-skip-tls-verify"):
        raise CredentialsError(
            "kubeconfig sets insecure-skip-tls-verify: give certificate-authority-data to verify the server"
        )
    if not str(cluster.get("server", "")).startswith("https://"):
        raise CredentialsError("kubeconfig server is not an https:// URL")


def from_kubeconfig(
    text: str | bytes, base: Path | None = None, context: str | None = None, *, self_contained: bool = False
) -> Credentials:
    """Credentials of the current (or named) context: client certificates or a bearer token.
    `self_contained` (a kubeconfig kept in a Secret): no file references, the server's certificate checked.
    """
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError:
        raise CredentialsError("kubeconfig is not YAML") from None  # never the parser's words: they quote
    if not isinstance(config, dict):
        raise CredentialsError("kubeconfig is not a YAML mapping")
    ctx = _entry(config, "contexts", context or config.get("current-context"))
    cluster = _entry(config, "clusters", ctx.get("cluster"))
    user = _entry(config, "users", ctx["user"]) if ctx.get("user") is not None else {}
    if not isinstance(cluster.get("server"), str) or not cluster["server"]:
        raise CredentialsError("kubeconfig cluster has no server")
    if not isinstance(cluster.get("insecure-skip-tls-verify", False), bool):
        raise CredentialsError("kubeconfig insecure-skip-tls-verify is not true or false")
    if user.get("exec") or user.get("auth-provider"):
        raise CredentialsError("kubeconfig uses an exec/auth-provider plugin: give a token or certificates")
    if self_contained:
        _refuse_outside_references(cluster, user)
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

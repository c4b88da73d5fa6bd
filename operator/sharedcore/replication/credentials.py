"""The Secrets a service's database needs at both sites, made once at the active site and carried to the
standby by configuration replication (never through Git):

- `<svc>-db-server-ca` and `<svc>-db-client-ca`: a CA each (`ca.crt`, `ca.key`, ECDSA P-256 as CloudNativePG
  makes its own). Both sites' Clusters issue their server and `streaming_replica` certificates from them, so
  each site trusts the other's across the link (sslmode verify-full).
- `<svc>-db-app`: the application owner's credentials (basic-auth), equal at both sites so that clients keep
  working after a promotion.

They carry the replication label and not the managed-by one: replication copies them like any Secret a person
labels, and the standby's copy follows every later change at the active site. The operator only ever creates
them, when missing at the active site: it never rewrites or deletes them, so a person rotates them there
(README: Rotating a database's credentials) and replication carries the rotation across. Their content is
never logged.
"""

import base64
import datetime
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sharedcore.api import SharedService
from sharedcore.render import names
from sharedcore.render.profile import profile_for
from sharedcore.replication.content import REPLICATE_LABEL

Body = dict[str, object]
SERVICE_LABEL = "sharedcore.danang.gov.vn/service"
CA_VALIDITY = datetime.timedelta(days=3650)  # never renewed by the operator: rotated by people
# What a CA certificate may do: sign certificates and CRLs (and its own signatures); nothing else.
CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


@dataclass(frozen=True)
class Credential:
    name: str
    type: str
    make: Callable[[], dict[str, str]]  # the Secret's stringData, generated afresh on each call


def _ca(common_name: str) -> dict[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(CA_USAGE, critical=True)
        .sign(key, hashes.SHA256())
    )
    # CloudNativePG reads only the traditional "EC PRIVATE KEY" PEM form.
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return {"ca.crt": cert.public_bytes(serialization.Encoding.PEM).decode(), "ca.key": pem_key.decode()}


def _password() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("=")


def needed(service: SharedService) -> list[Credential]:
    """What `service`'s database needs at both sites (nothing without a database)."""
    if not service.spec.database.enabled:
        return []
    name = service.metadata.name
    owner = profile_for(service.spec.platform).database.name
    server_ca, client_ca = names.database_server_ca(name), names.database_client_ca(name)
    return [
        Credential(server_ca, "Opaque", lambda: _ca(server_ca)),
        Credential(client_ca, "Opaque", lambda: _ca(client_ca)),
        Credential(
            names.database_app_secret(name),
            "kubernetes.io/basic-auth",
            lambda: {"username": owner, "password": _password()},
        ),
    ]


def secret(service: SharedService, credential: Credential) -> Body:
    """The Secret to create (with freshly generated content)."""
    labels = {REPLICATE_LABEL: "true", SERVICE_LABEL: service.metadata.name}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": credential.name, "namespace": service.metadata.namespace, "labels": labels},
        "type": credential.type,
        "stringData": credential.make(),
    }

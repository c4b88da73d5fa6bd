"""A private CA per control plane: serving certificate, admin client certificate, service-account keys.

EC P-256 keys: generating them is instant, which matters when a test session starts three planes.
"""

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sharedcore.replication.credentials import CA_USAGE

VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class PlanePki:
    """Paths of one plane's PEM files."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.directory / "apiserver.key"

    def client_cert(self, user: str) -> Path:
        return self.directory / f"{user}.crt"

    def client_key(self, user: str) -> Path:
        return self.directory / f"{user}.key"

    @property
    def sa_public_key(self) -> Path:
        return self.directory / "sa.pub"

    @property
    def sa_private_key(self) -> Path:
        return self.directory / "sa.key"


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    path.chmod(0o600)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def create(directory: Path, plane: str, users: tuple[str, ...], addresses: tuple[str, ...] = ()) -> PlanePki:
    """Write a fresh CA, an apiserver serving cert for localhost/127.0.0.1 (and `addresses`, which also names
    it as the in-cluster `kubernetes` Service), client certs and SA keys.

    Every user is in system:masters; they get their own names so the audit log tells them apart.
    """
    directory.mkdir(parents=True, exist_ok=True)
    pki = PlanePki(directory)

    ca_key = _key()
    ca_name = _name(f"sharedcore-testbed-{plane}-ca")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(CA_USAGE, critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(pki.ca_key, ca_key)
    pki.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        cert_path: Path,
        key_path: Path,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        sans: list[x509.GeneralName] | None = None,
    ) -> None:
        key = _key()
        builder = _builder(subject, ca_name, key.public_key()).add_extension(
            x509.ExtendedKeyUsage([usage]), critical=False
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        _write_key(key_path, key)
        cert_path.write_bytes(builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))

    issue(
        pki.serving_cert,
        pki.serving_key,
        _name("kube-apiserver"),
        ExtendedKeyUsageOID.SERVER_AUTH,
        [
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes"),
            x509.DNSName("kubernetes.default"),
            x509.DNSName("kubernetes.default.svc"),
            x509.DNSName("kubernetes.default.svc.cluster.local"),
            *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", *addresses)),
        ],
    )
    for user in users:
        issue(
            pki.client_cert(user),
            pki.client_key(user),
            _name(user, "system:masters"),
            ExtendedKeyUsageOID.CLIENT_AUTH,
        )

    sa_key = _key()
    _write_key(pki.sa_private_key, sa_key)
    pki.sa_public_key.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


def issue_client(keys: PlanePki, user: str, common_name: str, organization: str | None) -> None:
    """A client certificate from the plane's CA for an identity that is not an admin (a node: system:node:X in
    system:nodes, so the Node authorizer and NodeRestriction apply; kube-proxy: system:kube-proxy)."""
    ca_key = serialization.load_pem_private_key(keys.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    issuer = x509.load_pem_x509_certificate(keys.ca_cert.read_bytes()).subject
    key = _key()
    certificate = (
        _builder(_name(common_name, organization), issuer, key.public_key())
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(keys.client_key(user), key)
    keys.client_cert(user).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))

"""`tensorfusion certs`: a small certificate authority for one pool's control plane (gRPC TLS), made with the
`cryptography` package.

    certs init  --dir DIR                         -> DIR/ca.crt, DIR/ca.key (0600)
    certs issue --dir DIR --name NAME --host H,H  -> DIR/NAME.crt, DIR/NAME.key (0600), signed by DIR/ca.key
    certs issue --dir DIR --name NAME --client    -> a client certificate (mTLS), hosts optional

Keys are ECDSA P-256 (small, fast handshakes, accepted by gRPC/BoringSSL and OpenSSL alike). A server certificate
carries every --host as a subjectAltName (an IP address as an IP entry, anything else as a DNS name) and both
serverAuth and clientAuth usages, so one certificate serves a worker as the admin server and as the client it is to
a scheduler that requires client certificates. A --client certificate is clientAuth only: it cannot be used to
impersonate a server. Nothing is ever overwritten: an existing file is an error naming it.
Called by tfclient.cli (cmd_certs) and the TLS tests.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

CA_DAYS = 3650
LEAF_DAYS = 365


class CertError(ValueError):
    """A certs command that cannot be carried out as asked (one line for the CLI)."""


def _crypto():
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise CertError(f"the cryptography package is missing ({e}): pip install cryptography") from None
    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Creates path with mode from the first byte on; refuses to replace an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise CertError(f"{path} exists already: remove it first (nothing was overwritten)") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _check_new(*paths: Path, other: str = "--name") -> None:
    for p in paths:
        if p.exists():
            raise CertError(f"{p} exists already: remove it first, or pick another {other} (nothing was written)")


def _key_pem(key, serialization) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def init_ca(directory: str | os.PathLike, name: str = "TensorFusion CA", days: int = CA_DAYS) -> tuple[Path, Path]:
    """Creates DIR (0700 if new) with ca.crt (0644) and ca.key (0600). -> (cert path, key path).
    CertError if either file exists or days < 1."""
    x509, hashes, serialization, ec, _, NameOID = _crypto()
    if days < 1:
        raise CertError(f"--days {days}: use a number of days >= 1")
    d = Path(directory)
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise CertError(f"cannot create --dir {d}: {e.strerror or e}") from None
    crt, key_path = d / "ca.crt", d / "ca.key"
    _check_new(crt, key_path, other="--dir")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write_new(key_path, _key_pem(key, serialization), 0o600)
    _write_new(crt, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return crt, key_path


def _san(hosts: list[str]):
    x509 = _crypto()[0]
    names = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h.strip("[]"))))
        except ValueError:
            if not h or any(c.isspace() or c in "/:@" for c in h):
                raise CertError(f"--host {h!r} is neither an IP address nor a DNS name") from None
            names.append(x509.DNSName(h))
    return names


def split_hosts(text: str | None) -> list[str]:
    """"a, 10.0.0.1" -> ["a", "10.0.0.1"] (empty entries dropped)."""
    return [h.strip() for h in (text or "").split(",") if h.strip()]


def issue(directory: str | os.PathLike, name: str, hosts: list[str], client: bool = False,
          days: int = LEAF_DAYS) -> tuple[Path, Path]:
    """Issues DIR/NAME.crt (0644) and DIR/NAME.key (0600) signed by DIR/ca.key. hosts: DNS names and IP addresses
    the server is reached at (required for a server certificate). -> (cert path, key path).
    CertError: no CA in DIR, bad name or host, existing files, days < 1."""
    x509, hashes, serialization, ec, EKU, NameOID = _crypto()
    if not name or name in ("ca",) or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise CertError(f"--name {name!r}: use letters, digits, '-', '_' or '.' (not 'ca'); it names NAME.crt")
    if days < 1:
        raise CertError(f"--days {days}: use a number of days >= 1")
    if not hosts and not client:
        raise CertError("a server certificate needs --host HOST[,HOST...] (the names and addresses clients dial); "
                        "pass --client for a client certificate")
    d = Path(directory)
    ca_crt, ca_key = d / "ca.crt", d / "ca.key"
    if not ca_crt.exists() or not ca_key.exists():
        raise CertError(f"no CA in {d} (ca.crt and ca.key): run `tensorfusion certs init --dir {d}` first")
    try:
        ca_cert = x509.load_pem_x509_certificate(ca_crt.read_bytes())
        signer = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as e:
        raise CertError(f"cannot read the CA in {d}: {e}") from None
    crt, key_path = d / f"{name}.crt", d / f"{name}.key"
    _check_new(crt, key_path)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    usages = [EKU.CLIENT_AUTH] if client else [EKU.SERVER_AUTH, EKU.CLIENT_AUTH]
    b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
         .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                      crl_sign=False, content_commitment=False, data_encipherment=False,
                                      key_agreement=True, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False))
    if hosts:
        b = b.add_extension(x509.SubjectAlternativeName(_san(hosts)), critical=False)
    cert = b.sign(signer, hashes.SHA256())
    _write_new(key_path, _key_pem(key, serialization), 0o600)
    _write_new(crt, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return crt, key_path

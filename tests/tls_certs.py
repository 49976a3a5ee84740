"""Test certificates for TLS tests, made with the openssl CLI (no Python crypto dependency): a CA, and
certificates it signs for a server name / IP. Used by tests/stub (data plane over TLS) and benchmarks."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass
class CertFiles:
    cert: str
    key: str


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(folder: Path, name: str = "ca") -> CertFiles:
    """A self-signed CA (EC P-256, 1 day): folder/name.pem, folder/name.key."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
             "-subj", f"/CN=TensorFusion test {name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=folder)
    return CertFiles(str(folder / f"{name}.pem"), str(folder / f"{name}.key"))


def issue(folder: Path, ca: CertFiles, name: str, sans: str = "DNS:localhost,IP:127.0.0.1",
          client: bool = False) -> CertFiles:
    """A leaf certificate signed by `ca` for the subjectAltNames `sans`: folder/name.pem, folder/name.key."""
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=folder)
    ext = folder / f"{name}.ext"
    usage = "clientAuth" if client else "serverAuth"
    ext.write_text(f"subjectAltName={sans}\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial", "-days", "1",
             "-extfile", str(ext), "-out", f"{name}.pem", cwd=folder)
    return CertFiles(str(folder / f"{name}.pem"), str(folder / f"{name}.key"))

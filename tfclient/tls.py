"""TLS for the control plane's gRPC links (scheduler API, worker admin API): what a server serves, what a client
trusts and presents, when plaintext is allowed, and one-line explanations of handshake failures.

Clients (tfclient.scheduler_client, the CLI, the worker daemon towards the scheduler, the scheduler towards the
workers' admin API) build a ClientTLS from explicit files, else the environment:
    TF_TLS_CA    CA bundle (PEM) that signed the server's certificate; setting it turns TLS on
    TF_TLS_CERT  client certificate (PEM), presented when the server requires one (mTLS)
    TF_TLS_KEY   its private key (PEM)
Servers (`tensorfusion scheduler`, `tensorfusion worker`) take ServerTLS: certificate, key, and optionally a
client CA (with it, every client must present a certificate signed by that CA).

Plaintext is allowed only where nothing crosses a network: a listen address on loopback (127.0.0.0/8, ::1,
localhost) or a Unix socket. check_listen() refuses anything else without TLS unless the operator passed
--insecure, so a misconfigured deployment fails closed with one line saying what to pass.
Identity stays the bearer token (tfscheduler.auth); TLS adds confidentiality and server authentication.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

# grpc is imported where it is used: the CLI builds its parser (add_*_args) without loading it.


class TlsConfigError(ValueError):
    """A TLS file that is missing, unreadable or not PEM of the expected kind (one line for the CLI)."""


def _read(path: str, what: str, kind: str) -> bytes:
    """The PEM file at path; TlsConfigError naming `what` (e.g. "--tls-ca") if unreadable or not `kind` PEM."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise TlsConfigError(f"{what} {path}: cannot read it ({e.strerror or e})") from None
    marker = b"PRIVATE KEY-----" if kind == "key" else b"-----BEGIN CERTIFICATE-----"
    if marker not in data:
        want = "a PEM private key" if kind == "key" else "a PEM certificate"
        raise TlsConfigError(f"{what} {path}: not {want}")
    return data


def check_pair(chain: bytes, key: bytes, cert_path: str, key_path: str) -> None:
    """TlsConfigError (one line) unless key is the private key of the first certificate in chain and that
    certificate is valid now: gRPC itself only says "Failed to bind" for a mismatched pair."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    try:
        cert = x509.load_pem_x509_certificates(chain)[0]
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as e:
        raise TlsConfigError(f"cannot load {cert_path} / {key_path}: {e}") from None
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if cert.public_key().public_bytes(*fmt) != private.public_key().public_bytes(*fmt):
        raise TlsConfigError(f"{key_path} is not the private key of {cert_path}")
    now = datetime.datetime.now(datetime.timezone.utc)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise TlsConfigError(f"{cert_path} is valid from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} to "
                             f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, not now: issue a new one")


@dataclass(frozen=True)
class ClientTLS:
    """What a gRPC client trusts (ca: PEM file) and presents (cert + key: PEM files, for mTLS).
    ca None: the system's root CAs."""
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    @classmethod
    def resolve(cls, ca: str | None = None, cert: str | None = None, key: str | None = None) -> "ClientTLS | None":
        """Explicit files, else TF_TLS_CA / TF_TLS_CERT / TF_TLS_KEY. None (plaintext) when none is set.
        TlsConfigError when only one of cert/key is given."""
        ca = ca or os.environ.get("TF_TLS_CA") or None
        cert = cert or os.environ.get("TF_TLS_CERT") or None
        key = key or os.environ.get("TF_TLS_KEY") or None
        if not (ca or cert or key):
            return None
        if bool(cert) != bool(key):
            raise TlsConfigError("a client certificate needs both TF_TLS_CERT and TF_TLS_KEY (only "
                                 f"{'TF_TLS_CERT' if cert else 'TF_TLS_KEY'} is set)")
        return cls(ca, cert, key)

    def credentials(self):
        """grpc.ChannelCredentials; TlsConfigError if a file is unreadable or not PEM."""
        import grpc
        root = _read(self.ca, "TLS CA (--tls-ca/TF_TLS_CA)", "cert") if self.ca else None
        key = _read(self.key, "TLS client key (TF_TLS_KEY)", "key") if self.key else None
        chain = _read(self.cert, "TLS client certificate (TF_TLS_CERT)", "cert") if self.cert else None
        if chain is not None:
            check_pair(chain, key, self.cert, self.key)
        return grpc.ssl_channel_credentials(root, key, chain)


@dataclass(frozen=True)
class ServerTLS:
    """A server's certificate chain and key (PEM files) and, for mTLS, the CA its clients' certificates must chain
    to (client_ca: PEM file; None = no client certificate asked for)."""
    cert: str
    key: str
    client_ca: str | None = None

    @classmethod
    def resolve(cls, cert: str | None, key: str | None, client_ca: str | None = None) -> "ServerTLS | None":
        """None when neither cert nor key is given (plaintext); TlsConfigError when only one is, or a client CA
        comes without them."""
        if not cert and not key:
            if client_ca:
                raise TlsConfigError("--tls-client-ca needs --tls-cert and --tls-key (client certificates are "
                                     "asked for in the TLS handshake)")
            return None
        if not (cert and key):
            given = "--tls-cert" if cert else "--tls-key"
            raise TlsConfigError(f"TLS needs both --tls-cert and --tls-key (only {given} was given)")
        return cls(cert, key, client_ca)

    def credentials(self):
        """grpc.ServerCredentials (client certificates required iff client_ca); TlsConfigError on a bad file."""
        import grpc
        chain = _read(self.cert, "--tls-cert", "cert")
        key = _read(self.key, "--tls-key", "key")
        check_pair(chain, key, self.cert, self.key)
        ca = _read(self.client_ca, "--tls-client-ca", "cert") if self.client_ca else None
        return grpc.ssl_server_credentials([(key, chain)], root_certificates=ca, require_client_auth=ca is not None)


def is_local(listen: str) -> bool:
    """Does a gRPC listen address stay on this host? Loopback IPs, "localhost" and unix: sockets do; an empty
    host, a wildcard (0.0.0.0, [::]) or any other name or address does not."""
    if listen.startswith(("unix:", "unix-abstract:")):
        return True
    host = listen.rsplit(":", 1)[0].strip("[]") if ":" in listen else listen
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen(listen: str, tls: ServerTLS | None, insecure: bool, what: str = "scheduler",
                 fix: str = "pass --tls-cert FILE --tls-key FILE (see `tensorfusion certs`)") -> None:
    """Refuses (ValueError, one line) an address that is not HOST:PORT, and plaintext gRPC beyond this host unless
    insecure is set explicitly."""
    if not listen.startswith(("unix:", "unix-abstract:")) and not valid_port(listen.rpartition(":")[2]):
        raise ValueError(f"cannot serve the {what} API on {listen!r}: use HOST:PORT (a port from 0 to 65535), "
                         f"e.g. 127.0.0.1:7070")
    if tls is None and not insecure and not is_local(listen):
        raise ValueError(f"refusing to serve the {what} API on {listen} without TLS: {fix}, listen on "
                         f"127.0.0.1, or pass --insecure to send tokens in clear on purpose")


def valid_port(text: str) -> bool:
    """A port as written after HOST: digits, 0 to 65535 (gRPC served 127.0.0.1:99999 on port 34463, 99999 mod
    65536, and a socket bind fails late with OverflowError)."""
    return text.isdigit() and int(text) <= 65535


def bind(server, listen: str, credentials=None, what: str = "scheduler") -> int:
    """Adds listen to a grpc(.aio) server, over TLS with credentials (ServerTLS.credentials()) when given -> the
    bound port. OSError (one line) when gRPC cannot bind it (its own RuntimeError says only "Failed to bind" and
    points at GRPC_VERBOSITY)."""
    try:
        port = server.add_secure_port(listen, credentials) if credentials else server.add_insecure_port(listen)
    except RuntimeError:
        port = 0
    if port == 0:
        raise OSError(f"cannot serve the {what} API on {listen}: the port is in use (another {what}?) or the "
                      f"host is not an address of this machine")
    return port


def add_server_args(p, worker: bool = False) -> None:
    """--tls-cert, --tls-key, --insecure and the CA option(s) of `tensorfusion scheduler` (--tls-client-ca, --tls-ca)
    or `tensorfusion worker` (--tls-ca)."""
    p.add_argument("--tls-cert", metavar="FILE", help="serve gRPC over TLS with this certificate (PEM; see "
                                                      "`tensorfusion certs issue`)" + (
                       "; a worker's TCP data plane (--tcp) then speaks TLS only, with the same certificate"
                       if worker else ""))
    p.add_argument("--tls-key", metavar="FILE", help="private key of --tls-cert (PEM)")
    if worker:
        p.add_argument("--tls-ca", metavar="FILE",
                       help="CA that signed the scheduler's certificate: the worker dials the scheduler over TLS "
                            "(default $TF_TLS_CA; --tls-cert/--tls-key are its client certificate when the "
                            "scheduler requires one)")
    else:
        p.add_argument("--tls-client-ca", metavar="FILE",
                       help="require client certificates signed by this CA (mTLS) on top of bearer tokens")
        p.add_argument("--tls-ca", metavar="FILE",
                       help="CA that signed the workers' certificates: their admin API is dialed over TLS "
                            "(default $TF_TLS_CA)")
    p.add_argument("--insecure", action="store_true",
                   help="allow plaintext gRPC on a non-loopback address (tokens and orders cross the network in clear)"
                        + ("; also a plaintext TCP data plane (--tcp) there without --tls-cert" if worker else ""))


def channel(target: str, tls: ClientTLS | None, options=(), aio: bool = False):
    """A grpc (or grpc.aio) channel to target: TLS with tls's credentials, plaintext when tls is None."""
    import grpc
    import grpc.aio
    mod = grpc.aio if aio else grpc
    if tls is None:
        return mod.insecure_channel(target, options=list(options))
    return mod.secure_channel(target, tls.credentials(), options=list(options))


# Substrings of gRPC's connection errors (BoringSSL reasons, grpc's own checks) -> what the user should do.
# The first match wins. Worded for the client side; {target} is the address dialed.
_HINTS = (
    ("WRONG_VERSION_NUMBER", "{target} does not speak TLS (a plaintext server): unset TF_TLS_CA/--tls-ca, or start "
                             "that server with --tls-cert and --tls-key"),
    ("Hostname Verification", "the certificate of {target} does not name the host dialed: issue it with "
                              "`tensorfusion certs issue --host` listing that name or address"),
    ("Peer name", "the certificate of {target} does not name the host dialed: issue it with "
                  "`tensorfusion certs issue --host` listing that name or address"),
    ("certificate has expired", "the certificate of {target} has expired: issue a new one"),
    ("CERTIFICATE_VERIFY_FAILED", "cannot verify the certificate of {target} with the CA in {ca}: the server's "
                                  "certificate was signed by another CA (unknown CA)"),
    ("CERTIFICATE_REQUIRED", "{target} requires a client certificate: set TF_TLS_CERT and TF_TLS_KEY"),
    ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "{target} requires a client certificate: set TF_TLS_CERT and TF_TLS_KEY"),
    ("TLSV1_ALERT_UNKNOWN_CA", "{target} does not accept our client certificate (signed by a CA it does not trust)"),
    ("BAD_CERTIFICATE", "{target} refused our client certificate"),
)


def explain(details: str, target: str, tls: ClientTLS | None) -> str | None:
    """One line saying why a connection failed when TLS is the likely cause, else None. details: the RpcError's."""
    d = details or ""
    if tls is not None:
        for needle, hint in _HINTS:
            if needle in d:
                return "TLS: " + hint.format(target=target, ca=tls.ca or "the system's trust store")
        if "Socket closed" in d or "Connection reset" in d:
            extra = (f": it may not accept our client certificate ({tls.cert}: signed by a CA it does not trust, "
                     f"or expired)" if tls.cert else
                     ": it may require a client certificate (set TF_TLS_CERT and TF_TLS_KEY)")
            return f"TLS: {target} closed the connection during the TLS handshake{extra}"
    elif "Socket closed" in d or "Connection reset" in d:
        return (f"{target} closed the connection: it may serve TLS only (set TF_TLS_CA or pass --tls-ca with the CA "
                f"that signed its certificate)")
    return None


def is_verification_failure(details: str) -> bool:
    """A handshake that failed on certificates or protocol (a setting to fix), not a server that is down."""
    return any(n in (details or "") for n, _ in _HINTS)

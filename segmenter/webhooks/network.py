"""The network side of webhooks: which destinations may be reached, and one POST under a wall-clock deadline.

A webhook URL is chosen by a site owner, so it must not reach the instance's own network (loopback,
private, link-local such as 169.254.169.254, multicast, reserved...). The address is vetted after DNS
resolution and the connection goes to that vetted address (a second lookup cannot swap it); the Host
header and TLS (SNI and certificate check) still use the URL's name. Redirects are not followed. The
result is a short error class, never an exception's text (that would make the log a port scanner).
"""

import http.client
import io
import ipaddress
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

NAT64 = ipaddress.ip_network("64:ff9b::/96")
REFUSED = "refused_destination"


class RefusedDestination(Exception):
    """The URL's host is, or resolves to, an address webhooks may not reach."""


class DeliveryError(Exception):
    """A delivery failed; `args[0]` is its short error class."""


def allowed_networks(value):
    """The networks of the WEBHOOK_ALLOW_NETWORKS setting: a comma-separated string (or a list) of CIDRs.

    >>> allowed_networks("127.0.0.0/8, ::1")
    (IPv4Network('127.0.0.0/8'), IPv6Network('::1/128'))
    """
    if not value:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    try:
        return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if str(item).strip())
    except ValueError as err:
        raise ValueError(f"WEBHOOK_ALLOW_NETWORKS: {err}") from None


def _embedded(ip):
    """The addresses `ip` stands for: itself and the IPv4 addresses it carries (IPv4-mapped, NAT64,
    6to4, Teredo)."""
    if ip.version == 4:
        return [ip]
    if ip.ipv4_mapped:
        return [ip.ipv4_mapped]  # judged as the IPv4 address it is
    if ip in NAT64:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]  # DNS64: judged as the IPv4 it translates to
    return [address for address in (ip, ip.sixtofour, *(ip.teredo or ())) if address is not None]


def is_refused(ip, allowed=()):
    """True when webhooks may not reach `ip`: not a public unicast address, unless in `allowed`."""
    ip = ipaddress.ip_address(ip)
    addresses = _embedded(ip)
    if any(address in network for address in addresses for network in allowed if address.version == network.version):
        return False
    return any(
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        for address in addresses
    )


def resolve(host, port, timeout):
    """The (family, sockaddr) pairs of `host`, looked up within `timeout` seconds (getaddrinfo has none)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, (str(ip), port))]
    answer = {}
    done = threading.Event()

    def lookup():
        try:
            answer["found"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as err:
            answer["error"] = err
        finally:
            done.set()

    # A daemon thread: a resolver that hangs is abandoned, not waited for.
    threading.Thread(target=lookup, daemon=True, name="webhook-dns").start()
    if not done.wait(max(timeout, 0)):
        raise DeliveryError("dns_timeout")
    if "error" in answer:
        raise DeliveryError("dns_error")
    return [(family, sockaddr[:2]) for family, _type, _proto, _name, sockaddr in answer["found"]]


def vet(host, port, allowed, timeout):
    """The vetted addresses of `host`; RefusedDestination when any of them may not be reached."""
    if not host:
        raise DeliveryError("bad_url")
    addresses = resolve(host, port, timeout)
    if not addresses or any(is_refused(sockaddr[0].split("%", 1)[0], allowed) for _family, sockaddr in addresses):
        raise RefusedDestination(host)
    return addresses


def check_url(url, allowed, timeout=2.0):
    """For registration: raise RefusedDestination when `url` names or resolves to a refused address.

    A name that does not resolve now is accepted: every delivery checks again after its own lookup.
    """
    parts = urlsplit(url)
    try:
        vet(parts.hostname or "", parts.port or 443, allowed, timeout)
    except DeliveryError:
        return


def post(url, body, headers, timeout, allowed=()):
    """POST `body` to `url`, all of it (lookup, connect, TLS, send, status line and headers) within
    `timeout` seconds. Returns (HTTP status or None, error class or None). Never raises, never redirects."""
    deadline = time.monotonic() + timeout
    sock = None
    try:
        parts = urlsplit(url)
        https = parts.scheme == "https"
        host, port = parts.hostname, parts.port or (443 if https else 80)
        addresses = vet(host, port, allowed, deadline - time.monotonic())
        sock = _connect(addresses, deadline)
        if https:
            sock.settimeout(_left(deadline))  # the handshake's total time (CPython)
            context = ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=host)
            conn = http.client.HTTPSConnection(host, port, context=context)
        else:
            conn = http.client.HTTPConnection(host, port)
        conn.sock = _DeadlineSocket(sock, deadline)  # connected to the vetted address
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", path, body=body, headers=headers)
        status = conn.getresponse().status  # the body is never read
        return status, None if 200 <= status < 300 else f"http_{status}"
    except RefusedDestination:
        return None, REFUSED
    except Exception as err:  # noqa: BLE001 - a receiver's failure is recorded as a class, never raised
        return None, error_class(err)
    finally:
        if sock is not None:
            sock.close()


def error_class(err):
    """A short, fixed name for a delivery failure."""
    if isinstance(err, DeliveryError):
        return err.args[0]
    for kind, name in (
        (TimeoutError, "timeout"),
        (ConnectionRefusedError, "connection_refused"),
        (ssl.SSLCertVerificationError, "tls_certificate"),
        (ssl.SSLError, "tls_error"),
        (ssl.CertificateError, "tls_certificate"),
        (http.client.RemoteDisconnected, "connection_closed"),
        (ConnectionResetError, "connection_reset"),
        (BrokenPipeError, "connection_reset"),
        (http.client.HTTPException, "protocol_error"),
        (OSError, "network_error"),
    ):
        if isinstance(err, kind):
            return name
    return "delivery_error"


def _left(deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _connect(addresses, deadline):
    """A socket connected to the first vetted address that answers before the deadline."""
    failure = None
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(_left(deadline))
            sock.connect(sockaddr)
            return sock
        except OSError as err:
            sock.close()
            failure = err
            if isinstance(err, TimeoutError):
                break
    raise failure


class _DeadlineSocket:
    """What http.client needs of a socket, each operation bounded by what is left of one deadline."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline

    def sendall(self, data):
        self.sock.settimeout(_left(self.deadline))  # sendall's timeout is its total time
        self.sock.sendall(data)

    def makefile(self, mode="rb", *_args, **_kwargs):
        return io.BufferedReader(_DeadlineReader(self))

    def close(self):
        self.sock.close()


class _DeadlineReader(io.RawIOBase):
    """Reads whose timeout is recomputed from the deadline before each one: a receiver trickling
    one byte a second cannot stretch the exchange (a per-read timeout alone would let it)."""

    def __init__(self, owner):
        super().__init__()
        self.owner = owner

    def readable(self):
        return True

    def readinto(self, buffer):
        self.owner.sock.settimeout(_left(self.owner.deadline))
        return self.owner.sock.recv_into(buffer)

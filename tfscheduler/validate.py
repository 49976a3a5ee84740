"""Bounds on every text field the scheduler stores or prints: names are short identifiers, free text is
printable and bounded. A field out of bounds is InvalidRequest (INVALID_ARGUMENT) saying which field, how
long it was and what is allowed — never echoing a huge or control-laden value back.

Called by tfscheduler.state (allocate, register_worker), tfscheduler.server (ListPool, tokens).
"""
from __future__ import annotations

import re

from tfclient.errors import InvalidRequest

NAME_MAX = 63            # pool, namespace (a Kubernetes DNS label is 63)
NODE_MAX = 253           # node names are host names
TEXT_MAX = 256           # workload, GPU model, vendor, descriptions
ID_MAX = 128             # GPU uuids, allocation ids
PATH_MAX = 107           # sun_path of a Unix socket, less the terminating NUL
ADDRESS_MAX = 261        # host (253) ":" port
LABELS_MAX = 64
GPUS_MAX = 256
IDS_MAX = 100_000

_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_ADDRESS = re.compile(r"(unix:)?[^\s/]*:\d{1,5}|unix:/[^\s]*")


def _shown(value: str) -> str:
    return repr(value[:40] + ("..." if len(value) > 40 else ""))


def name(field: str, value: str, max_len: int = NAME_MAX, empty_ok: bool = True) -> str:
    """An identifier: letters, digits, '.', '_', '-', starting and ending with a letter or digit."""
    if not value:
        if empty_ok:
            return value
        raise InvalidRequest(f"{field} is empty")
    if len(value) > max_len:
        raise InvalidRequest(f"{field} is {len(value)} characters long; at most {max_len} are allowed")
    if not _NAME.fullmatch(value):
        raise InvalidRequest(f"{field} {_shown(value)} has characters other than letters, digits, '.', '_', '-' "
                             f"(or does not start and end with a letter or digit)")
    return value


def text(field: str, value: str, max_len: int = TEXT_MAX) -> str:
    """Free text: printable characters only (no newlines, escapes or other control characters)."""
    if len(value) > max_len:
        raise InvalidRequest(f"{field} is {len(value)} characters long; at most {max_len} are allowed")
    if not value.isprintable():
        raise InvalidRequest(f"{field} {_shown(value)} contains control characters (newline, escape, ...): "
                             f"use printable text")
    return value


def token_like(field: str, value: str, max_len: int = ID_MAX) -> str:
    """An id: printable, no spaces."""
    text(field, value, max_len)
    if any(c.isspace() for c in value):
        raise InvalidRequest(f"{field} {_shown(value)} contains spaces")
    return value


def unix_path(value: str) -> str:
    if not value:
        return value
    text("endpoints.unix_path", value, PATH_MAX)
    if not value.startswith("/"):
        raise InvalidRequest(f"endpoints.unix_path {_shown(value)} must be an absolute path")
    return value


def address(field: str, value: str) -> str:
    """"host:port" (or "unix:/path" for the admin endpoint)."""
    if not value:
        return value
    text(field, value, ADDRESS_MAX)
    if not _ADDRESS.fullmatch(value):
        raise InvalidRequest(f"{field} {_shown(value)} is not host:port")
    return value


def count(field: str, n: int, max_n: int) -> None:
    if n > max_n:
        raise InvalidRequest(f"{field} lists {n} entries; at most {max_n} are allowed")


def labels(values: dict) -> dict:
    count("labels", len(values), LABELS_MAX)
    for k, v in values.items():
        name("label key", k, NAME_MAX, empty_ok=False)
        text(f"label {k}", v, NODE_MAX)
    return values


def printable(value) -> str:
    """value for a terminal: control characters shown as escapes (for text stored before validation)."""
    s = str(value)
    return s if s.isprintable() else s.encode("unicode_escape").decode("ascii")

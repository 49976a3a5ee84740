"""Bad input on the data plane: malformed hellos, garbage and truncated frames, unknown call ids and
oversized lengths sent by a raw socket client to a real data-plane server and tf-executor. A bad
session must end alone (its GPU worker process exits), the server and other sessions go on.
"""
from __future__ import annotations

import fcntl
import os
import random
import re
import socket
import struct
from pathlib import Path

from dp_helpers import run_via_stub, wait_until
from tfclient import native

HELLO = struct.Struct("<4sIII")
REPLY = struct.Struct("<4siII")
REQ = struct.Struct("<IHH")
REP = struct.Struct("<IiiI")
CORPUS = Path(__file__).resolve().parent.parent / "fuzz"


def _call_ids() -> dict[str, int]:
    text = (native.build_dir() / "executor" / "gen" / "tf_calls.h").read_text()
    ids = {m.group(1): int(m.group(2)) for m in re.finditer(r"TF_CALL_(\w+) = (\d+),", text)}
    ids["__hash__"] = int(re.search(r"TF_TABLE_HASH 0x([0-9a-f]+)u", text).group(1), 16)
    ids["__count__"] = int(re.search(r"TF_N_CALLS = (\d+)", text).group(1))
    return ids


def _connect(dp, token: bytes = b"") -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(dp.unix_path)
    s.sendall(HELLO.pack(b"TFH1", 1, len(token), 0) + token)
    magic, status, msg_len, _ = REPLY.unpack(_recv(s, REPLY.size))
    assert magic == b"TFR1" and status == 0
    _recv(s, msg_len)
    return s


def _recv(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def _reply(s: socket.socket) -> tuple[int, int, bytes, str]:
    """One whole reply: (result, nlatched, outputs + latched entries, the console's stderr text)."""
    length, result, nlatched, nconsole = REP.unpack(_recv(s, REP.size))
    payload = _recv(s, length)
    body, con, err = payload[:length - nconsole], payload[length - nconsole:], ""
    while con:
        fd, n = struct.unpack("<II", con[:8])
        if fd == 2:
            err += con[8:8 + n].decode()
        con = con[8 + (n + 7) // 8 * 8:]
    return result, nlatched, body, err


def _closed(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except ConnectionError:
        return True


def test_unknown_call_id_gets_an_error_reply_and_the_session_goes_on(dataplane):
    ids = _call_ids()
    s = _connect(dataplane)
    s.sendall(REQ.pack(8, 0xFFFF, 0) + b"\0" * 8)
    result, nlatched, body, err = _reply(s)
    assert (result, nlatched, body) == (801, 0, b"")            # CUDA_ERROR_NOT_SUPPORTED
    assert "unknown call id 65535" in err                       # the worker's diagnostic reaches the client
    # a truncated body for a real call: INVALID_VALUE, still served
    s.sendall(REQ.pack(0, ids["cuMemAlloc_v2"], 0))
    assert _reply(s)[0] == 1
    # the wrong table hash is refused by the hello
    body = struct.pack("<I", ids["__hash__"] ^ 1) + b"\1\1\1" + b"\0"
    s.sendall(REQ.pack(len(body), ids["tfHello"], 0) + body)
    result, _, _, err = _reply(s)
    assert result == 801 and "rebuild the stub and the executor together" in err
    # a failing no-reply call is latched (with its stream, 0 here) into the next reply
    s.sendall(REQ.pack(8, 0xFFFE, 1) + b"\0" * 8)
    s.sendall(REQ.pack(8, 0xFFFF, 0) + b"\0" * 8)
    result, nlatched, body, _ = _reply(s)
    assert (result, nlatched, len(body)) == (801, 1, 16)
    assert struct.unpack("<QiI", body)[:2] == (0, 801)
    s.close()
    assert wait_until(lambda: dataplane.sessions() == {} and len(dataplane.ends) == 1)
    assert dataplane.ends[-1].returncode == 0


def test_malformed_frames_end_only_their_session(dataplane, cuda_program):
    bad = [
        REQ.pack(13, 1, 0) + b"x" * 13,                  # length not a multiple of 8
        REQ.pack(0xFFFFFFF8, 1, 0),                       # longer than any frame may be
        REQ.pack(64, 1, 0) + b"y" * 10,                   # truncated, then the client goes away
        b"\x07\x00",                                      # half a header
    ]
    for frame in bad:
        s = _connect(dataplane)
        s.sendall(frame)
        if len(frame) < REQ.size or frame.startswith(REQ.pack(64, 1, 0)):
            s.shutdown(socket.SHUT_WR)
        assert _closed(s)
        s.close()
    assert wait_until(lambda: dataplane.sessions() == {} and len(dataplane.ends) == len(bad))
    assert all(e.returncode == 1 for e in dataplane.ends), dataplane.ends
    good = run_via_stub(cuda_program("dp_runtime", cudart="static"), dataplane.unix, 1000, "kernel")
    assert good.returncode == 0, good.stdout + good.stderr


def test_bad_hellos_are_refused_and_the_server_keeps_serving(dataplane, cuda_program):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(dataplane.unix_path)
    s.sendall(HELLO.pack(b"GET ", 1, 0, 0))
    magic, status, msg_len, _ = REPLY.unpack(_recv(s, REPLY.size))
    assert magic == b"TFR1" and status == 1 and b"bad hello" in _recv(s, msg_len)
    s.close()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(dataplane.unix_path)
    s.sendall(HELLO.pack(b"TFH1", 1, 1 << 20, 0))      # token longer than allowed
    assert REPLY.unpack(_recv(s, REPLY.size))[1] == 1
    s.close()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(dataplane.unix_path)
    s.sendall(b"TFH")                                   # half a hello, then gone
    s.close()
    good = run_via_stub(cuda_program("dp_runtime", cudart="static"), dataplane.unix, 1000)
    assert good.returncode == 0, good.stdout + good.stderr
    assert wait_until(lambda: dataplane.ends and dataplane.ends[-1].reason == "client disconnected")


def test_mutated_recorded_sessions_never_take_the_worker_down(dataplane, cuda_program):
    """Replays the fuzz corpus with random damage against the emulator-backed executor."""
    rng = random.Random(1234)
    corpus = [p.read_bytes() for p in sorted(CORPUS.glob("*.bin"))]
    assert corpus and all(corpus), "an empty recording in tests/fuzz: re-run scripts/record_fuzz_corpus.py"
    for i in range(24):
        data = bytearray(rng.choice(corpus))
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(data))
            data[at] = rng.randrange(256)
        s = _connect(dataplane)
        try:
            s.sendall(bytes(data))
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        except (ConnectionError, socket.timeout):
            pass
        s.close()
    assert wait_until(lambda: dataplane.sessions() == {} and len(dataplane.ends) == 24)
    assert all(e.returncode in (0, 1) for e in dataplane.ends), [e for e in dataplane.ends if e.returncode not in (0, 1)]
    good = run_via_stub(cuda_program("dp_runtime", cudart="shared"), dataplane.unix, 1000, "kernel")
    assert good.returncode == 0, good.stdout + good.stderr


def test_shared_memory_window_must_be_sealed(dataplane):
    """tfShmAttach maps a client memfd: one the client could still shrink (and so fault the executor)
    is refused; a sealed one is accepted; a frame without a descriptor is refused."""
    ids = _call_ids()
    size = 1 << 20
    s = _connect(dataplane)
    frame = REQ.pack(8, ids["tfShmAttach"], 0) + struct.pack("<Q", size)

    s.sendall(frame)                                                   # no descriptor at all
    assert REP.unpack(_recv(s, REP.size))[1] == 1
    loose = os.memfd_create("tf-test-loose")
    os.ftruncate(loose, size)
    socket.send_fds(s, [frame], [loose])
    assert REP.unpack(_recv(s, REP.size))[1] == 1                      # not sealed: refused
    sealed = os.memfd_create("tf-test-sealed", os.MFD_ALLOW_SEALING)
    os.ftruncate(sealed, size)
    fcntl.fcntl(sealed, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
    socket.send_fds(s, [REQ.pack(8, ids["tfShmAttach"], 0) + struct.pack("<Q", size * 2)], [sealed])
    assert REP.unpack(_recv(s, REP.size))[1] == 1                      # bigger than the file
    socket.send_fds(s, [frame], [sealed])
    assert REP.unpack(_recv(s, REP.size))[1] == 0
    os.close(loose)
    os.close(sealed)
    s.close()
    assert wait_until(lambda: dataplane.sessions() == {} and dataplane.ends and dataplane.ends[-1].returncode == 0)

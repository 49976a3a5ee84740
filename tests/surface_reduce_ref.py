"""Reference for tests/cuda/surface_reduce.cu (PTX `sured` and texel offsets of `tex`/`tld4`) in numpy, shared by
tests/emu/test_emu_textures.py (the emulated device directly) and tests/stub/test_textures.py (through the stub).

sured (PTX ISA, "sured"): an atomic reduction of the source into the surface element; .b takes x in bytes and the
instruction's type, .p takes x in texels and reads .b32/.b64 as signed when the surface format is SINT; .zero drops
an out-of-range access, .clamp moves it to the nearest in-range element, .trap fails the launch. Texel offsets
(operand e of tex/tld4) are added, in texels, to the coordinates before addressing and filtering.
"""
import numpy as np

import texture_ref

K, NT = 16, 256
M32, M64 = (1 << 32) - 1, (1 << 64) - 1

OPS32 = ["add_u32", "add_s32", "min_u32", "max_u32", "min_s32", "max_s32", "and_b32", "or_b32"]
OPS64 = ["add_u64", "min_u64", "max_u64", "min_s64", "max_s64"]
P32 = ["p_add_b32_uint", "p_min_b32_sint", "p_max_b32_uint"]
P64 = ["p_min_b64_sint", "p_max_b64_uint"]
OTHER32 = ["add_u32_1d", "add_u32_3d", "bounds_zero", "bounds_clamp"]


def a32(t: int) -> int:
    return (t * 2654435761) & M32


def a64(t: int) -> int:
    return (t * 0x9E3779B97F4A7C15) & M64


def i32(k: int) -> int:
    return (k * 0x9E3779B9) & M32


def i64(k: int) -> int:
    return (k * 0xD1B54A32D192ED03) & M64


def signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


def reduce(op: str, bits: int, sign: bool) -> np.ndarray:
    """K texels starting at i(k), after every thread t reduced a(t) into texel t % K with op."""
    init, val, mask = (i32, a32, M32) if bits == 32 else (i64, a64, M64)
    out = []
    for k in range(K):
        acc = init(k)
        for t in range(k, NT, K):
            v = val(t)
            if op == "add":
                acc = (acc + v) & mask
            elif op == "and":
                acc &= v
            elif op == "or":
                acc |= v
            else:
                key = (lambda x: signed(x, bits)) if sign else (lambda x: x)
                acc = (min if op == "min" else max)(acc, v, key=key)
        out.append(acc)
    return np.array(out, dtype=np.uint32 if bits == 32 else np.uint64)


def bounds(clamp: bool) -> np.ndarray:
    """4x4 surface from i32(k); each thread adds 1 at x = t%8 - 2, y = t/8 % 4."""
    s = np.array([i32(k) for k in range(K)], dtype=np.uint64).reshape(4, 4)
    for t in range(NT):
        x, y = t % 8 - 2, t // 8 % 4
        if not 0 <= x < 4:
            if not clamp:
                continue
            x = min(max(x, 0), 3)
        s[y, x] += 1
    return (s.reshape(-1) & M32).astype(np.uint32)


def expected(img: np.ndarray) -> dict:
    """surface_reduce.cu's out.bin, section by section (name -> array)."""
    e = {}
    for name in OPS32:
        op, ty = name.split("_")
        e[name] = reduce(op, 32, ty == "s32")
    for name in OPS64:
        op, ty = name.split("_")
        e[name] = reduce(op, 64, ty == "s64")
    for name in P32 + P64:
        _, op, ty, fmt = name.split("_")
        e[name] = reduce(op, 32 if ty == "b32" else 64, fmt == "sint")
    e["add_u32_1d"] = reduce("add", 32, False)
    e["add_u32_3d"] = reduce("add", 32, False)
    e["bounds_zero"] = bounds(False)
    e["bounds_clamp"] = bounds(True)
    h, w = img.shape
    u, v = texture_ref.points(w, h)
    xi, yi = np.arange(w * h) % w, np.arange(w * h) // w
    e["off_point"] = texture_ref.sample2d(img, u + 1, v - 2, "point")
    e["off_linear"] = texture_ref.sample2d(img, u - 1, v + 1, "linear")
    e["off_int"] = img[np.clip(yi - 1, 0, h - 1), np.clip(xi + 3, 0, w - 1)]
    e["off_gather"] = texture_ref.gather(img, u + 2, v)
    return e


def check(out_path, img: np.ndarray, kv: dict) -> None:
    """Asserts every section of out.bin against expected() and that the .trap launch failed."""
    raw = open(out_path, "rb").read()
    at = 0
    for name, want in expected(img).items():
        n = want.nbytes
        got = np.frombuffer(raw[at:at + n], dtype=want.dtype if want.dtype != np.float64 else np.float32)
        at += n
        if want.dtype.kind == "f":
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(got, want, err_msg=name)
    assert at == len(raw), f"out.bin holds {len(raw)} bytes, expected {at}"
    assert kv.get("trap") == "cudaErrorLaunchFailure", kv

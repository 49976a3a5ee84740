"""Reference texture sampling in numpy (the CUDA programming guide's "Texture Fetching" appendix) and the
expected output of tests/cuda/textures.cu, shared by tests/emu/test_emu_textures.py (the emulated device
directly) and tests/stub/test_textures.py (through the stub).

Formulas: nearest point T[floor(x)]; linear (1-a)T[i] + aT[i+1] with xB = x - 0.5, i = floor(xB), a = frac(xB)
in 9-bit fixed point (a multiple of 1/256); normalized coordinates are scaled by the size; wrap and mirror
apply to normalized coordinates; border reads the border colour.
"""
import numpy as np

W, H = 32, 16


def points(w: int = W, h: int = H):
    """The sample points of textures.cu: u = (i % W) * 25/64 - 1.3125, v = (i // W) * 29/64 - 0.6875 (float32)."""
    i = np.arange(w * h)
    u = (i % w).astype(np.float32) * np.float32(0.390625) - np.float32(1.3125)
    v = (i // w).astype(np.float32) * np.float32(0.453125) - np.float32(0.6875)
    return u, v


def address(i, n: int, mode: str, normalized: bool):
    """Integer texel indices under an address mode; -1 marks the border."""
    i = np.asarray(i, dtype=np.int64)
    if not normalized and mode in ("wrap", "mirror"):
        mode = "clamp"
    if mode == "wrap":
        return np.mod(i, n)
    if mode == "mirror":
        m = np.mod(i, 2 * n)
        return np.where(m >= n, 2 * n - 1 - m, m)
    if mode == "border":
        return np.where((i < 0) | (i >= n), -1, i)
    return np.clip(i, 0, n - 1)


def fetch(img, x, y, border: float):
    ok = (x >= 0) & (y >= 0)
    return np.where(ok, img[np.clip(y, 0, None), np.clip(x, 0, None)], np.float32(border))


def sample2d(img, u, v, filt: str, mode: str = "clamp", normalized: bool = False, border: float = 0.0):
    """tex2D<float> of a float32 image at (u, v); u, v normalized when `normalized`."""
    h, w = img.shape
    if normalized:
        u, v = u * np.float32(w), v * np.float32(h)
    if filt == "point":
        x = address(np.floor(u), w, mode, normalized)
        y = address(np.floor(v), h, mode, normalized)
        return fetch(img, x, y, border)
    ub, vb = u - np.float32(0.5), v - np.float32(0.5)
    fx, fy = np.floor(ub), np.floor(vb)
    a = np.rint((ub - fx) * 256) / 256  # 9-bit fixed point
    b = np.rint((vb - fy) * 256) / 256
    x0, x1 = address(fx, w, mode, normalized), address(fx + 1, w, mode, normalized)
    y0, y1 = address(fy, h, mode, normalized), address(fy + 1, h, mode, normalized)
    t00, t10 = fetch(img, x0, y0, border), fetch(img, x1, y0, border)
    t01, t11 = fetch(img, x0, y1, border), fetch(img, x1, y1, border)
    return ((1 - a) * (1 - b) * t00 + a * (1 - b) * t10 + (1 - a) * b * t01 + a * b * t11).astype(np.float32)


def gather(img, u, v):
    """tex2Dgather comp 0 (tld4.r), clamp: (x0,y1), (x1,y1), (x1,y0), (x0,y0) per point."""
    h, w = img.shape
    fx, fy = np.floor(u - np.float32(0.5)), np.floor(v - np.float32(0.5))
    x0, x1 = address(fx, w, "clamp", False), address(fx + 1, w, "clamp", False)
    y0, y1 = address(fy, h, "clamp", False), address(fy + 1, h, "clamp", False)
    return np.stack([img[y1, x0], img[y1, x1], img[y0, x1], img[y0, x0]], axis=1).reshape(-1)


def expected(img):
    """textures.cu's out.bin, section by section (name -> array)."""
    h, w = img.shape
    n = w * h
    u, v = points(w, h)
    un, vn = u / np.float32(w), v / np.float32(h)
    flat = img.reshape(-1)
    idx = np.arange(n) - 5
    fetched = np.where((idx >= 0) & (idx < n), flat[np.clip(idx, 0, n - 1)], 0)
    xs, ys = np.arange(n) % w, np.arange(n) // w
    rgba = np.stack([xs, ys, (xs + ys) & 255, np.full(n, 255)], axis=1).astype(np.float32) / 255
    left = np.where(xs >= 1, flat[np.clip(np.arange(n) - 1, 0, None)], 0)
    left_clamped = flat[ys * w + np.clip(xs - 1, 0, None)]
    surf = flat * 3 + 1
    return {
        "point_clamp": sample2d(img, u, v, "point"),
        "linear_clamp": sample2d(img, u, v, "linear"),
        "point_border": sample2d(img, u, v, "point", "border", border=7.0),
        "linear_wrap": sample2d(img, un, vn, "linear", "wrap", normalized=True),
        "linear_mirror": sample2d(img, un, vn, "linear", "mirror", normalized=True),
        "layered": sample2d(img * 2, u, v, "point"),
        "gather": gather(img, u, v),
        "fetch1d": fetched,
        "rgba_normalized": rgba.reshape(-1),
        "surface_write": surf,
        "surface_zero": np.where(xs >= 1, left * 3 + 1, 0),
        "surface_clamp": left_clamped * 3 + 1,
        "tex3d_slice1": flat + 100,
        "array_to_array": flat,
    }


def split(out, img):
    """Cuts textures.cu's out.bin into the sections of expected()."""
    exp = expected(img)
    got, at = {}, 0
    for k, e in exp.items():
        got[k] = out[at:at + e.size]
        at += e.size
    assert at == out.size, f"out.bin holds {out.size} floats, expected {at}"
    return got, exp


# What textures.cu prints (the same directly and through the stub): CU_RESOURCE_TYPE_ARRAY (0) and
# CU_TR_FILTER_MODE_POINT (0) read back; a view-less object has no view (CUDA_ERROR_INVALID_VALUE); three
# channels is no array format; a 1D texture over linear memory holds up to 2^28 elements; bogus handles are CUDA_ERROR_INVALID_HANDLE; a surface needs an array made with
# cudaArraySurfaceLoadStore; a fetch through a destroyed object fails the launch.
KEYS = {
    "desc": "32x16x2:32:1:0", "three_channels": "CUDA_ERROR_INVALID_VALUE",
    "bad_array_destroy": "CUDA_ERROR_INVALID_HANDLE", "bad_tex_destroy": "CUDA_ERROR_INVALID_HANDLE",
    "view_without_view": "CUDA_ERROR_INVALID_VALUE", "res_type": "0", "tex_filter": "0",
    "surf_on_plain_array": "cudaErrorInvalidValue", "bad_handle_launch": "cudaErrorIllegalAddress",
    # a plain array has no deferred-mapping requirements, sparse properties or planes
    "mem_requirements": "CUDA_ERROR_INVALID_VALUE", "sparse_properties": "CUDA_ERROR_INVALID_VALUE",
    "plane": "CUDA_ERROR_INVALID_VALUE", "linear_max": "CUDA_SUCCESS:268435456",
}


def check(out_path, img, kv: dict) -> None:
    """Asserts textures.cu's outputs: every section against the reference, every key against KEYS."""
    got, exp = split(np.fromfile(out_path, np.float32), img)
    for name, e in exp.items():
        np.testing.assert_allclose(got[name], e, rtol=1e-6, atol=1e-6, err_msg=name)
    assert {k: kv.get(k) for k in KEYS} == KEYS


def views_expected() -> dict:
    """What tests/cuda/texture_views.cu prints, from its data formulas and CUDA's resource-view rules."""
    fmt = lambda xs: ",".join(f"{x:g}" for x in xs)  # noqa: E731 (matches printf %g)
    packed = 0x40302010 + 1
    return {
        "reinterpret": fmt([i * 1.5 - 2 for i in range(8)]),
        "bytes": ",".join(str((packed >> (8 * c)) & 0xFF) for c in range(4)),
        # view layer 0 = layer 1 (10), 1 = layer 2 (20), 2 clamps to the view's last (20), -1 to its first (10)
        "layers": fmt([10, 20, 20, 10]),
        # view level 0 = level 1 (200), 1 = level 2 (300), lod 3 clamps to the view's last level (300)
        "levels": fmt([200, 300, 300]),
        "max_clamp": "200", "min_clamp": "300",
        "view_get": "22:1:2",  # cudaResViewFormatFloat1 = 0x16
        "linear_view": "cudaErrorInvalidValue", "layer_on_2d": "cudaErrorInvalidValue",
        "size_mismatch": "cudaErrorInvalidValue", "level_past_end": "cudaErrorInvalidValue",
        "block_compressed": "cudaErrorNotSupported",
        # legacy texture references link and answer NOT_SUPPORTED (not emulated; cudart 13 never calls them)
        "texref": "CUDA_ERROR_NOT_SUPPORTED",
    }


def check_graph_copies(out_path, img, kv: dict) -> None:
    """tests/cuda/graph_array_copies.cu: the explicit graph copies img, then 2*img after the host input changed; the
    captured graph gives img + 1; 5 explicit nodes, 3 captured (two copies and the kernel)."""
    got = np.fromfile(out_path, np.float32)
    want = np.concatenate([img.reshape(-1), 2 * img.reshape(-1), img.reshape(-1) + np.float32(1)])
    np.testing.assert_array_equal(got, want)
    assert (kv.get("nodes"), kv.get("captured_nodes")) == ("5", "3")

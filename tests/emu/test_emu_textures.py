"""CUDA arrays, texture objects and surface objects on the emulated device directly (tests/cuda/textures.cu
against the numpy reference of tests/texture_ref.py): point and linear sampling (9-bit fractions) with clamp,
border, wrap and mirror addressing, layered and 3D arrays, gather, tex1Dfetch on linear memory, normalized
reads of 8-bit formats, surface writes/reads with zero and clamp boundaries, 2D/3D copies to, from and between
arrays, descriptor queries and the error codes of bad input. The same program runs through the stub in
tests/stub/test_textures.py."""
from __future__ import annotations

import numpy as np
import pytest

import texture_ref
from emu_run import run_kv
from tfclient import native

LCUDA = (f"-L{native.emu_lib_dir()}", "-lcuda")


@pytest.mark.parametrize("cudart", ["static", "shared"])
def test_textures_and_surfaces_match_the_reference(tmp_path, cudart):
    img = np.random.default_rng(11).standard_normal((texture_ref.H, texture_ref.W)).astype(np.float32)
    img.tofile(tmp_path / "in.bin")
    kv = run_kv("textures", texture_ref.W, texture_ref.H, tmp_path / "in.bin", tmp_path / "out.bin",
                cudart=cudart, flags=LCUDA)
    texture_ref.check(tmp_path / "out.bin", img, kv)


@pytest.mark.parametrize("cudart", ["static"])
def test_surface_reductions_and_texel_offsets_match_the_reference(tmp_path, cudart):
    """PTX sured (every op/type pair of the ISA, .b and .p, 1d/2d/3d, .zero/.clamp/.trap) and tex/tld4 with texel
    offsets (tests/cuda/surface_reduce.cu) against tests/surface_reduce_ref.py."""
    import surface_reduce_ref
    img = np.random.default_rng(5).standard_normal((texture_ref.H, texture_ref.W)).astype(np.float32)
    img.tofile(tmp_path / "in.bin")
    kv = run_kv("surface_reduce", texture_ref.W, texture_ref.H, tmp_path / "in.bin", tmp_path / "out.bin",
                cudart=cudart, flags=LCUDA)
    surface_reduce_ref.check(tmp_path / "out.bin", img, kv)


def test_resource_views_reinterpret_formats_and_narrow_levels_and_layers():
    """cudaCreateTextureObject with a resource view (tests/cuda/texture_views.cu): a float view of UINT32 bits, a
    byte view of 32-bit texels, layer and mipmap-level ranges (level clamps relative to the first level), the view
    read back, and INVALID_VALUE for the views CUDA refuses (NOT_SUPPORTED for block-compressed ones)."""
    kv = run_kv("texture_views", flags=LCUDA)
    assert {k: kv.get(k) for k in texture_ref.views_expected()} == texture_ref.views_expected()


def test_graph_memcpy_nodes_with_arrays(tmp_path):
    """Graph memcpy nodes with an array side (tests/cuda/graph_array_copies.cu): explicit host -> array -> array ->
    device -> array -> host nodes, relaunched with new host data, and captured device <-> array copies."""
    img = np.random.default_rng(3).standard_normal((texture_ref.H, texture_ref.W)).astype(np.float32)
    img.tofile(tmp_path / "in.bin")
    kv = run_kv("graph_array_copies", texture_ref.W, texture_ref.H, tmp_path / "in.bin", tmp_path / "out.bin",
                flags=LCUDA)
    texture_ref.check_graph_copies(tmp_path / "out.bin", img, kv)

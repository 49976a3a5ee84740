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

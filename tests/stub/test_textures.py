"""CUDA arrays, texture objects and surface objects through the client stub -> data plane -> tf-executor ->
emulated device: tests/cuda/textures.cu gives what it gives on the device directly (tests/emu/test_emu_textures.py),
checked against the numpy reference of tests/texture_ref.py. Arrays and objects are the worker's handles; a
texture object travels to kernels inside their parameters; 2D/3D copies with a client host side go packed."""
from __future__ import annotations

import numpy as np

import texture_ref
from cudabuild import parse_kv
from dp_helpers import run_via_stub, stub_dir


def test_textures_and_surfaces_through_the_stub(dataplane, cuda_program, tmp_path):
    img = np.random.default_rng(11).standard_normal((texture_ref.H, texture_ref.W)).astype(np.float32)
    img.tofile(tmp_path / "in.bin")
    prog = cuda_program("textures", flags=("-L", str(stub_dir()), "-lcuda"))
    r = run_via_stub(prog, dataplane.unix, texture_ref.W, texture_ref.H, tmp_path / "in.bin", tmp_path / "out.bin")
    assert r.returncode == 0, r.stdout + r.stderr
    texture_ref.check(tmp_path / "out.bin", img, parse_kv(r.stdout))


def test_surface_reductions_and_texel_offsets_through_the_stub(dataplane, cuda_program, tmp_path):
    """tests/cuda/surface_reduce.cu (PTX sured, tex/tld4 texel offsets) through the stub: the same values as on the
    device directly, and the .trap launch fails with cudaErrorLaunchFailure."""
    import surface_reduce_ref
    img = np.random.default_rng(5).standard_normal((texture_ref.H, texture_ref.W)).astype(np.float32)
    img.tofile(tmp_path / "in.bin")
    prog = cuda_program("surface_reduce", flags=("-L", str(stub_dir()), "-lcuda"))
    r = run_via_stub(prog, dataplane.unix, texture_ref.W, texture_ref.H, tmp_path / "in.bin", tmp_path / "out.bin")
    assert r.returncode == 0, r.stdout + r.stderr
    surface_reduce_ref.check(tmp_path / "out.bin", img, parse_kv(r.stdout))


def test_resource_views_through_the_stub(dataplane, cuda_program):
    """tests/cuda/texture_views.cu through the stub: the view travels with cuTexObjectCreate and comes back from
    cuTexObjectGetResourceViewDesc; the same values and error codes as on the device directly."""
    prog = cuda_program("texture_views", flags=("-L", str(stub_dir()), "-lcuda"))
    r = run_via_stub(prog, dataplane.unix)
    assert r.returncode == 0, r.stdout + r.stderr
    kv = parse_kv(r.stdout)
    assert {k: kv.get(k) for k in texture_ref.views_expected()} == texture_ref.views_expected()


def test_graph_memcpy_nodes_with_arrays_through_the_stub(dataplane, cuda_program, tmp_path):
    """tests/cuda/graph_array_copies.cu through the stub: array handles travel inside memcpy-node parameters (the
    worker checks them), host sides through the stub's staging; the same output as on the device directly."""
    img = np.random.default_rng(3).standard_normal((texture_ref.H, texture_ref.W)).astype(np.float32)
    img.tofile(tmp_path / "in.bin")
    prog = cuda_program("graph_array_copies", flags=("-L", str(stub_dir()), "-lcuda"))
    r = run_via_stub(prog, dataplane.unix, texture_ref.W, texture_ref.H, tmp_path / "in.bin", tmp_path / "out.bin")
    assert r.returncode == 0, r.stdout + r.stderr
    texture_ref.check_graph_copies(tmp_path / "out.bin", img, parse_kv(r.stdout))

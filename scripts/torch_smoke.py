#!/usr/bin/env python3
"""PyTorch starts through the stub: `python scripts/torch_smoke.py [--vram 2Gi] [--no-attach]`.

PyTorch's kernels are SASS-only (no PTX in its wheels), so it cannot compute on the emulated device; what
must work is everything up to the first kernel: CUDA initialisation, device properties, the caching
allocator, and copies host <-> device. Each step prints `step=ok detail` or `step=FAILED error`; the first
failure ends the run with exit code 1 (later steps depend on it). Exit 0: every step passed.

It calls tfclient.attach() before importing torch (or, with --no-attach, expects to run under
`tensorfusion run`, which points the process at the stub already). Used by tests/test_pylibs_torch.py,
which runs it when torch is importable; torch is not a project dependency (a CUDA wheel set is ~3.5 GB).
"""
import argparse
import os
import sys


def steps(torch):
    """(name, fn) in order; fn returns a short detail string or raises."""
    state = {}

    def available():
        if not torch.cuda.is_available():
            raise RuntimeError("torch.cuda.is_available() is False")
        return f"device_count={torch.cuda.device_count()}"

    def properties():
        p = torch.cuda.get_device_properties(0)
        if p.total_memory <= 0:
            raise RuntimeError(f"total_memory {p.total_memory}")
        return f"name={p.name!r} cc={p.major}.{p.minor} total_memory_mib={p.total_memory >> 20}"

    def empty():
        x = torch.empty((1024, 1024), device="cuda")
        state["empty"] = x
        if not x.is_cuda or tuple(x.shape) != (1024, 1024):
            raise RuntimeError(f"got {x.device} {tuple(x.shape)}")
        return f"device={x.device} bytes={x.numel() * x.element_size()}"

    def round_trip():
        host = torch.arange(100_000, dtype=torch.float32)
        dev = host.to("cuda")
        back = dev.cpu()
        state["dev"] = dev
        if not torch.equal(back, host):
            raise RuntimeError("the copy back differs from what was sent")
        return f"elements={host.numel()} contiguous={dev.is_contiguous()}"

    def allocated():
        n = torch.cuda.memory_allocated()
        want = 1024 * 1024 * 4 + 100_000 * 4
        if n < want:
            raise RuntimeError(f"memory_allocated()={n} < {want} held by the two tensors")
        return f"bytes={n}"

    def release():
        state.clear()
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        return f"after_free={torch.cuda.memory_allocated()}"

    return [("cuda_available", available), ("device_properties", properties), ("empty_on_device", empty),
            ("copy_round_trip", round_trip), ("memory_allocated", allocated), ("free_and_sync", release)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vram", default="2Gi", help="VRAM to ask for (default 2Gi)")
    ap.add_argument("--no-attach", action="store_true", help="the process already runs under `tensorfusion run`")
    args = ap.parse_args(argv)
    if not args.no_attach:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        import tfclient
        tfclient.attach(vram=args.vram)
    import torch
    print(f"torch={torch.__version__} cuda={torch.version.cuda}", flush=True)
    for name, fn in steps(torch):
        try:
            detail = fn()
        except Exception as e:   # noqa: BLE001 - the point is to report which step fails and how
            print(f"{name}=FAILED {type(e).__name__}: {' '.join(str(e).split())}", flush=True)
            return 1
        print(f"{name}=ok {detail}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

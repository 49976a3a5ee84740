"""Helpers shared by the scheduler tests (imported by name: tests/ has no packages)."""
SECRET = b"test-secret"


def gpus(node, n=1, tflops=100.0, vram=10240, model="NVIDIA A100-SXM4-80GB"):
    return [dict(index=i, uuid=f"GPU-{node}-{i}", model=model, vendor="nvidia", vram_mib=vram, tflops=tflops)
            for i in range(n)]

"""TensorFusion client: allocate a vGPU from the scheduler and load the libcuda stub (attach()).

    import tfclient
    with tfclient.attach(tflops=10, vram="2Gi"):
        import cupy   # runs on the vGPU
"""
from tfclient.attach import Lease, allocate, attach, release

__all__ = ["Lease", "allocate", "attach", "release"]

"""TensorFusion client: allocate a vGPU from the scheduler and load the libcuda stub (attach()).

    import tfclient
    with tfclient.attach(tflops=10, vram="2Gi"):
        import cupy   # runs on the vGPU

The names below load tfclient.attach (and grpc) on first use, so `tensorfusion` (tfclient.cli) can set gRPC's
environment (GRPC_VERBOSITY) before grpc is imported.
"""
import sys
import types

__all__ = ["Lease", "allocate", "attach", "release"]


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        # importing the submodule tfclient.attach binds it here: bind its function instead, as the eager
        # `from tfclient.attach import attach` did, so tfclient.attach(...) is always the function
        if name == "attach" and isinstance(value, types.ModuleType):
            value = value.attach
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name):
    if name in __all__:
        import importlib
        return getattr(importlib.import_module("tfclient.attach"), name)
    raise AttributeError(f"module 'tfclient' has no attribute {name!r}")

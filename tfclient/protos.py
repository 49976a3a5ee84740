"""Access to the generated control-plane code (built by `make proto` into tfclient/_gen).

protoc emits absolute imports (`from tensorfusion.v1 import common_pb2`), so the _gen folder
is put on sys.path once here; everyone imports generated modules through this file.
"""
import importlib
import os
import sys

GEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_gen")
if GEN_DIR not in sys.path:
    sys.path.insert(0, GEN_DIR)


def load(name: str):
    """Returns tensorfusion.v1.<name> (e.g. load("scheduler_pb2")); clear error if not generated."""
    try:
        return importlib.import_module(f"tensorfusion.v1.{name}")
    except ImportError as e:
        raise ImportError(f"generated module tensorfusion.v1.{name} missing: run `make proto` ({e})") from e

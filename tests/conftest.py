"""Shared pytest fixtures. The helpers themselves live in tests/cudabuild.py (a plain module, since
several conftest.py files exist and `from conftest import` would be ambiguous); re-exported here."""
import pytest

from cudabuild import (CUDA_SRC, PTX_ARCH, REPO, build_cuda, build_example, env_with_lib_dir,  # noqa: F401
                       find_nvcc)


@pytest.fixture(scope="session")
def cuda_program():
    """Fixture form of build_cuda: cuda_program("vector_add", cudart="shared")."""
    return build_cuda


import os
import tempfile
from collections.abc import Iterator

import pytest

# One BLAS/OpenMP thread per test process: the tests' networks are tiny, and on a shared 2-core
# machine two spinning OpenMP threads per process make small convolutions many times slower.
# Set before torch is imported, so subprocesses started by tests inherit it too.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# The channels-last layout check (nasbench_pc.supernet._layout_check) runs once per test session, kept apart from the
# user's cache.
os.environ.setdefault("NASBENCH_PC_CACHE", tempfile.mkdtemp(prefix="nasbench-pc-test-cache-"))


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread for a module's tests (tiny networks run fastest so, also when OMP_NUM_THREADS is set
    higher for the run), then the number of threads as it was."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
# cuBLAS needs this set before CUDA starts to run deterministically (tests/test_device_paths.py asks for that on a GPU).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import os

# One BLAS/OpenMP thread per test process: the tests' networks are tiny, and on a shared 2-core
# machine two spinning OpenMP threads per process make small convolutions many times slower.
# Set before torch is imported, so subprocesses started by tests inherit it too.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

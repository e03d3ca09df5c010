"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020), numerically equal to the benchmark's own code.

One cell type with 4 nodes, 6 edges and 5 ops, repeated in a three-stage skeleton: the search
supernet (:class:`Nb201Supernet`, xautodl's TinyNetworkDarts), the genotype and its benchmark string
(:class:`Nb201Genotype`), and the derived network (:class:`Nb201Network`, xautodl's TinyNetwork).
"""

from nasbench_pc.plugins.nas_bench_201._skeleton import Nb201Config
from nasbench_pc.plugins.nas_bench_201.genotype import SPACE, Nb201Genotype
from nasbench_pc.plugins.nas_bench_201.network import Nb201Network
from nasbench_pc.plugins.nas_bench_201.ops import PRIMITIVES
from nasbench_pc.plugins.nas_bench_201.supernet import Nb201Supernet

__all__ = ["PRIMITIVES", "SPACE", "Nb201Config", "Nb201Genotype", "Nb201Network", "Nb201Supernet"]

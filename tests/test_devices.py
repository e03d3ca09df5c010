import pytest
import torch

from nasbench_pc.errors import ConfigError
from nasbench_pc.runtime.devices import check_device, default_device


def test_cpu_and_unknown_devices():
    assert check_device("cpu") == "cpu"
    assert check_device(torch.device("cpu")) == "cpu"
    with pytest.raises(ConfigError, match="Unknown device 'tpu'; use cpu, cuda or cuda:N"):
        check_device("tpu")
    with pytest.raises(ConfigError, match="Unknown device 'mps'"):
        check_device("mps")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without CUDA")
def test_cuda_without_a_gpu_names_the_fix():
    assert default_device() == "cpu"
    with pytest.raises(ConfigError, match="--device cuda:1 asks for a CUDA GPU, but this PyTorch sees none. Use "
                                          "--device cpu"):
        check_device("cuda:1")

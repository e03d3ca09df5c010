"""timm's forward_intermediates tests, parametrized with nasbench_pc's models.

timm collects these tests only for the model files it lists in ``FEAT_INTER_FILTERS``; ``run.py``
copies this file next to timm's ``test_models.py`` (as ``test_nasbench_pc_intermediates.py``) so that
the very same test functions run on our models.
"""

import pytest
from conftest import our_models

from tests import test_models


@pytest.mark.features
@pytest.mark.parametrize("model_name", our_models())
@pytest.mark.parametrize("batch_size", [1])
def test_model_forward_intermediates(model_name: str, batch_size: int) -> None:
    test_models.test_model_forward_intermediates(model_name, batch_size)


@pytest.mark.features
@pytest.mark.parametrize("model_name", our_models())
@pytest.mark.parametrize("batch_size", [1])
def test_model_forward_intermediates_features(model_name: str, batch_size: int) -> None:
    test_models.test_model_forward_intermediates_features(model_name, batch_size)


@pytest.mark.parametrize("model_name", our_models())
def test_prune_intermediate_layers_contract(model_name: str) -> None:
    test_models.test_prune_intermediate_layers_contract(model_name)

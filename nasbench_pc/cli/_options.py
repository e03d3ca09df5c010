"""Option types shared by ``show``, ``train`` and ``export`` (internal: defined once, imported by each)."""

from __future__ import annotations

import click

from nasbench_pc.train import NETWORKS

NETWORK = click.Choice(NETWORKS)
"""``--network``: which derived network, the CIFAR or the ImageNet stem."""

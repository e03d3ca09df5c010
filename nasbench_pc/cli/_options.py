"""Option types shared by ``train`` and ``export`` (internal: defined once, imported by each)."""

from __future__ import annotations

import click

from nasbench_pc import registry


class _NetworkName(click.ParamType):
    """A derived network of some installed search space. The genotype's own space decides whether it has one by
    that name (DARTS: cifar, imagenet; NAS-Bench-201: cifar); here a name no space knows is refused early."""

    name = "network"

    def convert(self, value: str, param: click.Parameter | None, ctx: click.Context | None) -> str:
        spaces = registry.available("search_space").values()
        names = sorted({name for space in spaces for name in space.networks})
        if value not in names:
            self.fail(f"{value!r} is no network of an installed search space (they have {', '.join(names)}).",
                      param, ctx)
        return value


NETWORK = _NetworkName()
"""``--network``: which of the genotype's search space's derived networks (DARTS: the CIFAR or the ImageNet stem)."""

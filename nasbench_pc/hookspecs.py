"""Hook specifications: everything a plugin can contribute to nasbench-pc.

A plugin is a module (or object) with functions named like the specs below, decorated
with :data:`hookimpl`, and exposed through the ``nasbench_pc`` entry-point group::

    # pyproject.toml of your package
    [project.entry-points.nasbench_pc]
    my_sampler = "my_package.my_sampler"

    # my_package/my_sampler.py
    from nasbench_pc import hookimpl

    @hookimpl
    def register_samplers():
        return {"random-partial": RandomPartialSampler}

The built-in plugins in ``nasbench_pc/plugins`` are registered the same way. Every hook
returns a ``{name: thing}`` dict; the registry merges them and refuses duplicate names.
Each hook is called once, when its registry is first needed.

A plugin that raises on import or implements a hook not named here is skipped, and so is the
contribution of a hook that raises or returns something other than such a dict; the other plugins
still load, every command warns in one line and ``nasbench-pc plugins`` shows the error. To try a
module without packaging it, ``nasbench-pc --plugin my_package.my_sampler ...`` (or the
``NASBENCH_PC_PLUGINS`` environment variable, comma-separated modules) loads it like an entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT = "nasbench_pc"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_search_spaces() -> dict[str, Any]:
    """Search spaces by name (``--space NAME``).

    Each value is a :class:`nasbench_pc.interfaces.SearchSpace` that owns everything about its cells:
    its shape ``options`` and per-preset ``presets``, ``build(sampler, normalizer, *, num_classes,
    in_channels, method, **options)`` returning the supernet (a :class:`nasbench_pc.interfaces.Supernet`
    whose ``genotype()`` is its derive rule), its genotype type (``genotype_type``, ``parse``/``claims``
    for its text format, ``from_dict``/``to_dict`` for JSON, ``to_text``), its derived ``networks``
    (timm models), how a genotype is summarised (``cell_lines``, ``draw``, ``stats``, ``edges``) and its
    per-epoch ``arch_record``. Called when the first space is needed; see docs/spaces.md.
    """


@hookspec
def register_samplers() -> dict[str, Callable[..., Any]]:
    """Channel samplers by name.

    Each value is a factory called with the method's ``sampler_options`` as keyword
    arguments (e.g. ``k=4``) that returns a :class:`nasbench_pc.interfaces.ChannelSampler`.
    The factory raises :class:`nasbench_pc.errors.ConfigError` for options it does not take.
    """


@hookspec
def register_normalizers() -> dict[str, Callable[..., Any]]:
    """Edge normalizers by name.

    Each value is a factory called with ``normalizer_options`` as keyword arguments that
    returns a :class:`nasbench_pc.interfaces.EdgeNormalizer`.
    """


@hookspec
def register_evaluators() -> dict[str, Any]:
    """Evaluators by name: objects with ``evaluate(model, batches, device) -> dict[str, float]``."""


@hookspec
def register_methods() -> dict[str, Any]:
    """Search methods by name: :class:`nasbench_pc.interfaces.Method` records tying a search
    space, sampler, normalizer, architecture-gradient order and hyperparameter preset together.
    The core never branches on a method's name; everything method-specific lives here.
    """


@hookspec
def register_datasets() -> dict[str, Callable[..., Any]]:
    """Datasets by name.

    Each value is a loader called with keyword arguments ``split`` ('train' | 'test'), ``root``
    (str | None), ``download`` (bool), ``seed``, ``augment`` (bool), ``cutout`` (int, 0 = off),
    ``color_jitter`` (bool: add ColorJitter(0.4, 0.4, 0.4, 0.2) to ImageNet-style augmentation, as
    the reference ImageNet training does and its search does not), ``in_channels`` (1, 3 or
    None = native), ``image_size`` (int | None = native) and ``bad_images`` ('stop' | 'skip': raise
    a ConfigError naming an image file that cannot be decoded, or leave such files out with one
    warning; loaders of in-memory data ignore it) that returns
    ``(torch.utils.data.Dataset, nasbench_pc.data.DatasetInfo)``; the dataset yields
    ``(float CHW tensor, int label)``. A missing or malformed dataset raises
    :class:`nasbench_pc.errors.ConfigError` saying how to get the data.
    """

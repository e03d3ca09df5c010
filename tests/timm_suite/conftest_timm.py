"""pytest plugin for timm's own ``tests/test_models.py``: run it on nasbench_pc's models only.

``run.py`` copies this file as the ``conftest.py`` above timm's ``tests/`` folder. It imports
``nasbench_pc`` (which registers our models) before timm's tests are collected, keeps only the
test items parametrized with one of our model names, and fails the session instead of passing
vacuously: when one of the :data:`REQUIRED` tests is missing any of our models, or when one of our
items is skipped (a skip would hide a missing feature such as torchvision's fx extractor).

timm runs its ``forward_intermediates`` tests only on the modules it lists in ``FEAT_INTER_FILTERS``
(its own model files); :func:`pytest_generate_tests` cannot reach those already-parametrized tests, so
``test_nasbench_pc_intermediates.py`` calls the same test functions on our models.
"""

from __future__ import annotations

import pytest
import timm
from timm.models import model_entrypoint

import nasbench_pc  # noqa: F401  (registers the timm models)

#: timm test functions (in ``tests/test_models.py`` or our ``test_nasbench_pc_intermediates.py``)
#: that must run on every one of our models.
REQUIRED = (
    "test_model_forward",
    "test_model_backward",
    "test_model_default_cfgs",
    "test_model_forward_features",
    "test_model_forward_intermediates",
    "test_model_forward_intermediates_features",
    "test_model_forward_torchscript",
    "test_model_forward_fx",
    "test_model_backward_fx",
    "test_model_forward_fx_torchscript",
)


def our_models() -> list[str]:
    """timm model names registered by nasbench_pc (any of its modules), in timm's order."""
    return [name for name in timm.list_models() if model_entrypoint(name).__module__.split(".")[0] == "nasbench_pc"]


def pytest_configure(config: pytest.Config) -> None:
    # Markers timm's pyproject.toml registers (its pyproject is not copied) plus pytest-timeout's.
    for marker in ("base", "forward", "backward", "cfg", "cfg_nonstd", "torchscript", "features", "fxforward",
                   "fxbackward", "timeout(seconds)"):
        config.addinivalue_line("markers", marker)
    config.stash[_ours_key] = set(our_models())


_ours_key = pytest.StashKey[set]()


def _model_name(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("model_name") if callspec is not None else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep our models' items; refuse to run when a required test does not cover every model."""
    ours = config.stash[_ours_key]
    if not ours:
        raise pytest.UsageError("No timm model registered by nasbench_pc: `import nasbench_pc` registered nothing.")
    keep = [item for item in items if _model_name(item) in ours]
    deselected = [item for item in items if _model_name(item) not in ours]
    covered: dict[str, set[str]] = {}
    for item in keep:
        covered.setdefault(item.originalname, set()).add(_model_name(item))
    missing = {test: sorted(ours - covered.get(test, set())) for test in REQUIRED}
    missing = {test: models for test, models in missing.items() if models}
    if missing:
        lines = "; ".join(f"{test} lacks {', '.join(models)}" for test, models in missing.items())
        raise pytest.UsageError(
            f"timm's model tests did not collect all of nasbench_pc's models ({lines}). A renamed or newly "
            f"filtered timm test must be matched in tests/timm_suite/conftest_timm.py (REQUIRED)."
        )
    config.hook.pytest_deselected(items=deselected)
    items[:] = keep


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail a run that skipped any of our items (the terminal reporter keeps the skip reports)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = [report.nodeid for report in reporter.stats.get("skipped", [])] if reporter else []
    if skipped and exitstatus == 0:
        session.config.get_terminal_writer().line(
            f"FAILED: {len(skipped)} of nasbench_pc's timm tests were skipped: {', '.join(skipped)}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

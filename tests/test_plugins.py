import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from nasbench_pc import hookimpl, registry
from nasbench_pc.cli import main
from nasbench_pc.console import console
from nasbench_pc.errors import PluginError

PLUGIN = textwrap.dedent('''
    import torch
    from torch import nn
    from nasbench_pc import hookimpl

    class LastChannelsEdge(nn.Module):
        """Runs the ops on the LAST C/K channels instead of the first."""
        def __init__(self, mixed, k):
            super().__init__()
            self.mixed, self.k = mixed, k
        def forward(self, x, weights):
            cut = x.shape[1] - x.shape[1] // self.k
            return torch.cat([x[:, :cut], self.mixed(x[:, cut:], weights)], dim=1)

    class LastChannelsSampler:
        def __init__(self, k=2):
            self.k = k
        def build_edge(self, make_mixed_op, channels, stride):
            if stride != 1:
                return make_mixed_op(channels)
            return LastChannelsEdge(make_mixed_op(channels // self.k), self.k)

    @hookimpl
    def register_samplers():
        return {"last-channels": LastChannelsSampler}
''')

SCRIPT = textwrap.dedent('''
    import torch, nasbench_pc as nbp
    net = nbp.create_supernet("darts-1st", init_channels=8, layers=3, sampler="last-channels",
                              sampler_options={"k": 4})
    edge = net.cells[0]._ops[0]
    print(type(edge).__name__, edge.k, tuple(net(torch.randn(2, 3, 16, 16)).shape))
    print(sorted(nbp.available("sampler")))
''')


def test_outside_package_adds_a_sampler_through_its_entry_point(tmp_path):
    (tmp_path / "my_nas_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "my_nas_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-nas-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[nasbench_pc]\nlast_channels = my_nas_plugin\n")
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path), "PATH": ""}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["LastChannelsEdge 4 (2, 10)", "['full', 'last-channels', 'partial']"]


class _Duplicate:
    @hookimpl
    def register_samplers(self):
        return {"partial": object}


def test_duplicate_names_are_refused_with_both_plugins_named():
    pm = registry.plugin_manager()
    pm.register(_Duplicate(), name="dup_plugin")
    registry._registry.cache_clear()
    try:
        with pytest.raises(PluginError, match="Two plugins register a sampler named 'partial': partial_channels and "
                                              "dup_plugin"):
            registry.available("sampler")
    finally:
        pm.unregister(name="dup_plugin")
        registry._registry.cache_clear()
    assert "partial" in registry.available("sampler")


def test_builtins_come_through_the_entry_point_group():
    names = {name for name, _ in registry.plugin_manager().list_name_plugin()}
    assert {"darts_space", "full_channels", "partial_channels", "edge_normalization", "darts", "pc_darts",
            "beta_darts", "sdarts", "drnas", "gdas", "darts_minus", "fairdarts"} <= names
    assert sorted(registry.available("method")) == ["beta-darts", "darts", "darts-1st", "darts-minus", "drnas",
                                                    "en-only", "fairdarts", "gdas", "pc-darts", "pc-only",
                                                    "sdarts-adv", "sdarts-rs"]


def test_cli_lists_methods_and_reports_errors_without_traceback():
    runner = CliRunner()
    console.width = 200  # rich would fold the table to 80 columns outside a terminal
    result = runner.invoke(main, ["methods"])
    assert result.exit_code == 0
    assert "pc-darts" in result.output and "partial k=4" in result.output
    result = runner.invoke(main, ["supernet", "pc-darts", "--k", "3"])
    assert result.exit_code == 2
    assert "K=3 does not divide the 16 channels" in result.output
    assert "Traceback" not in result.output


def test_a_misspelled_hook_is_refused_with_the_closest_valid_name(tmp_path):
    """pluggy would silently ignore ``register_sampler``: nothing it returns would ever be registered. The
    plugin is skipped (the other commands keep working) and `plugins` says why."""
    (tmp_path / "typo_plugin.py").write_text(
        "from nasbench_pc import hookimpl\n\n@hookimpl\ndef register_sampler():\n    return {'mine': object}\n")
    dist = tmp_path / "typo_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: typo-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[nasbench_pc]\ntypo = typo_plugin\n")
    out = subprocess.run([sys.executable, "-m", "nasbench_pc", "plugins"], cwd=tmp_path, capture_output=True,
                         text=True, env={"PYTHONPATH": str(tmp_path), "PATH": "", "COLUMNS": "400"}, timeout=120)
    assert out.returncode == 0, out.stderr
    message = " ".join(out.stdout.replace("│", " ").split())
    assert ("typo typo-plugin 0.1 typo_plugin load The nasbench_pc plugin 'typo' (typo_plugin) implements the "
            "unknown hook(s) 'register_sampler' (did you mean 'register_samplers'?), so nothing it registers there "
            "would be used.") in message
    assert "Traceback" not in out.stderr


DECLARING = textwrap.dedent('''
    from nasbench_pc import hookimpl
    from nasbench_pc.interfaces import Method, Shortcut
    from nasbench_pc.plugins.partial_channels import PartialChannelSampler


    class HalfOrQuarter(PartialChannelSampler):
        """Partial channels with K=2, or K=4 with ``quarter=True`` (which the imagenet preset sets)."""

        shortcuts = (Shortcut(("--quarter",), "quarter", "A quarter of the channels instead of half", type=bool),)
        presets = {"imagenet": {"quarter": True}}
        column = ("quarter", "quarter")

        def __init__(self, quarter: bool = False):
            super().__init__(k=4 if quarter else 2)


    @hookimpl
    def register_samplers():
        return {"half-or-quarter": HalfOrQuarter}


    @hookimpl
    def register_methods():
        return {"hq": Method(name="hq", description="half or quarter", sampler="half-or-quarter")}
''')


def test_a_sampler_declares_its_flag_its_preset_options_and_its_column(tmp_path):
    """What docs/plugins.md shows: the core knows a sampler's flag, preset options and table column only from it."""
    (tmp_path / "hq_plugin.py").write_text(DECLARING)
    env = {**__import__("os").environ, "NASBENCH_PC_PLUGINS": "hq_plugin", "PYTHONPATH": str(tmp_path),
           "COLUMNS": "200"}
    script = textwrap.dedent('''
        from click.testing import CliRunner
        from nasbench_pc.cli import main
        from nasbench_pc.cli._plugin_options import plugin_overrides
        from nasbench_pc.search.presets import resolve_config
        print("help:", "--quarter BOOLEAN" in CliRunner().invoke(main, ["search", "--help"]).output)
        print("flag:", plugin_overrides({"quarter": True, "k": None}))
        print("imagenet:", resolve_config("hq", "imagenet", dataset="synthetic").sampler_options)
        print("quick:", resolve_config("hq", "quick").sampler_options)
    ''')
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines() == ["help: True", "flag: {'sampler_options': {'quarter': True}}",
                                       "imagenet: {'quarter': True}", "quick: {}"]

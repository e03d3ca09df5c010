"""A third search space from an outside package: tests/outside_space/chain_space is pip-installed (offline)
into a temporary folder, found through the ``nasbench_pc`` entry-point group, and searched, compared and
shown from the command line without any change to nasbench_pc/."""

import ast
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from offline_install import install

PACKAGE = Path(__file__).parent / "outside_space" / "chain_space"
# Every nasbench_pc module the outside package may import: the public plugin API, nothing of the built-in plugins.
PUBLIC = {"nasbench_pc", "nasbench_pc.interfaces", "nasbench_pc.supernet", "nasbench_pc.errors",
          "nasbench_pc.results.plots"}
GENOTYPE_TEXT = re.compile(r"chain:(?:skip_connect|conv_3x3|avg_pool_3x3)(?:>(?:skip_connect|conv_3x3|avg_pool_3x3))*")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a process that has chain-space installed: pip builds it from a copy of its source
    (so no build files land in the repository) into a folder that PYTHONPATH names."""
    _, site, env = install(PACKAGE, tmp_path_factory.mktemp("chain"))
    assert (site / "chain_space-0.1.dist-info" / "entry_points.txt").read_text().split() == [
        "[nasbench_pc]", "chain_space", "=", "chain_space.space"]
    return env


def _run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return out


def test_the_outside_package_imports_only_public_nasbench_pc_names():
    modules, from_root = set(), set()
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
                if node.module == "nasbench_pc":
                    from_root |= {alias.name for alias in node.names}
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            modules |= {name for name in names if name.split(".")[0] == "nasbench_pc"}
    assert not any(name.startswith("nasbench_pc.plugins") for name in modules)
    assert modules == PUBLIC
    assert from_root == {"hookimpl"}


API = textwrap.dedent('''
    import timm, torch
    import nasbench_pc as nbp
    from nasbench_pc import genotypes
    from nasbench_pc.search.presets import resolve_config
    from nasbench_pc.search import run_search

    print(sorted(nbp.available("search_space")))
    for method in ("darts", "darts-1st", "pc-darts", "pc-only", "en-only"):
        net = nbp.create_supernet(method, space="chain")
        logits = net(torch.randn(2, 3, 16, 16))
        record = genotypes.space_named("chain").arch_record(net)
        print(method, type(net.cells[0].edges[0]).__name__, len(net.cells), len(net.cells[0].edges),
              tuple(logits.shape), [tuple(p.shape) for p in net.arch_parameters()],
              sum(p.numel() for p in net.weight_parameters()), record["edge_weights_chain"],
              genotypes.to_dict(net.genotype())["space"])
    g = genotypes.parse("chain:conv_3x3>skip_connect>avg_pool_3x3")
    print(genotypes.to_json(g, indent=None), genotypes.parse(genotypes.to_json(g)) == g, genotypes.to_text(g))
    space = genotypes.space_of(g)
    print(space.name, space.cell_lines(g), space.edges(g))
    print(space.stats(g))
    print(space.stats(genotypes.parse("chain:skip_connect>conv_3x3>skip_connect")).collapsed)
    spec = space.networks["cifar"]
    model = timm.create_model(spec.model, genotype=g, num_classes=7, in_chans=1, **spec.options)
    print(spec.model, tuple(model(torch.randn(2, 1, 32, 32)).shape), sum(p.numel() for p in model.parameters()))
    # second order: the architect's unrolled step deep-copies the outside supernet
    config = resolve_config("darts", "quick", space="chain", dataset="synthetic", limit=64, epochs=1,
                            steps_per_epoch=1, device="cpu")
    record = run_search(config, None).history[-1]
    print(config.space_options, record["genotype"]["space"], sorted(record["arch_weights"]),
          [key for key in ("alpha_entropy_chain", "skip_connects", "collapsed") if key in record])
''')


def test_every_method_builds_and_searches_the_chain_space_through_the_public_api(env, tmp_path):
    lines = _run(env, tmp_path, "-c", API).stdout.splitlines()
    # full sampler: one 3x3 conv (16x16x9 weights, non-affine BN) per edge, 6 edges; stem 464, classifier 170
    # partial (K=4): the conv sees 4 of the 16 channels (4x4x9); a chain node has one edge, so its weight is 1
    assert lines == [
        "['chain', 'darts', 'nas-bench-201']",
        "darts MixedOp 2 3 (2, 10) [(3, 4)] 14458 None chain",
        "darts-1st MixedOp 2 3 (2, 10) [(3, 4)] 14458 None chain",
        "pc-darts PartialChannelEdge 2 3 (2, 10) [(3, 4), (3,)] 1498 [1.0, 1.0, 1.0] chain",
        "pc-only PartialChannelEdge 2 3 (2, 10) [(3, 4)] 1498 None chain",
        "en-only MixedOp 2 3 (2, 10) [(3, 4), (3,)] 14458 [1.0, 1.0, 1.0] chain",
        '{"space": "chain", "ops": ["conv_3x3", "skip_connect", "avg_pool_3x3"]} True '
        "chain:conv_3x3>skip_connect>avg_pool_3x3",
        "chain {'chain cell': ['node 1 = conv_3x3(node 0)', 'node 2 = skip_connect(node 1)', "
        "'node 3 = avg_pool_3x3(node 2)']} [(1, 'conv_3x3'), (2, 'skip_connect'), (3, 'avg_pool_3x3')]",
        "CellStats(skip_connects=1, edges=3, collapsed=False, rule=\">= 2 of the chain's 3 edges are skip_connect\")",
        "True",
        # stem 1x16x9 + BN 32, four cells with one affine conv_3x3 each (2304 + 32), classifier 16x7 + 7
        "chain_tiny (2, 7) 9639",
        "{'init_channels': 8, 'layers': 2, 'steps': 3} chain ['alphas_chain', 'edge_weights_chain'] "
        "['alpha_entropy_chain', 'skip_connects', 'collapsed']",
    ]


def test_search_on_the_chain_space_from_the_command_line(env, tmp_path):
    run = tmp_path / "run"
    out = _run(env, tmp_path, "-m", "nasbench_pc", "search", "--space", "chain", "--method", "pc-darts",
               "--space-option", "steps=4", "--sampler-option", "k=2", "--dataset", "synthetic", "--limit", "128",
               "--epochs", "1", "--steps-per-epoch", "2", "--device", "cpu", "--out", str(run))
    saved = json.loads((run / "genotype.json").read_text())
    assert saved["space"] == "chain" and len(saved["ops"]) == 4
    assert "chain:" + ">".join(saved["ops"]) in GENOTYPE_TEXT.findall(out.stdout)
    config = json.loads((run / "config.json").read_text())["config"]
    # the quick preset's chain shape (C=8), with the option given on the command line
    assert (config["space"], config["space_options"], config["sampler_options"]) == (
        "chain", {"init_channels": 8, "layers": 2, "steps": 4}, {"k": 2})
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["genotype"] == saved
    assert record["arch_weights"]["edge_weights_chain"] == [1.0] * 4
    assert len(record["arch_weights"]["alphas_chain"]) == 4 and "alpha_entropy_chain" in record


def test_compare_runs_two_methods_on_the_chain_space(env, tmp_path):
    save = tmp_path / "cmp"
    out = _run(env, tmp_path, "-m", "nasbench_pc", "compare", "darts-1st", "pc-darts", "--space", "chain",
               "--dataset", "synthetic", "--limit", "128", "--batch-size", "16", "--epochs", "1",
               "--steps-per-epoch", "2", "--device", "cpu", "--save", str(save))
    assert "darts-1st" in out.stdout and "pc-darts" in out.stdout
    assert out.stdout.count("chain cell") == 2  # each method's best genotype, as the chain space reads it
    assert len(GENOTYPE_TEXT.findall((save / "compare.md").read_text())) == 2  # saved in the chain's text format
    for method in ("darts-1st", "pc-darts"):
        assert json.loads((save / "runs" / f"{method}-seed0" / "genotype.json").read_text())["space"] == "chain"


def test_show_prints_a_chain_genotypes_cells_and_parameters(env, tmp_path):
    out = _run(env, tmp_path, "-m", "nasbench_pc", "show", "chain:conv_3x3>skip_connect>avg_pool_3x3").stdout
    for line in ("node 1 = conv_3x3(node 0)", "node 2 = skip_connect(node 1)", "node 3 = avg_pool_3x3(node 2)"):
        assert line in out
    # chain_tiny at its reference setting (C=16, 4 cells, 10 classes): 464 + 4 x 2336 + 170 parameters
    assert re.search(r"\b9,?978\b", out), out


def test_train_and_export_use_the_chain_spaces_own_recipe_and_network(env, tmp_path):
    run, model = tmp_path / "train", tmp_path / "model"
    out = _run(env, tmp_path, "-m", "nasbench_pc", "train", "chain:conv_3x3>skip_connect>avg_pool_3x3",
               "--dataset", "synthetic", "--limit", "32", "--epochs", "1", "--batch-size", "16", "--device", "cpu",
               "--out", str(run)).stdout
    assert "recipe chain (the chain space's only recipe)" in " ".join(out.split())
    config = json.loads((run / "config.json").read_text())
    assert (config["space"], config["model"], config["hparams"]["drop_path"]) == ("chain", "chain_tiny", 0.0)
    _run(env, tmp_path, "-m", "nasbench_pc", "export", str(run), "--out", str(model))
    check = textwrap.dedent(f"""
        import nasbench_pc, timm, torch
        net = timm.create_model("local-dir:{model}", pretrained=True).eval()
        print(type(net).__name__, net(torch.zeros(1, 3, 32, 32)).shape[1])
    """)
    assert _run(env, tmp_path, "-c", check).stdout.split() == ["ChainNetwork", "10"]

import json

import pytest

from nasbench_pc import compare, genotypes
from nasbench_pc.errors import ConfigError
from nasbench_pc.genotypes import KNOWN

A = KNOWN["DARTS_V2"]
B = A._replace(normal=[("sep_conv_5x5", 0)] + A.normal[1:])  # same edges, one op changed
C = A._replace(normal=A.normal[:7] + [("dil_conv_3x3", 3)])  # one edge rewired (node 3 reads node 1, not node 0)


def test_jaccard_of_selected_edges_and_ops():
    assert len(compare.selected_edges(A)) == 16
    assert compare.jaccard(compare.selected_edges(A), compare.selected_edges(B)) == 1.0
    assert compare.jaccard(compare.selected_ops(A), compare.selected_ops(B)) == pytest.approx(15 / 17)
    assert compare.jaccard(compare.selected_edges(A), compare.selected_edges(C)) == pytest.approx(15 / 17)


def test_stability_is_mean_pairwise_jaccard():
    edges, ops = compare.stability([A, B, C])
    assert edges == pytest.approx((1 + 15 / 17 + 15 / 17) / 3)
    assert ops == pytest.approx((15 / 17 + 15 / 17 + 14 / 18) / 3)
    assert compare.stability([A, A]) == (1.0, 1.0)
    assert compare.stability([A]) is None


def _write_run(root, name, *, method, seed, sampler, normalizer, k, accs, seconds, img_s, saved_mib, genotype,
               batch=32):
    run = root / name
    run.mkdir(parents=True)
    config = {"method": method, "seed": seed, "dataset": "synthetic", "batch_size": batch, "epochs": len(accs),
              "k": None, "device": "cpu"}
    meta = {"config": config, "world_size": 1,
            "method": {"sampler": sampler, "normalizer": normalizer, "sampler_options": {"k": k} if k else {}}}
    (run / "config.json").write_text(json.dumps(meta))
    lines = [json.dumps({"epoch": i + 1, "arch_acc": a, "epoch_seconds": s, "images_per_second": img_s,
                         "saved_for_backward_mib": saved_mib, "genotype": genotypes.to_dict(genotype)})
             for i, (a, s) in enumerate(zip(accs, seconds))]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    genotypes.save(genotype, run / "genotype.json")
    return run


@pytest.fixture
def runs(tmp_path):
    collapsed = A._replace(normal=[("skip_connect", 0), ("skip_connect", 1)] + A.normal[2:])  # 4 skips
    _write_run(tmp_path, "darts-0", method="darts", seed=0, sampler="full", normalizer="none", k=None,
               accs=[0.2, 0.4], seconds=[10, 12], img_s=64, saved_mib=3000, genotype=A)
    _write_run(tmp_path, "darts-1", method="darts", seed=1, sampler="full", normalizer="none", k=None,
               accs=[0.3, 0.6], seconds=[10, 10], img_s=32, saved_mib=3000, genotype=collapsed)
    _write_run(tmp_path, "pc-0", method="pc-darts", seed=0, sampler="partial", normalizer="edge", k=4,
               accs=[0.5, 0.5], seconds=[4, 4], img_s=128, saved_mib=1000, genotype=B)
    _write_run(tmp_path, "pc-1", method="pc-darts", seed=1, sampler="partial", normalizer="edge", k=4,
               accs=[0.5, 0.7], seconds=[4, 6], img_s=128, saved_mib=1000, genotype=B)
    return tmp_path


def test_aggregate_means_ratios_best_seed_and_collapse(runs):
    loaded = [compare.load_run(p) for p in compare.expand_runs([str(runs / "*")])]
    assert [r.method for r in loaded] == ["darts", "darts", "pc-darts", "pc-darts"]
    darts, pc = compare.aggregate(loaded, with_cost=False)
    assert darts.arch_acc == pytest.approx((0.5, 0.1414213562))
    assert darts.epoch_seconds == pytest.approx((10.5, 0.7071067812))
    assert darts.step_seconds == pytest.approx((0.75, 0.3535533906))  # 32/64 and 32/32 s per step
    assert darts.best_seed == 1 and darts.collapsed_seeds == [1]
    assert darts.skip_connects == pytest.approx((3.0, 1.4142135624))  # DARTS_V2 has 2 skips, the collapsed 4
    assert pc.memory_label == "saved for backward (CPU)"
    assert pc.memory_vs_darts == pytest.approx(1 / 3)
    assert pc.time_vs_darts == pytest.approx(0.25 / 0.75)
    assert (pc.edge_stability, pc.op_stability) == (1.0, 1.0)
    assert pc.best_seed == 1 and pc.best_genotype == B and pc.k == 4
    assert pc.search_hours == pytest.approx(((8 + 10) / 2 / 3600, 1.4142135624 / 3600))


def test_output_formats(runs):
    rows = compare.aggregate([compare.load_run(p) for p in compare.expand_runs([str(runs)])], with_cost=False)
    md = compare.to_markdown(rows).splitlines()
    assert md[0].startswith("| method | sampler | normalizer | K | batch | memory |")
    assert md[2].startswith("| darts | full | none | - | 32 | 3000 ± 0 MiB saved for backward (CPU) | 1.00x |")
    assert "skip_connect collapse (seeds 1)" in md[2]
    csv_lines = compare.to_csv(rows).splitlines()
    assert csv_lines[2].startswith("pc-darts,partial,edge,4,32,")
    data = json.loads(compare.to_json(rows))
    assert data[1]["method"] == "pc-darts" and data[1]["edge_stability"] == 1.0
    assert data[0]["derived_params"] is None


def test_missing_runs_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="No search runs match"):
        compare.expand_runs([str(tmp_path / "nothing*")])
    (tmp_path / "broken").mkdir()
    with pytest.raises(ConfigError, match="is not a search run directory"):
        compare.load_run(tmp_path / "broken")

import json

import pytest

from nasbench_pc import genotypes
from nasbench_pc.errors import ConfigError
from nasbench_pc.genotypes import KNOWN
from nasbench_pc.results import compare

A = KNOWN["DARTS_V2"]
B = A._replace(normal=[("sep_conv_5x5", 0)] + A.normal[1:])  # same edges, one op changed
C = A._replace(normal=A.normal[:7] + [("dil_conv_3x3", 3)])  # one edge rewired (node 3 reads node 1, not node 0)
# NAS-Bench-201 cells: every one of the 6 edges is kept, so only ops differ
NB_BEST = genotypes.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
                          "nor_conv_3x3~2|")
NB_SKIPS = genotypes.parse("|skip_connect~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
                           "nor_conv_3x3~2|")  # 3 of 6 edges skip_connect: the space's collapse rule


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


def test_stability_of_nas_bench_201_cells_compares_ops_on_the_six_edges():
    assert compare.selected_edges(NB_BEST) == {(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)}
    assert compare.stability([NB_BEST, NB_SKIPS]) == (1.0, pytest.approx(4 / 8))  # 2 of 6 ops differ


def _write_run(root, name, *, method, seed, sampler, normalizer, k, accs, seconds, img_s, saved_mib, genotype,
               batch=32, space=None):
    """A run directory; without ``space`` its config.json is one of the DARTS-only versions (top-level k)."""
    run = root / name
    run.mkdir(parents=True)
    config = {"method": method, "seed": seed, "dataset": "synthetic", "batch_size": batch, "epochs": len(accs),
              "device": "cpu"}
    if space is None:
        config.update(k=None, init_channels=8, layers=5)
    else:
        config.update(space=space, space_options={"init_channels": 8}, sampler_options={"k": k} if k else {})
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
    assert pc.memory_vs_baseline == pytest.approx(1 / 3)
    assert pc.time_vs_baseline == pytest.approx(0.25 / 0.75)
    assert (pc.edge_stability, pc.op_stability) == (1.0, 1.0)
    assert pc.best_seed == 1 and pc.best_genotype == B and pc.k == 4
    assert (darts.space, darts.skip_edges) == ("darts", 8)
    assert darts.collapse_rule == ">= 3 of the normal cell's 8 edges are skip_connect"
    assert pc.search_hours == pytest.approx(((8 + 10) / 2 / 3600, 1.4142135624 / 3600))


def test_the_baseline_is_the_first_method_unless_chosen(runs):
    loaded = [compare.load_run(p) for p in compare.expand_runs([str(runs)])]
    darts, pc = compare.aggregate(loaded, with_cost=False)  # the table's first method: darts
    assert (darts.baseline, pc.baseline) == ("darts", "darts")
    assert (darts.memory_vs_baseline, darts.time_vs_baseline) == (1.0, 1.0)
    darts, pc = compare.aggregate(loaded, with_cost=False, baseline="pc-darts")  # rows keep their order
    assert (darts.method, pc.method) == ("darts", "pc-darts")
    assert (darts.baseline, pc.baseline) == ("pc-darts", "pc-darts")
    assert darts.memory_vs_baseline == pytest.approx(3000 / 1000)
    assert darts.time_vs_baseline == pytest.approx(0.75 / 0.25)  # 0.75 s and 32/128 s per step
    assert (pc.memory_vs_baseline, pc.time_vs_baseline) == (1.0, 1.0)
    assert compare.columns([darts, pc])[6:9] == ["memory vs pc-darts", "step s", "step vs pc-darts"]
    assert compare.to_markdown([darts, pc]).splitlines()[2].startswith(
        "| darts | full | none | - | 32 | 3000 ± 0 MiB saved for backward (CPU) | 3.00x | 0.750 ± 0.354 | 3.00x |")
    assert compare.to_csv([darts, pc]).splitlines()[0].startswith(
        "method,sampler,normalizer,K,batch,memory,memory vs pc-darts,step s,step vs pc-darts,")
    data = json.loads(compare.to_json([darts, pc]))
    assert [(r["baseline"], r["memory_vs_baseline"]) for r in data] == [("pc-darts", 3.0), ("pc-darts", 1.0)]
    with pytest.raises(ConfigError, match=r"--baseline 'en-only' is not among the compared methods "
                                          r"\(darts, pc-darts\).* leave --baseline out to compare against the first "
                                          r"\(darts\)"):
        compare.aggregate(loaded, with_cost=False, baseline="en-only")


def test_output_formats(runs):
    rows = compare.aggregate([compare.load_run(p) for p in compare.expand_runs([str(runs)])], with_cost=False)
    md = compare.to_markdown(rows).splitlines()
    assert md[0].startswith("| method | sampler | normalizer | K | batch | memory |")
    assert "| skips (of 8) |" in md[0]
    assert md[2].startswith("| darts | full | none | - | 32 | 3000 ± 0 MiB saved for backward (CPU) | 1.00x |")
    assert "skip_connect collapse (seeds 1)" in md[2]
    csv_lines = compare.to_csv(rows).splitlines()
    assert csv_lines[2].startswith("pc-darts,partial,edge,4,32,")
    data = json.loads(compare.to_json(rows))
    assert data[1]["method"] == "pc-darts" and data[1]["edge_stability"] == 1.0
    assert data[0]["derived_params"] is None
    assert data[1]["space"] == "darts" and data[1]["best_genotype"]["space"] == "darts"


@pytest.fixture
def nb201_runs(tmp_path):
    tmp_path = tmp_path / "nb201"
    for seed, genotype in enumerate([NB_BEST, NB_SKIPS]):
        _write_run(tmp_path, f"darts-{seed}", method="darts-1st", seed=seed, sampler="full", normalizer="none",
                   k=None, accs=[0.3, 0.5 - seed / 10], seconds=[2, 2], img_s=64, saved_mib=100, genotype=genotype,
                   space="nas-bench-201")
        _write_run(tmp_path, f"pc-{seed}", method="pc-darts", seed=seed, sampler="partial", normalizer="edge", k=2,
                   accs=[0.3, 0.4], seconds=[1, 1], img_s=128, saved_mib=40, genotype=NB_BEST, space="nas-bench-201")
    return tmp_path


def test_nas_bench_201_runs_take_skips_collapse_and_cost_from_their_space(nb201_runs):
    loaded = [compare.load_run(p) for p in compare.expand_runs([str(nb201_runs)])]
    assert {r.space for r in loaded} == {"nas-bench-201"}
    assert [r.k for r in loaded if r.method == "pc-darts"] == [2, 2]  # from config.json's sampler_options
    darts, pc = compare.aggregate(loaded)
    assert darts.skip_connects == pytest.approx((2.0, 1.4142135624))  # 1 and 3 skip_connect edges
    assert darts.collapsed_seeds == [1] and pc.collapsed_seeds == []
    assert (darts.skip_edges, darts.collapse_rule) == (6, ">= 3 of the cell's 6 edges are skip_connect")
    assert (darts.edge_stability, darts.op_stability) == (1.0, pytest.approx(0.5))
    assert darts.best_seed == 0 and darts.best_genotype == NB_BEST
    assert (pc.derived_params, pc.derived_macs) == (1_288_506, 184_730_240)  # nasbench201_cifar, C=16, N=5
    md = compare.to_markdown([darts, pc]).splitlines()
    assert "| skips (of 6) |" in md[0]
    assert "| 2.0 ± 1.4 |" in md[2] and "skip_connect collapse (seeds 1)" in md[2]
    assert f"seed 0: {genotypes.to_text(NB_BEST)}".replace("|", "\\|") in md[2]
    assert json.loads(compare.to_json([darts, pc]))[0]["best_genotype"] == genotypes.to_dict(NB_BEST)


def test_runs_of_different_spaces_are_not_put_in_one_table(runs, nb201_runs):
    loaded = [compare.load_run(runs / "darts-0"), compare.load_run(nb201_runs / "pc-0")]
    with pytest.raises(ConfigError, match=r"different search spaces \(darts: .*darts-0; nas-bench-201: .*pc-0\)"):
        compare.aggregate(loaded, with_cost=False)


def test_missing_runs_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="No search runs match"):
        compare.expand_runs([str(tmp_path / "nothing*")])
    (tmp_path / "broken").mkdir()
    with pytest.raises(ConfigError, match="is not a search run directory"):
        compare.load_run(tmp_path / "broken")


def test_saved_bytes_come_from_each_runs_own_space_and_sampler(runs, nb201_runs):
    darts_fixed, darts_per_example = compare.saved_bytes_line(compare.load_run(runs / "darts-0"))  # a legacy config
    full_fixed, full_per_example = compare.saved_bytes_line(compare.load_run(nb201_runs / "darts-0"))
    pc_fixed, pc_per_example = compare.saved_bytes_line(compare.load_run(nb201_runs / "pc-0"))
    # the 14-edge DARTS cells save more per image than NAS-Bench-201's 6 edges; sampling 1/2 of the channels
    # (K=2) saves less again, though not half: the stem and the residual reductions are not sampled
    assert darts_per_example > full_per_example > pc_per_example > 0.4 * full_per_example

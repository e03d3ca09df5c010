import json

import pytest

from nasbench_pc import genotypes
from nasbench_pc.errors import GenotypeError
from nasbench_pc.genotypes import KNOWN, PRIMITIVES, Genotype


def test_primitives_in_reference_order():
    assert PRIMITIVES == ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                          "dil_conv_3x3", "dil_conv_5x5")


def test_known_holds_the_published_genotypes():
    assert list(KNOWN) == ["DARTS_V1", "DARTS_V2", "PC_DARTS_cifar", "PC_DARTS_image", "GDAS_V1", "DrNAS_cifar10",
                           "DrNAS_imagenet", "SDARTS_RS", "SDARTS_ADV", *(f"DARTS_MINUS_C10_S0_{i}" for i in range(5)),
                           *(f"FairDARTS_{c}" for c in "abcdefg")]
    assert KNOWN["FairDARTS_a"].normal == [("sep_conv_3x3", 2, 0), ("sep_conv_5x5", 2, 1), ("max_pool_3x3", 4, 0),
                                           ("sep_conv_3x3", 5, 0)]  # sparse: no node 3
    assert KNOWN["FairDARTS_g"].reduce[-1] == ("dil_conv_3x3", 5, 4)  # as fairdarts/genotypes.py @270cfc9 has it
    pc = KNOWN["PC_DARTS_cifar"]
    assert pc.normal[:2] == [("sep_conv_3x3", 1), ("skip_connect", 0)]
    assert pc.reduce[-1] == ("sep_conv_3x3", 2)
    assert KNOWN["PC_DARTS_image"].normal[-1] == ("dil_conv_5x5", 4)
    assert KNOWN["DARTS_V2"].normal[-1] == ("dil_conv_3x3", 2)
    assert KNOWN["GDAS_V1"].reduce[-1] == ("sep_conv_5x5", 1)  # the author's copy; FairDARTS' reads input 2
    assert KNOWN["SDARTS_ADV"].reduce[-1] == ("sep_conv_5x5", 4)
    assert KNOWN["DARTS_MINUS_C10_S0_4"].reduce[:3] == [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("max_pool_3x3", 0)]
    assert all(g.normal_concat == [2, 3, 4, 5] == g.reduce_concat for g in KNOWN.values())


def test_genotype_has_the_reference_namedtuple_fields():
    assert Genotype._fields == ("normal", "normal_concat", "reduce", "reduce_concat")


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_json_round_trip(name):
    g = KNOWN[name]
    text = genotypes.to_json(g)
    assert json.loads(text)["normal"][0] == list(g.normal[0])
    assert genotypes.from_json(text) == g


def test_reference_literal_with_range_parses():
    text = genotypes.to_python(KNOWN["DARTS_V2"]).replace("[2, 3, 4, 5]", "range(2, 6)")
    assert "range(2, 6)" in text
    assert genotypes.parse(text) == KNOWN["DARTS_V2"]


def test_parse_accepts_name_dict_path_and_run_dir(tmp_path):
    g = KNOWN["PC_DARTS_cifar"]
    assert genotypes.parse("PC_DARTS_cifar") == g
    assert genotypes.parse(genotypes.to_dict(g)) == g
    genotypes.save(g, tmp_path / "genotype.json")
    assert genotypes.parse(str(tmp_path / "genotype.json")) == g
    assert genotypes.parse(tmp_path) == g


def _with_normal(edits):
    d = genotypes.to_dict(KNOWN["DARTS_V2"])
    d.update(edits)
    return d


def test_unknown_op_is_named():
    bad = _with_normal({"normal": [["conv_9x9", 0]] + genotypes.to_dict(KNOWN["DARTS_V2"])["normal"][1:]})
    with pytest.raises(GenotypeError, match=r"Edge 0 of the normal cell uses the unknown op 'conv_9x9'"):
        genotypes.from_dict(bad)


def test_input_index_out_of_range_is_named():
    edges = genotypes.to_dict(KNOWN["DARTS_V2"])["normal"]
    edges[2] = ["sep_conv_3x3", 3]  # node 3 (edges 2-3) can read inputs 0..2 only
    with pytest.raises(GenotypeError, match=r"Edge 2 of the normal cell feeds node 3 from input 3.*0\.\.2"):
        genotypes.from_dict(_with_normal({"normal": edges}))


def test_wrong_edge_count_is_named():
    edges = genotypes.to_dict(KNOWN["DARTS_V2"])["reduce"][:7]
    with pytest.raises(GenotypeError, match="The reduce cell has 7 edges but .* needs exactly 8"):
        genotypes.from_dict(_with_normal({"reduce": edges}))


def test_malformed_json_and_missing_fields():
    with pytest.raises(GenotypeError, match="not valid JSON"):
        genotypes.from_json("{normal: ")
    with pytest.raises(GenotypeError, match="lacks the field"):
        genotypes.from_json('{"normal": []}')
    with pytest.raises(GenotypeError, match="neither a known genotype"):
        genotypes.parse("/no/such/genotype.json")

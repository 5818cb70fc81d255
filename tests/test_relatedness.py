"""Relatedness tables: transcription of the papers' tables, derived matrices, JSON round-trips."""

import json

import numpy as np
import pytest

from facebehavior import relatedness as R
from facebehavior.schema import AUS_17, EXPRESSIONS_7, EXPRESSIONS_8


def test_table_a_matches_facebehaviornet_table1():
    # FaceBehaviorNet Table 1, row by row (prototypical; observational with w).
    assert R.TABLE_A.prototypical("happiness") == (12, 25)
    assert R.TABLE_A.observational("happiness") == {6: 0.51}
    assert R.TABLE_A.prototypical("sadness") == (4, 15)
    assert R.TABLE_A.observational("sadness") == {1: 0.6, 6: 0.5, 11: 0.26, 17: 0.67}
    assert R.TABLE_A.prototypical("fear") == (1, 4, 20, 25)
    assert R.TABLE_A.observational("fear") == {2: 0.57, 5: 0.63, 26: 0.33}
    assert R.TABLE_A.prototypical("anger") == (4, 7, 24)
    assert R.TABLE_A.observational("anger") == {10: 0.26, 17: 0.52, 23: 0.29}
    assert R.TABLE_A.prototypical("surprise") == (1, 2, 25, 26)
    assert R.TABLE_A.observational("surprise") == {5: 0.66}
    assert R.TABLE_A.prototypical("disgust") == (9, 10, 17)
    assert R.TABLE_A.observational("disgust") == {4: 0.31, 24: 0.26}
    # Every AU of table A is one of FaceBehaviorNet's 17.
    assert set(R.TABLE_A.aus) <= set(AUS_17)


def test_table_b_matches_facebehaviornet_table3():
    assert R.TABLE_B.weights("happiness") == {6: 0.57, 7: 0.83, 10: 0.63, 12: 0.82, 25: 0.7}
    assert R.TABLE_B.weights("sadness") == {1: 0.31, 4: 0.53, 7: 0.13, 15: 0.42, 17: 0.1}
    assert R.TABLE_B.weights("fear") == {1: 0.52, 4: 0.4, 5: 0.38, 7: 0.57, 10: 0.57, 25: 0.85}
    assert R.TABLE_B.weights("anger") == {4: 0.65, 7: 0.45, 9: 0.15, 10: 0.33, 25: 0.4}
    assert R.TABLE_B.weights("surprise") == {1: 0.38, 2: 0.37, 5: 0.5, 7: 0.2, 25: 0.85, 26: 0.3}
    assert R.TABLE_B.weights("disgust") == {4: 0.6, 7: 0.75, 9: 0.21, 10: 0.85, 17: 0.23, 25: 0.8}
    assert R.TABLE_B.prototypical("happiness") == ()


def test_compound_table_basic_rows_equal_table_a_and_class_sets():
    for emo in R.BASIC_6:
        assert R.COMPOUND_TABLE.weights(emo) == R.TABLE_A.weights(emo)
    assert len(R.COMPOUND_TABLE.entries) == 21  # 6 basic + 15 compound (22 categories with neutral)
    assert len(R.RAFDB_COMPOUND_11) == 11 and len(R.EMOTIONET_COMPOUND_10) == 10
    assert len(R.EMOTIONET_CLASSES_16) == 16
    for c in R.RAFDB_COMPOUND_11 + R.EMOTIONET_COMPOUND_10:
        assert c in R.COMPOUND_TABLE.entries
        a, b = R.COMPOUND_CONSTITUENTS[c]
        assert a in EXPRESSIONS_7 and b in EXPRESSIONS_7 and a != b
    assert R.COMPOUND_TABLE.prototypical("happily_surprised") == (1, 2, 12, 25)


def test_matrix_orders_subsets_and_unlisted_rows():
    m = R.TABLE_A.matrix(EXPRESSIONS_8, AUS_17)
    assert m.shape == (8, 17)
    assert not m[EXPRESSIONS_8.index("neutral")].any()
    assert not m[EXPRESSIONS_8.index("contempt")].any()
    happy = m[EXPRESSIONS_8.index("happiness")]
    assert {AUS_17[j] for j in np.flatnonzero(happy)} == {6, 12, 25}
    w = R.TABLE_A.matrix(["happiness"], [6, 12, 14], weighted=True)
    np.testing.assert_allclose(w, [[0.51, 1.0, 0.0]])
    # AU2 is used by exactly surprise (prototypical) and fear (observational).
    col = R.TABLE_A.matrix(EXPRESSIONS_7, [2])[:, 0]
    assert {EXPRESSIONS_7[i] for i in np.flatnonzero(col)} == {"surprise", "fear"}
    np.testing.assert_array_equal(R.au_given_emotion("B", ["anger"], [9]), [[1.0]])


def test_json_round_trip_and_user_tables(tmp_path):
    for t in (R.TABLE_A, R.TABLE_B, R.COMPOUND_TABLE):
        assert R.RelatednessTable.from_json(t.to_json()) == t
    p = tmp_path / "mine.json"
    p.write_text(json.dumps({"name": "mine", "entries": {"happiness": {"12": 1.0, "6": 0.4}}}))
    t = R.get_table(str(p))
    assert t.weights("happiness") == {6: 0.4, 12: 1.0}
    assert R.get_table({"entries": {"anger": {4: 1}}}).prototypical("anger") == (4,)
    assert hash(R.RelatednessTable.from_json(R.TABLE_A.to_json())) == hash(R.TABLE_A)
    assert len({R.TABLE_A, R.TABLE_B, R.get_table("A")}) == 2
    R.TABLE_A.to_json(tmp_path / "a.json")
    assert R.get_table(tmp_path / "a.json") == R.TABLE_A


def test_bad_tables_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="not in \\(0, 1\\]"):
        R.RelatednessTable("x", "", {"happiness": {12: 1.5}})
    with pytest.raises(ValueError, match="entries"):
        R.RelatednessTable.from_dict({"happiness": {12: 1.0}})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        R.RelatednessTable.from_json(bad)
    with pytest.raises(KeyError, match="valid names"):
        R.get_table("C")
    with pytest.raises(KeyError, match="contempt"):
        R.TABLE_A.weights("contempt")
    with pytest.raises(TypeError):
        R.TABLE_A.entries["happiness"][12] = 0.3  # read-only

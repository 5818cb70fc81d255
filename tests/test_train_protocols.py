"""Clean protocols: every shipped recipe selects checkpoints on a validation set carved from its
training subjects (never a test split), and the subject-exclusive holdout that carves it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lightning")

from facebehavior.data.labels import LabelTable  # noqa: E402
from facebehavior.train.config import ConfigError, Recipe, SetConfig, apply_override, load_recipe  # noqa: E402
from facebehavior.train.data import holdout_split, load_set  # noqa: E402

RECIPES = sorted((Path(__file__).parent.parent / "recipes").glob("*.yaml"))
# Official validation splits that no paper reports as its test: FER2013's PublicTest ("val").
OFFICIAL_VALIDATION = {
    ("ferplus", "val"),
    ("ferplus", "PublicTest"),
    ("fer2013", "val"),
    ("fer2013", "PublicTest"),
    ("celeba", "val"),
}
# Corpora whose protocol is subject-exclusive folds: training on "all" leaves nothing to test on.
FOLD_PROTOCOL = {"bp4d", "bp4d_plus", "disfa", "afewva"}
# Splits that are the reported test data although not named so (AffectNet's released validation set).
TEST_ALIASES = {("affectnet", "validation")}


def _leaves(s: SetConfig) -> list[SetConfig]:
    return [p for part in s.parts for p in _leaves(part)] if s.parts else [s]


def _is_test(s: SetConfig) -> bool:
    return "test" in s.split.lower() or (s.dataset, s.split) in TEST_ALIASES


def protocol_problems(r: Recipe) -> list[str]:
    """Everything in a recipe that selects or trains on test data."""
    problems = []
    train = [leaf for s in r.data.sets.values() for leaf in _leaves(s)]
    for leaf in train:
        if _is_test(leaf) and leaf.holdout.take != "held":
            problems.append(f"trains on test split {leaf.dataset}/{leaf.split}")
        if leaf.split == "all" and leaf.dataset in FOLD_PROTOCOL:
            problems.append(f"trains on all of {leaf.dataset}: no subject is held out for its test folds")
        if leaf.holdout.fraction > 0 and leaf.holdout.take != "rest":
            problems.append(f"trains on the held-out part of {leaf.dataset}/{leaf.split}")
    if not r.data.val:
        problems.append("no validation set: checkpoints are not selected")
    vals = [(f"data.val[{i}]", v) for i, v in enumerate(r.data.val)]
    vals += [(f"stages[{i}].val[{j}]", v) for i, st in enumerate(r.stages) for j, v in enumerate(st.val)]
    for where, v in vals:
        for leaf in _leaves(v):
            if _is_test(leaf):
                problems.append(f"{where} is test split {leaf.dataset}/{leaf.split}")
            elif (leaf.dataset, leaf.split) in OFFICIAL_VALIDATION:
                continue
            elif leaf.holdout.fraction <= 0 or leaf.holdout.take != "held":
                problems.append(
                    f"{where} {leaf.dataset}/{leaf.split} is not a held-out part of training subjects"
                )
            else:
                twins = [t for t in train if (t.dataset, t.split, t.holdout.fraction, t.holdout.seed)
                         == (leaf.dataset, leaf.split, leaf.holdout.fraction, leaf.holdout.seed)]  # fmt: skip
                if not twins:
                    problems.append(f"{where} holds out {leaf.dataset}/{leaf.split} subjects that no "
                                    "training set excludes with the same holdout")  # fmt: skip
    monitors = [r.checkpoint.monitor] + [getattr(st, "monitor", "") or "" for st in r.stages]
    for m in monitors:
        if m and not m.startswith("val/"):
            problems.append(f"checkpoint monitor {m!r} is not on the first validation set (val/...)")
    return problems


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipes_select_checkpoints_on_training_subjects(path, monkeypatch):
    monkeypatch.setenv("FACEBEHAVIOR_DATA", "/data")
    monkeypatch.setenv("FACEBEHAVIOR_CACHE", "/data/cache")
    assert protocol_problems(load_recipe(path)) == []


def test_the_scan_catches_test_split_selection(monkeypatch):
    # The recipes as they were before issue #16: ARL selected on fold1_test, FaceBehaviorNet
    # trained on all of BP4D and selected on AffectNet's validation (= test) set.
    monkeypatch.setenv("FACEBEHAVIOR_DATA", "/data")
    monkeypatch.setenv("FACEBEHAVIOR_CACHE", "/data/cache")
    arl = load_recipe(
        RECIPES[0].parent / "arl_bp4d.yaml", ["data.val.0.split=fold1_test", "data.val.0.holdout={}"]
    )
    assert any("test split bp4d/fold1_test" in p for p in protocol_problems(arl))
    fbn = load_recipe(
        RECIPES[0].parent / "facebehaviornet.yaml",
        ["data.sets.au.parts.2.split=all", "data.sets.au.parts.2.holdout={}",
         "data.val.0.split=validation", "data.val.0.holdout={}"],
    )  # fmt: skip
    found = protocol_problems(fbn)
    assert any("all of bp4d" in p for p in found) and any("affectnet/validation" in p for p in found)
    loose = load_recipe(RECIPES[0].parent / "arl_bp4d.yaml", ["data.sets.au.holdout={}"])
    assert any("no training set excludes" in p for p in protocol_problems(loose))


def _table(subjects: list[str], videos: list[str] | None = None) -> LabelTable:
    n = len(subjects)
    return LabelTable(
        corpus="c", split="train", root=Path("."),
        image=np.array([f"{i}.png" for i in range(n)], object), subject=np.array(subjects, object),
        video=np.array(videos or [""] * n, object), frame=np.arange(n), expression=np.zeros(n, np.int64),
    )  # fmt: skip


def test_holdout_is_subject_exclusive_and_stable():
    subjects = [f"S{i % 40:02d}" for i in range(400)]
    t = _table(subjects)
    rest, held = holdout_split(t, 0.2, seed=3)
    assert len(rest) + len(held) == 400 and not set(rest) & set(held)
    held_subjects = set(t.subject[held])
    assert held_subjects.isdisjoint(t.subject[rest])
    assert 2 <= len(held_subjects) <= 16  # expected 8 of 40
    # The same subjects are held out of any table of the corpus (e.g. a 7-class subset of rows).
    sub = t.subset(np.arange(0, 400, 3))
    _, held_sub = holdout_split(sub, 0.2, seed=3)
    assert set(sub.subject[held_sub]) == held_subjects & set(sub.subject)
    assert set(t.subject[holdout_split(t, 0.2, seed=4)[1]]) != held_subjects
    # Without subject ids the video, then the image, is the group.
    vids = _table([""] * 6, ["a", "a", "b", "b", "c", "c"])
    r2, h2 = holdout_split(vids, 0.3)
    assert set(vids.video[r2]).isdisjoint(vids.video[h2]) and len(h2) >= 2
    with pytest.raises(ValueError, match="at least 2 subjects"):
        holdout_split(_table(["x", "x"]), 0.5)


def test_load_set_serves_the_pixels_of_the_kept_rows(tmp_path):
    from PIL import Image

    root = tmp_path / "m"
    root.mkdir()
    lines = ["image,split,subject,expression"]
    for i in range(12):
        Image.fromarray(np.full((8, 8, 3), 20 * i, np.uint8)).save(root / f"{i}.png")
        lines.append(f"{i}.png,train,s{i % 4},{i % 7}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    base = {"dataset": "manifest", "root": str(root), "split": "train"}
    rest = load_set(SetConfig(**base, holdout=_holdout(0.3, "rest")))
    held = load_set(SetConfig(**base, holdout=_holdout(0.3, "held")))
    assert len(rest.table) + len(held.table) == 12
    assert set(rest.table.subject).isdisjoint(held.table.subject)
    for data in (rest, held):
        pix = data.adapter.read_images(data.table, range(len(data.table)))
        expect = [20 * int(name.split(".")[0]) for name in data.table.image]
        assert [int(p[0, 0, 0]) for p in pix] == expect


def _holdout(fraction: float, take: str):
    from facebehavior.train.config import HoldoutConfig

    return HoldoutConfig(fraction=fraction, seed=0, take=take)


def test_holdout_and_list_overrides_are_validated(monkeypatch):
    monkeypatch.setenv("FACEBEHAVIOR_DATA", "/data")
    monkeypatch.setenv("FACEBEHAVIOR_CACHE", "/data/cache")
    with pytest.raises(ConfigError, match="holdout.take"):
        load_recipe(RECIPES[0].parent / "arl_bp4d.yaml", ["data.val.0.holdout.take=test"])
    with pytest.raises(ConfigError, match="not an index"):
        load_recipe(RECIPES[0].parent / "arl_bp4d.yaml", ["data.val.3.split=x"])
    data = {"a": [{"b": 1}]}
    apply_override(data, "a.0.b=2")
    assert data == {"a": [{"b": 2}]}

"""SEMAINE (FERA 2015 release, ELAN AU annotations) and CFEE (Du et al.'s 22 categories) adapters on
fixture trees written in their layouts, with labels checked against hand-computed frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facebehavior.data.datasets import DatasetNotFoundError, LabelFormatError, create_dataset

# ------------------------------------------------------------------------------------------ SEMAINE


def eaf(slots: dict[str, float | None], tiers: dict[str, list[tuple[str, str]]]) -> str:
    """An ELAN file: time slots (ms; None = unaligned) and tiers of (ref1, ref2) annotations."""
    ts = "".join(
        f'<TIME_SLOT TIME_SLOT_ID="{k}"' + ("" if v is None else f' TIME_VALUE="{int(v)}"') + "/>"
        for k, v in slots.items()
    )
    body = ""
    for tier_id, anns in tiers.items():
        body += f'<TIER LINGUISTIC_TYPE_REF="default" TIER_ID="{tier_id}">'
        for i, (a, b) in enumerate(anns):
            body += (
                f'<ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="{tier_id}{i}" TIME_SLOT_REF1="{a}" '
                f'TIME_SLOT_REF2="{b}"><ANNOTATION_VALUE>1</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>'
            )
        body += "</TIER>"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ANNOTATION_DOCUMENT AUTHOR="" FORMAT="2.6" VERSION="2.6">'
        f'<HEADER MEDIA_FILE="" TIME_UNITS="milliseconds"/><TIME_ORDER>{ts}</TIME_ORDER>{body}'
        "</ANNOTATION_DOCUMENT>"
    )


SLOTS = {"ts1": 40, "ts2": 80, "ts3": 100, "ts4": 139, "ts5": None, "ts6": 300, "ts7": 0}
TIERS = {
    "Speech": [("ts7", "ts6")],
    "AU2": [("ts3", "ts4")],  # 100–139 ms → frames 5..6 at 50 frames/s
    "AU2 Intensity": [("ts7", "ts6")],  # an intensity tier: ignored
    "AU45": [("ts1", "ts2"), ("ts6", "ts6")],  # 40–80 ms → frames 2..4; 300 ms → frame 15
    "AU17": [],  # annotated, never active
}


def semaine_tree(root: Path, video: bool = False) -> Path:
    sessions = root / "SEMAINE-Sessions"
    for rec, segment in (("rec1", "0 10"), ("rec9", "3 40"), ("rec99", None)):
        (sessions / rec).mkdir(parents=True)
        (sessions / rec / f"{rec}_session.eaf").write_text(eaf(SLOTS, TIERS))
        if segment is not None:
            (sessions / f"{rec}.txt").write_text(segment + "\n")
        if not video:
            (sessions / rec / f"{rec} User.avi").write_bytes(b"")
    return root


def test_semaine_elan_labels_by_frame(tmp_path):
    root = semaine_tree(tmp_path / "SEMAINE")
    ds = create_dataset("semaine", root)
    t = ds.load("train")
    assert t.aus == (2, 12, 17, 25, 45)
    assert t.frame.tolist() == list(range(10)) and set(t.video) == {"rec1"} and set(t.subject) == {""}
    assert t.image[0] == "SEMAINE-Sessions/rec1/rec1 User.avi"
    j = {a: t.aus.index(a) for a in t.aus}
    assert np.flatnonzero(t.au_occurrence[:, j[45]]).tolist() == [2, 3, 4]
    assert np.flatnonzero(t.au_occurrence[:, j[2]]).tolist() == [5, 6]
    assert t.au_mask[:, [j[2], j[17], j[45]]].all() and t.au_occurrence[:, j[17]].sum() == 0
    assert not t.au_mask[:, j[12]].any() and not t.au_mask[:, j[25]].any()  # no tier: unknown
    # The dev segment 3..39 is clipped to the annotated span (last slot 300 ms = frame 15).
    dev = ds.load("dev")
    assert dev.frame.tolist() == list(range(3, 16)) and set(dev.video) == {"rec9"}
    assert np.flatnonzero(dev.au_occurrence[:, j[45]]).tolist() == [0, 1, 12]  # frames 3, 4, 15
    # Without a segment file: frames 1 … last, as the organisers' reader; "all" has every session.
    everything = ds.load("all")
    assert set(everything.video) == {"rec1", "rec9", "rec99"}
    assert everything.frame[everything.video == "rec99"].tolist() == list(range(1, 16))
    only45 = create_dataset("semaine", root / "SEMAINE-Sessions", aus=[45]).load("train")
    assert only45.aus == (45,) and only45.au_occurrence[:, 0].sum() == 3


def test_semaine_bad_input_names_the_file(tmp_path):
    root = semaine_tree(tmp_path / "SEMAINE")
    with pytest.raises(ValueError, match="choose from"):
        create_dataset("semaine", root, aus=[28])
    seg = root / "SEMAINE-Sessions" / "rec1.txt"
    seg.write_text("10 5\n")
    with pytest.raises(LabelFormatError, match="start < end") as e:
        create_dataset("semaine", root).load("train")
    assert e.value.path == seg and e.value.line == 1
    seg.write_text("0 10\n")
    bad = root / "SEMAINE-Sessions" / "rec1" / "rec1_session.eaf"
    bad.write_text(eaf(SLOTS, {"AU45": [("ts1", "ts5")]}))  # ts5 has no time value
    with pytest.raises(LabelFormatError, match="unaligned time slot") as e:
        create_dataset("semaine", root).load("train")
    assert e.value.path == bad
    bad.write_text("<ANNOTATION_DOCUMENT><TIME_ORDER>")
    with pytest.raises(LabelFormatError, match="not a readable ELAN file"):
        create_dataset("semaine", root).load("train")
    bad.write_text(eaf(SLOTS, TIERS))
    (root / "SEMAINE-Sessions" / "rec1" / "rec1 Operator.avi").write_bytes(b"")
    with pytest.raises(DatasetNotFoundError, match="video=") as e:
        create_dataset("semaine", root).load("train")
    assert create_dataset("semaine", root, video="User").load("train").image[0].endswith("rec1 User.avi")


def test_semaine_frames_are_decoded_from_the_session_video(tmp_path):
    av = pytest.importorskip("av")
    root = semaine_tree(tmp_path / "SEMAINE", video=True)
    path = root / "SEMAINE-Sessions" / "rec1" / "rec1.avi"
    with av.open(str(path), "w") as c:
        st = c.add_stream("mpeg4", rate=50)
        st.width = st.height = 32
        st.pix_fmt = "yuv420p"
        for i in range(12):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 20 * i, np.uint8), format="rgb24")
            for pkt in st.encode(frame):
                c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)
    ds = create_dataset("semaine", root)
    t = ds.load("train")
    got = ds.read_images(t, [0, 5, 9])
    assert [int(round(g.mean() / 20)) for g in got] == [0, 5, 9]


# --------------------------------------------------------------------------------------------- CFEE


def test_cfee_categories_from_file_names(tmp_path):
    from PIL import Image

    from facebehavior.data.datasets.cfee import CFEE_CATEGORIES_22
    from facebehavior.relatedness import RAFDB_COMPOUND_11
    from facebehavior.schema import EXPRESSIONS_8

    root = tmp_path / "CFEE"
    names = {"001/001_1.jpg": 0, "001/001_08.jpg": 7, "001/001_22.jpg": 21, "002/002_Sadly-Disgusted.png": 12,
             "002/002_happy.jpg": 1, "002/002_fearfully_disgusted.jpg": 15}  # fmt: skip
    for rel in names:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 24), (90, 90, 90)).save(root / rel)
    t = create_dataset("cfee", root).load("all")
    by_image = dict(zip(t.image, range(len(t)), strict=True))
    assert set(by_image) == set(names)
    for rel, cat in names.items():
        i = by_image[rel]
        assert t.extra["category"][i] == cat
        assert t.subject[i] == rel[:3]
        name = CFEE_CATEGORIES_22[cat]
        assert t.expression[i] == (EXPRESSIONS_8.index(name) if name in EXPRESSIONS_8 else -1)
        want = RAFDB_COMPOUND_11.index(name) if name in RAFDB_COMPOUND_11 else -1
        assert t.extra["compound"][i] == want
    assert t.expression[by_image["001/001_1.jpg"]] == EXPRESSIONS_8.index("neutral")
    assert t.extra["compound"][by_image["001/001_08.jpg"]] == RAFDB_COMPOUND_11.index("happily_surprised")
    assert t.extra["compound"][by_image["001/001_22.jpg"]] == -1  # awed: not a RAF-DB class
    assert create_dataset("cfee", root).read_images(t, [0])[0].shape == (24, 20, 3)
    (root / "003").mkdir()
    Image.new("RGB", (8, 8)).save(root / "003" / "003_23.jpg")
    with pytest.raises(LabelFormatError, match="category 1-22") as e:
        create_dataset("cfee", root).load("all")
    assert e.value.path.name == "003_23.jpg"
    with pytest.raises(KeyError, match="valid"):
        create_dataset("cfee", root).load("train")


def test_fatauva_recipe_takes_au45_from_semaine(tmp_path, monkeypatch):
    from facebehavior.models import create_model
    from facebehavior.train.config import load_recipe
    from facebehavior.train.data import LabelledImages, SetData

    pytest.importorskip("lightning")
    from facebehavior.train.module import model_aus

    monkeypatch.setenv("FACEBEHAVIOR_DATA", "/data")
    monkeypatch.setenv("FACEBEHAVIOR_CACHE", "/data/cache")
    r = load_recipe(Path(__file__).parent.parent / "recipes" / "fatauva_net.yaml")
    parts = {p.dataset: p for p in r.data.sets["au"].parts}
    assert parts["semaine"].split == "train" and parts["semaine"].holdout.take == "rest"
    assert {p.dataset for p in r.data.val[0].parts} == {"bp4d", "semaine"}
    # FATAUVA-Net's AU45 unit gets labels from the SEMAINE rows (BP4D has no AU45 column).
    aus = model_aus(create_model("fatauva_net_tiny"))
    assert 45 in aus
    ds = create_dataset("semaine", semaine_tree(tmp_path / "SEMAINE"))
    li = LabelledImages(SetData(ds, ds.load("train")), aus, channels=3, load_size=32)
    k = aus.index(45)
    assert li.au_mask[:, k].all() and np.flatnonzero(li.au[:, k]).tolist() == [2, 3, 4]

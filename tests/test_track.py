"""Face tracking: stable ids through crossings, re-identification after an exit, new faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facebehavior.face.align import ARCFACE_112
from facebehavior.face.track import FaceTracker, appearance_descriptors
from facebehavior.types import Detections

FIXTURES = Path(__file__).resolve().parent / "fixtures"
H, W, S = 480, 640, 120  # frame size, face box side

# Tight face boxes of three different people in tests/fixtures/photos/group6.jpg (960 px wide).
FACE_BOXES = [(128, 246, 234, 352), (740, 128, 846, 234), (335, 167, 431, 263)]


@pytest.fixture(scope="module")
def faces() -> list[Image.Image]:
    im = Image.open(FIXTURES / "photos" / "group6.jpg").convert("RGB")
    return [im.crop(b).resize((S, S), Image.Resampling.BILINEAR) for b in FACE_BOXES]


def _background() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(90, 140, (H, W, 3), dtype=np.uint8))


def _keypoints(x: float, y: float) -> np.ndarray:
    # The ArcFace template spans the tight face box roughly like a 112 px crop.
    return ARCFACE_112 / 112.0 * S + np.array([x, y])


def render(scene: list[dict[int, tuple[float, float]]], faces) -> tuple[np.ndarray, Detections, np.ndarray]:
    """Frames with faces pasted at top-left corners; returns images, detections, true identities."""
    bg = _background()
    images, fi, boxes, kps, truth = [], [], [], [], []
    for k, placed in enumerate(scene):
        fr = bg.copy()
        for who, (x, y) in placed.items():  # later entries are drawn on top
            fr.paste(faces[who], (int(round(x)), int(round(y))))
            fi.append(k)
            boxes.append([x, y, x + S, y + S])
            kps.append(_keypoints(x, y))
            truth.append(who)
        images.append(np.asarray(fr))
    dets = Detections(
        frame_index=np.array(fi, np.int64),
        boxes=np.array(boxes, np.float32).reshape(-1, 4),
        scores=np.ones(len(fi), np.float32),
        keypoints=np.array(kps, np.float32).reshape(-1, 5, 2),
    )
    return np.stack(images), dets, np.array(truth)


def track_in_chunks(tracker: FaceTracker, images, dets, chunk: int, use_images: bool = True) -> np.ndarray:
    ids = np.full(len(dets), -1, np.int64)
    for s in range(0, len(images), chunk):
        sel = (dets.frame_index >= s) & (dets.frame_index < s + chunk)
        sub = _subset(dets, sel, s)
        n = min(chunk, len(images) - s)
        out = tracker.update(sub, images[s : s + n] if use_images else None, num_frames=n)
        ids[sel] = out.face_id
    return ids


def _scene() -> list[dict[int, tuple[float, float]]]:
    scene = []
    for k in range(40):  # 0 and 1 cross: 0 moves right, 1 moves left, boxes overlapping by half
        scene.append({0: (40 + 10 * k, 120.0), 1: (440 - 10 * k, 180.0)})
    for k in range(20):  # 0 has left the frame for 20 frames; 1 drifts
        scene.append({1: (50 + 2 * k, 180.0)})
    for k in range(20):  # 0 re-enters elsewhere
        scene.append({1: (90 + 2 * k, 180.0), 0: (400 - 3 * k, 300.0)})
    for k in range(20):  # a third person appears
        scene.append({1: (130.0, 180.0 - k), 0: (340.0, 300.0), 2: (470.0, 40 + 2 * k)})
    return scene


def test_identities_survive_crossing_exit_and_newcomer(faces):
    images, dets, truth = render(_scene(), faces)
    tracker = FaceTracker()
    ids = track_in_chunks(tracker, images, dets, chunk=16)
    # one id per person, the same across the whole video, distinct between people
    per_person = {w: set(ids[truth == w].tolist()) for w in (0, 1, 2)}
    assert all(len(v) == 1 for v in per_person.values()), per_person
    assert len({next(iter(v)) for v in per_person.values()}) == 3
    assert per_person[0] == {0} and per_person[1] == {1} and per_person[2] == {2}
    assert tracker.num_identities == 3


def test_chunking_does_not_change_ids(faces):
    images, dets, _ = render(_scene(), faces)
    a = track_in_chunks(FaceTracker(), images, dets, chunk=3)
    b = track_in_chunks(FaceTracker(), images, dets, chunk=len(images))
    np.testing.assert_array_equal(a, b)


def test_motion_only_keeps_ids_but_cannot_reidentify(faces):
    images, dets, truth = render(_scene(), faces)
    ids = track_in_chunks(FaceTracker(), images, dets, chunk=16, use_images=False)
    # crossing handled by motion prediction alone
    first = truth < 2
    first &= dets.frame_index < 40
    assert set(ids[first & (truth == 0)].tolist()) == {0}
    assert set(ids[first & (truth == 1)].tolist()) == {1}
    # without appearance the returning face is a new identity
    assert set(ids[(truth == 0) & (dets.frame_index >= 60)].tolist()) == {2}


def test_reset_restarts_ids_and_gap_frames_age_tracks(faces):
    images, dets, _ = render(_scene()[:5], faces)
    tr = FaceTracker(reid_max_age=30)
    first = tr.update(dets, images)
    assert sorted(set(first.face_id.tolist())) == [0, 1]
    tr.reset()
    assert tr.update(dets, images).face_id.tolist() == first.face_id.tolist()
    # 40 empty frames exceed reid_max_age: the same faces come back as new identities
    tr.update(Detections.empty(), num_frames=40)
    again = tr.update(dets, images).face_id
    assert set(again.tolist()) == {2, 3}


def test_descriptor_separates_people_and_matches_same_person(faces):
    images, dets, truth = render(_scene()[60:61] + _scene()[90:91], faces)
    d = appearance_descriptors(images, dets)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)
    sim = d @ d.T
    same = truth[:, None] == truth[None]
    assert sim[same].min() > 0.9
    assert sim[~same].max() < 0.75


def test_bad_input(faces):
    images, dets, _ = render(_scene()[:2], faces)
    with pytest.raises(ValueError, match="frame"):
        FaceTracker().update(dets, images[:1])
    with pytest.raises(ValueError, match="descriptors"):
        FaceTracker().update(dets, descriptors=np.zeros((1, 8), np.float32))


def _subset(dets: Detections, sel: np.ndarray, first_frame: int = 0, keypoints=None) -> Detections:
    return Detections(
        frame_index=dets.frame_index[sel] - first_frame,
        boxes=dets.boxes[sel],
        scores=dets.scores[sel],
        keypoints=dets.keypoints[sel] if keypoints is None else keypoints,
    )


def test_degenerate_keypoints_fall_back_to_motion(faces):
    images, dets, _ = render(_scene()[:6], faces)
    early = dets.frame_index < 3
    tr = FaceTracker()
    first = tr.update(_subset(dets, early), images[:3])
    kp = dets.keypoints[~early].copy()
    kp[0] = 7.0  # a broken detector output: all five points identical
    late = _subset(dets, ~early, 3, kp)
    desc = appearance_descriptors(images[3:], late)
    assert np.isnan(desc[0]).all() and np.isfinite(desc[1:]).all()
    np.testing.assert_array_equal(tr.update(late, images[3:]).face_id, first.face_id)


def _edge_scene() -> list[dict[int, tuple[float, float]]]:
    """Face 1 slides out through the right edge, stays away 20 frames, slides back in."""
    scene: list[dict[int, tuple[float, float]]] = [{0: (100.0, 150.0), 1: (400.0, 150.0)} for _ in range(10)]
    xs = [400.0 + 12 * k for k in range(20)] + [None] * 20 + [640.0 - 12 * k for k in range(1, 25)]
    for x in xs:
        placed = {0: (100.0, 150.0)}
        if x is not None and x <= W - 0.3 * S:  # a detector finds faces at least 30 % visible
            placed[1] = (x, 150.0)
        scene.append(placed)
    return scene


def test_face_reentering_through_the_edge_gets_its_id_back_while_still_cut_off(faces):
    images, dets, truth = render(_edge_scene(), faces)
    ids = track_in_chunks(FaceTracker(), images, dets, chunk=16)
    back = (truth == 1) & (dets.frame_index >= 50)
    visible = (W - dets.boxes[:, 0]) / S
    # once 60 % of the face box is in view the old identity is back, even though the face is cut
    assert set(ids[back & (visible >= 0.6)].tolist()) == {1}
    assert (visible[back & (visible >= 0.6)] < 1).any()
    assert set(ids[truth == 0].tolist()) == {0}


def test_strong_overlap_keeps_id_through_an_abrupt_appearance_change(faces):
    # e.g. a sudden lighting change: the box barely moves, the thumbnail changes completely
    from PIL import ImageOps

    images_a, dets_a, _ = render([{0: (200.0 + k, 150.0)} for k in range(10)], faces)
    inverted = [ImageOps.invert(faces[0])]
    images_b, dets_b, _ = render([{0: (210.0 + k, 150.0)} for k in range(10)], inverted)
    sim = (
        appearance_descriptors(images_a[-1:], _subset(dets_a, dets_a.frame_index == 9, 9))[0]
        @ (appearance_descriptors(images_b[:1], _subset(dets_b, dets_b.frame_index == 0))[0])
    )
    assert sim < 0.3  # the appearance gate alone would refuse this link
    tr = FaceTracker()
    assert set(tr.update(dets_a, images_a).face_id.tolist()) == {0}
    assert set(tr.update(dets_b, images_b).face_id.tolist()) == {0}
    tr_strict = FaceTracker(trust_iou=1.01)  # without trusting the overlap it becomes a new face
    tr_strict.update(dets_a, images_a)
    assert set(tr_strict.update(dets_b, images_b).face_id.tolist()) == {1}


def _exit_and_return(gap: int) -> list[dict[int, tuple[float, float]]]:
    """Person 0 is seen for 30 frames, leaves for ``gap`` frames, and comes back elsewhere."""
    scene = [{0: (100.0 + 2 * k, 120.0), 1: (420.0, 200.0 + k)} for k in range(30)]
    scene += [{1: (420.0, 230.0 + k * 0.5)} for k in range(gap)]
    scene += [{1: (420.0, 230.0 + gap * 0.5), 0: (150.0, 330.0)} for _ in range(6)]
    return scene


@pytest.mark.parametrize("gap, same", [(30, True), (60, False)])
def test_exit_and_return_is_the_same_at_any_frame_stride(faces, gap, same):
    # reid_max_age = 45 frames of video: a face away for 30 frames gets its id back, one away for
    # 60 frames is a new person — whether every frame, every 3rd or every 5th is analysed.
    images, dets, truth = render(_exit_and_return(gap), faces)
    for step in (1, 3, 5):
        keep = np.arange(0, len(images), step)
        sel = np.isin(dets.frame_index, keep)
        sub = _subset(dets, sel, 0)
        sub = Detections(
            frame_index=sub.frame_index // step,
            boxes=sub.boxes,
            scores=sub.scores,
            keypoints=sub.keypoints,
        )
        tracker = FaceTracker(reid_max_age=45, frame_step=step)
        ids = track_in_chunks(tracker, images[keep], sub, chunk=8)
        who, frame = truth[sel], dets.frame_index[sel]
        before = set(ids[(who == 0) & (frame < 30)].tolist())
        after = set(ids[(who == 0) & (frame >= 30)].tolist())
        assert len(before) == 1 and len(after) == 1, (step, before, after)
        assert (before == after) is same, (step, before, after)
        assert set(ids[who == 1].tolist()) == {1}, step


def test_state_dict_continues_exactly_and_is_a_copy(faces):
    images, dets, _ = render(_scene(), faces)
    whole = FaceTracker()
    ids_whole = track_in_chunks(whole, images, dets, chunk=len(images))
    cut = 50  # person 0 is away: its track lives only in the re-identification gallery
    first = FaceTracker()
    early = dets.frame_index < cut
    ids_first = first.update(_subset(dets, early, 0), images[:cut]).face_id
    state = first.state_dict()
    second = FaceTracker()
    second.load_state_dict(state)
    for tr in state["tracks"]:  # the loaded tracker owns its arrays
        tr["box"][:] = -1.0
        if tr["thumb"] is not None:
            tr["thumb"][:] = 0.0
    ids_second = second.update(_subset(dets, ~early, cut), images[cut:]).face_id
    np.testing.assert_array_equal(np.concatenate([ids_first, ids_second]), ids_whole)
    a, b = whole.state_dict(), second.state_dict()
    assert (a["next_id"], a["frame"]) == (b["next_id"], b["frame"]) == (3, len(images) - 1)
    for ta, tb in zip(a["tracks"], b["tracks"], strict=True):
        for k, v in ta.items():
            np.testing.assert_array_equal(v, tb[k])
    with pytest.raises(ValueError, match="next_id"):
        FaceTracker().load_state_dict({"frame": 0, "tracks": []})
    bad = first.state_dict()
    del bad["tracks"][0]["thumb"]
    with pytest.raises(ValueError, match="track 0"):
        FaceTracker().load_state_dict(bad)

"""Temporal median smoothing (AUNets' post-processing) against scipy and hand-worked cases."""

import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import median_filter

from facebehavior.temporal.smoothing import median_filter_1d, median_smooth

rng = np.random.default_rng(0)


@pytest.mark.parametrize("window", [1, 3, 7, 11])
def test_interior_matches_scipy(window):
    x = rng.random((50, 3))
    ours = median_filter_1d(x, window)
    ref = median_filter(x, size=(window, 1), mode="nearest")
    h = window // 2
    np.testing.assert_allclose(ours[h : len(x) - h], ref[h : len(x) - h])


def test_edges_shrink_symmetrically_by_hand():
    x = np.array([5.0, 1.0, 9.0, 2.0, 8.0, 3.0])
    # window 5: row 0 -> median(5) ; row 1 -> median(5, 1, 9) ; rows 2-3 full ; row 4 -> median(2, 8, 3)
    np.testing.assert_allclose(median_filter_1d(x, 5), [5.0, 5.0, 5.0, 3.0, 3.0, 3.0])
    # an isolated spike disappears, a step survives
    spike = np.array([0, 0, 0, 1, 0, 0, 0.0])
    np.testing.assert_allclose(median_filter_1d(spike, 3), np.zeros(7))
    step = np.array([0, 0, 0, 1, 1, 1.0])
    np.testing.assert_allclose(median_filter_1d(step, 3), step)
    # shorter than the window, NaN ignored, bad windows refused
    np.testing.assert_allclose(median_filter_1d(np.array([3.0, 1.0]), 7), [3.0, 1.0])
    np.testing.assert_allclose(median_filter_1d(np.array([1.0, np.nan, 3.0]), 3), [1.0, 2.0, 3.0])
    for bad in (0, 4):
        with pytest.raises(ValueError, match="odd"):
            median_filter_1d(spike, bad)


def _table():
    rows = []
    for face, base in ((0, 0.2), (1, 0.8)):
        for f in range(9):
            p = base + (0.5 if (face == 0 and f == 4) else 0.0)  # one-frame blip on face 0
            rows.append(
                {
                    "source": "v.mp4",
                    "frame": f,
                    "face_id": face,
                    "AU12_prob": p,
                    "expr_neutral": 1 - p,
                    "expr_happiness": p,
                    "expression": "x",
                    "valence": p,
                }
            )
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # shuffled: order must not matter
    return df.astype({"AU12_prob": np.float32})


def test_tracks_are_smoothed_separately_and_labels_follow():
    df = _table()
    out = median_smooth(df, 3)
    assert list(out.index) == list(df.index) and out["AU12_prob"].dtype == np.float32
    f0 = out[out.face_id == 0].sort_values("frame")
    np.testing.assert_allclose(f0["AU12_prob"], 0.2, rtol=1e-6)  # the blip is gone, face 1 did not leak in
    f1 = out[out.face_id == 1]
    np.testing.assert_allclose(f1["AU12_prob"], 0.8, rtol=1e-6)
    assert (f0["expression"] == "neutral").all() and (f1["expression"] == "happiness").all()
    added = median_smooth(df, 3, suffix="_smooth")
    np.testing.assert_array_equal(added["AU12_prob"], df["AU12_prob"])
    assert "AU12_prob_smooth" in added and (added["expression"] == "x").all()


def test_gaps_split_tracks_and_errors_name_columns():
    df = pd.DataFrame({"source": "v", "face_id": 0, "frame": [0, 1, 2, 50, 51, 52],
                       "valence": [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]})  # fmt: skip
    out = median_smooth(df, 5)
    np.testing.assert_allclose(out["valence"], df["valence"])  # no mixing across the 48-frame gap
    with pytest.raises(KeyError, match="face_id"):
        median_smooth(df.drop(columns="face_id"))
    with pytest.raises(KeyError, match="arousal"):
        median_smooth(df, columns=["arousal"])


@pytest.mark.parametrize("ext", [".csv", ".jsonl", ".parquet"])
def test_cli_smooth_writes_a_sibling_file(tmp_path, ext):
    import argparse

    from facebehavior.commands.analyze import _smooth, smoothed_path
    from facebehavior.io.writers import read_results, write_results

    out = write_results(_table(), tmp_path / f"out{ext}")
    _smooth(argparse.Namespace(output=str(out), smooth=3))
    assert smoothed_path(out).name == f"out.smoothed{ext}"
    sm = read_results(smoothed_path(out))
    np.testing.assert_allclose(sm[sm.face_id == 0]["AU12_prob"], 0.2, rtol=1e-6)
    # the original file is left as it was (float32 values round-trip through text formats at 1e-7)
    np.testing.assert_allclose(read_results(out)["AU12_prob"], _table()["AU12_prob"], rtol=1e-6)

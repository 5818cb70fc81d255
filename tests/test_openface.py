"""OpenFace 2.0-compatible table (facebehavior.io.openface).

The header fixture ``tests/fixtures/openface2_featureextraction_header.csv`` was written from OpenFace
2's documentation, not from this package's code: the column list of ``RecorderCSV::Open``
(OpenFace ``lib/local/Utilities/src/RecorderCSV.cpp``, every output on, sequence mode) with the AU
lists of the wiki's Output Format page (see ``tests/fixtures/openface2_featureextraction_header.md``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facebehavior.io.openface import openface_columns, to_openface
from facebehavior.schema import au_column, face_columns, gaze_columns, landmark68_columns

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "openface2_featureextraction_header.csv"


def _canonical_rows() -> pd.DataFrame:
    """Four rows as the analyser writes them: three faces of a video and one frame without a face."""
    rows = {c: [np.nan] * 4 for c in face_columns()}
    df = pd.DataFrame(rows)
    df["source"] = "clip.mp4"
    df["frame"] = [0, 1, 2, 3]
    df["timestamp"] = [0.0, 0.04, 0.08, 0.12]
    df["face_id"] = [0, 0, 0, 0]
    df["det_score"] = [0.99, 0.95, np.nan, 0.9]
    df["success"] = [1, 1, 0, 1]
    df["confidence"] = [0.98, 0.93, 0.0, 0.88]
    df["pose_pitch"] = [10.0, -20.0, np.nan, 0.0]
    df["pose_yaw"] = [90.0, 0.0, np.nan, -45.0]
    df["pose_roll"] = [0.0, 180.0, np.nan, 5.0]
    df[au_column(12, "prob")] = [0.5, 0.4999, np.nan, 0.97]
    df[au_column(1, "prob")] = [0.1, 0.2, np.nan, 0.6]
    df[au_column(12, "intensity")] = [2.5, 0.0, np.nan, 6.2]  # 6.2: out of range, must be clipped
    df["AU06_intensity_geom"] = [1.0, 0.5, np.nan, 3.0]
    more = {name: [0.1 * k, 0.0, np.nan, -0.1] for k, name in enumerate(gaze_columns())}
    more |= {
        name: [float(k), float(k) + 1, np.nan, float(k) + 2] for k, name in enumerate(landmark68_columns())
    }
    return pd.concat([df, pd.DataFrame(more)], axis=1)


def test_header_matches_openface2_documentation():
    header = FIXTURE.read_text().strip().split(",")
    assert len(header) == 714 and len(set(header)) == 714
    assert openface_columns() == header
    assert list(to_openface(_canonical_rows()).columns) == header


def test_values_units_and_conventions():
    of = to_openface(_canonical_rows())
    assert of["frame"].tolist() == [1, 2, 3, 4]  # OpenFace counts frames from 1
    assert of["success"].tolist() == [1, 1, 0, 1]
    np.testing.assert_allclose(of["confidence"], [0.98, 0.93, 0.0, 0.88])
    np.testing.assert_allclose(of["pose_Rx"], [np.pi / 18, -np.pi / 9, np.nan, 0.0])
    np.testing.assert_allclose(of["pose_Ry"], [np.pi / 2, 0.0, np.nan, -np.pi / 4])
    np.testing.assert_allclose(of["pose_Rz"], [0.0, np.pi, np.nan, np.deg2rad(5.0)])
    # Presence: probability >= 0.5 is 1 (0.5 itself included), NaN without a face.
    np.testing.assert_array_equal(of["AU12_c"], [1.0, 0.0, np.nan, 1.0])
    np.testing.assert_array_equal(of["AU01_c"], [0.0, 0.0, np.nan, 1.0])
    # Intensity from the model's AU12_intensity (clipped to 5), geometric AU06 as fallback, else NaN.
    np.testing.assert_allclose(of["AU12_r"], [2.5, 0.0, np.nan, 5.0])
    np.testing.assert_allclose(of["AU06_r"], [1.0, 0.5, np.nan, 3.0])
    assert of["AU01_r"].isna().all() and of["AU14_c"].isna().all() and of["AU28_c"].isna().all()
    assert of[[c for c in of.columns if c.startswith("p_")]].isna().all().all()
    np.testing.assert_allclose(of["x_5"], [5.0, 6.0, np.nan, 7.0])
    np.testing.assert_allclose(of["gaze_1_x"], [0.3, 0.0, np.nan, -0.1])
    assert of["eye_lmk_X_0"].isna().all() and of["pose_Tz"].isna().all()  # not in the input: NaN


def test_openface_only_script_runs_on_output():
    """What an OpenFace user's script does, by OpenFace names only."""
    of = to_openface(_canonical_rows())
    ok = of[of["success"] == 1]
    smiling_share = (ok["AU12_c"] == 1).mean()
    mean_au12 = ok["AU12_r"].mean()
    head_turn_deg = np.rad2deg(ok["pose_Ry"].abs()).max()
    assert smiling_share == pytest.approx(2 / 3)
    assert mean_au12 == pytest.approx((2.5 + 0.0 + 5.0) / 3)
    assert head_turn_deg == pytest.approx(90.0)
    c_cols = [c for c in of.columns if c.endswith("_c") and c.startswith("AU")]
    r_cols = [c for c in of.columns if c.endswith("_r") and c.startswith("AU")]
    assert len(c_cols) == 18 and len(r_cols) == 17
    c = ok[c_cols].to_numpy()
    assert np.all(np.isnan(c) | (c == 0) | (c == 1))
    r = ok[r_cols].to_numpy()
    assert np.all(np.isnan(r) | ((r >= 0) & (r <= 5)))
    # Round trip through CSV keeps the header exactly (OpenFace readers index by name).
    text = of.to_csv(index=False)
    assert text.splitlines()[0] == FIXTURE.read_text().strip()


def test_several_sources_and_extras():
    df = pd.concat([_canonical_rows(), _canonical_rows().assign(source="b.mp4")], ignore_index=True)
    with pytest.raises(ValueError, match="sources"):
        to_openface(df)
    of = to_openface(df, extra_columns=("source",))
    assert list(of.columns[:714]) == openface_columns() and of.columns[-1] == "source"
    assert of["source"].tolist() == ["clip.mp4"] * 4 + ["b.mp4"] * 4


def test_bad_input_is_explained():
    with pytest.raises(TypeError, match="DataFrame"):
        to_openface({"frame": [0]})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'frame'"):
        to_openface(pd.DataFrame({"face_id": [0]}))
    with pytest.raises(ValueError, match="extra_columns"):
        to_openface(_canonical_rows(), extra_columns=("nope",))


def test_minimal_rows_without_optional_columns():
    """A faces-only table (``--model none``): success from det_score, affect columns NaN, header exact."""
    df = pd.DataFrame({"frame": [0, 5], "face_id": [0, 1], "det_score": [0.9, 0.8], "timestamp": [0.0, 0.2]})
    of = to_openface(df)
    assert list(of.columns) == openface_columns()
    assert of["success"].tolist() == [1, 1] and of["frame"].tolist() == [1, 6]
    np.testing.assert_allclose(of["confidence"], [0.9, 0.8])
    assert of["AU12_c"].isna().all() and of["gaze_angle_x"].isna().all()

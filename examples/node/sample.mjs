// Seeded annealed Langevin sampling with an exported ncsn-tf model, in Node.js.
//
//   npm install --ignore-scripts          (keeps the CPU binaries shipped in the package)
//   node sample.mjs EXPORT_DIR [--seeds 0,1,2] [--steps-per-level T] [--epsilon E] [--denoise] [--json]
//
// EXPORT_DIR is an export folder (manifest.json + onnx/sample.onnx). The whole sampler
// (every noise level, every Langevin step, the seeded noise) runs inside one ONNX call;
// the same seeds give the same images as Python onnxruntime and TensorFlow.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ort from "onnxruntime-node";

function parseArgs(argv) {
  const options = { seeds: [0, 1, 2, 3], stepsPerLevel: null, epsilon: null, denoise: null, json: false };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--seeds") options.seeds = argv[++i].split(",").map((s) => Number.parseInt(s, 10));
    else if (arg === "--steps-per-level") options.stepsPerLevel = Number.parseInt(argv[++i], 10);
    else if (arg === "--epsilon") options.epsilon = Number.parseFloat(argv[++i]);
    else if (arg === "--denoise") options.denoise = true;
    else if (arg === "--json") options.json = true;
    else rest.push(arg);
  }
  if (rest.length !== 1) throw new Error("usage: node sample.mjs EXPORT_DIR [--seeds 0,1,2] [--steps-per-level T] [--epsilon E] [--denoise] [--json]");
  if (options.seeds.some((s) => !Number.isInteger(s) || s < -(2 ** 31) || s >= 2 ** 31)) throw new Error("seeds must be int32 integers");
  return { exportDir: rest[0], ...options };
}

// One character per pixel, darkest to brightest (values clipped to [0, 1] for display only).
function asciiImage(data, offset, height, width) {
  const ramp = " .:-=+*#%@";
  const lines = [];
  for (let y = 0; y < height; y++) {
    let line = "";
    for (let x = 0; x < width; x++) {
      const v = Math.min(1, Math.max(0, data[offset + y * width + x]));
      line += ramp[Math.min(ramp.length - 1, Math.floor(v * ramp.length))].repeat(2);
    }
    lines.push(line);
  }
  return lines.join("\n");
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const manifest = JSON.parse(readFileSync(join(args.exportDir, "manifest.json"), "utf8"));
  if (manifest.format !== "ncsn-tf-export" || manifest.format_version > 2) {
    throw new Error(`${args.exportDir} is not an ncsn-tf export this example reads (format version 1 or 2)`);
  }
  // The defaults chosen at export time: version 2 names its samplers, version 1 had annealed Langevin only.
  const sampler = manifest.format_version >= 2 ? manifest.sampler.settings.annealed_langevin : manifest.sampler;
  const session = await ort.InferenceSession.create(join(args.exportDir, manifest.files.onnx.sample));
  const feeds = {
    seeds: new ort.Tensor("int32", Int32Array.from(args.seeds), [args.seeds.length]), // [B]
    steps_per_level: new ort.Tensor("int32", Int32Array.of(args.stepsPerLevel ?? sampler.steps_per_level), []),
    epsilon: new ort.Tensor("float32", Float32Array.of(args.epsilon ?? sampler.epsilon), []),
    denoise: new ort.Tensor("bool", [args.denoise ?? sampler.denoise], []),
  };
  const { images } = await session.run(feeds); // [B, H, W, C] float32, not clipped
  if (args.json) {
    console.log(JSON.stringify({ dims: images.dims, data: Array.from(images.data) }));
    return;
  }
  const [batch, height, width, channels] = images.dims;
  console.log(`${manifest.name}: ${batch} samples of shape [${images.dims.slice(1)}], seeds ${args.seeds}`);
  if (channels === 1) {
    for (let b = 0; b < batch; b++) console.log(`seed ${args.seeds[b]}:\n${asciiImage(images.data, b * height * width, height, width)}\n`);
  }
}

main().catch((error) => {
  console.error(`sample.mjs: ${error.message}`);
  process.exit(1);
});

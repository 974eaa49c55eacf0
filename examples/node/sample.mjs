// Seeded sampling with an exported ncsn-tf model, in Node.js: any sampler the export holds.
//
//   npm install --ignore-scripts          (keeps the CPU binaries shipped in the package)
//   node sample.mjs EXPORT_DIR [--sampler NAME] [--seeds 0,1,2] [--json]
//        annealed_langevin:   [--steps-per-level T] [--epsilon E] [--denoise]
//        predictor_corrector: [--corrector-steps C] [--snr R]
//        probability_flow:    [--order 1|2]
//
// EXPORT_DIR is an export folder (manifest.json + onnx/). The whole sampler (every noise
// level, every network call, the seeded noise) runs inside one ONNX call; the same seeds
// give the same images as Python onnxruntime and TensorFlow. Settings left out take the
// export's defaults (manifest.sampler.settings); the sampler defaults to manifest.sampler.default.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ort from "onnxruntime-node";

const USAGE =
  "usage: node sample.mjs EXPORT_DIR [--sampler NAME] [--seeds 0,1,2] [--json] [--steps-per-level T] " +
  "[--epsilon E] [--denoise] [--corrector-steps C] [--snr R] [--order 1|2]";
// Every sampler setting a whole-run endpoint takes: its dtype and its range (docs/export.md, "Sampler settings").
const SETTINGS = {
  steps_per_level: { dtype: "int32", check: (v) => Number.isInteger(v) && v >= 1 && v <= 100000, range: "an integer in [1, 100000]" },
  epsilon: { dtype: "float32", check: (v) => Number.isFinite(v) && v > 0 && v <= 1, range: "a number in (0, 1]" },
  denoise: { dtype: "bool", check: (v) => typeof v === "boolean", range: "true or false" },
  corrector_steps: { dtype: "int32", check: (v) => Number.isInteger(v) && v >= 0, range: "an integer >= 0" },
  snr: { dtype: "float32", check: (v) => Number.isFinite(v) && v > 0, range: "a finite number > 0" },
  order: { dtype: "int32", check: (v) => v === 1 || v === 2, range: "1 (Euler) or 2 (Heun)" },
};
const FLAGS = { "--steps-per-level": "steps_per_level", "--epsilon": "epsilon", "--corrector-steps": "corrector_steps", "--snr": "snr", "--order": "order" };

function parseArgs(argv) {
  const options = { seeds: [0, 1, 2, 3], sampler: null, settings: {}, json: false };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--seeds") options.seeds = argv[++i].split(",").map(Number);
    else if (arg === "--sampler") options.sampler = argv[++i];
    else if (arg === "--denoise") options.settings.denoise = true;
    else if (arg === "--json") options.json = true;
    else if (arg in FLAGS) options.settings[FLAGS[arg]] = Number(argv[++i]);
    else if (arg.startsWith("--")) throw new Error(`unknown option ${arg}; ${USAGE}`);
    else rest.push(arg);
  }
  if (rest.length !== 1) throw new Error(USAGE);
  if (options.seeds.some((s) => !Number.isInteger(s) || s < -(2 ** 31) || s >= 2 ** 31)) throw new Error("seeds must be int32 integers");
  return { exportDir: rest[0], ...options };
}

// The whole-run endpoint of a sampler: annealed Langevin's keeps its version-1 name.
function sampleEndpoint(sampler) {
  return sampler === "annealed_langevin" ? "sample" : `${sampler}_sample`;
}

function tensor(name, value) {
  const { dtype } = SETTINGS[name];
  if (dtype === "int32") return new ort.Tensor("int32", Int32Array.of(value), []);
  if (dtype === "float32") return new ort.Tensor("float32", Float32Array.of(value), []);
  return new ort.Tensor("bool", [value], []);
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
  // Version 2 names its samplers and their defaults; version 1 had annealed Langevin only.
  const held = manifest.format_version >= 2 ? manifest.sampler.settings : { annealed_langevin: manifest.sampler };
  const sampler = args.sampler ?? (manifest.format_version >= 2 ? manifest.sampler.default : "annealed_langevin");
  const file = manifest.files.onnx[sampleEndpoint(sampler)];
  if (!(sampler in held) || file === undefined) {
    throw new Error(`${args.exportDir} has no ${sampler} sampler in ONNX; it has: ${Object.keys(held).join(", ")}`);
  }
  const session = await ort.InferenceSession.create(join(args.exportDir, file), { logSeverityLevel: 3 }); // errors only
  const feeds = { seeds: new ort.Tensor("int32", Int32Array.from(args.seeds), [args.seeds.length]) }; // [B]
  for (const name of Object.keys(args.settings)) {
    if (!session.inputNames.includes(name)) throw new Error(`${name} is not a setting of ${sampler}`);
  }
  for (const name of session.inputNames.filter((n) => n !== "seeds")) {
    const value = args.settings[name] ?? held[sampler][name];
    if (!(name in SETTINGS) || !SETTINGS[name].check(value)) throw new Error(`${name} must be ${SETTINGS[name]?.range ?? "known"}, got ${value}`);
    feeds[name] = tensor(name, value);
  }
  const { images } = await session.run(feeds); // [B, H, W, C] float32, not clipped
  if (args.json) {
    console.log(JSON.stringify({ sampler, dims: images.dims, data: Array.from(images.data) }));
    return;
  }
  const [batch, height, width, channels] = images.dims;
  console.log(`${manifest.name}: ${batch} samples of shape [${images.dims.slice(1)}] by ${sampler}, seeds ${args.seeds}`);
  if (channels === 1) {
    for (let b = 0; b < batch; b++) console.log(`seed ${args.seeds[b]}:\n${asciiImage(images.data, b * height * width, height, width)}\n`);
  }
}

main().catch((error) => {
  console.error(`sample.mjs: ${error.message}`);
  process.exit(1);
});

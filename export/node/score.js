#!/usr/bin/env node
// Score benchmark-format bin CSVs with a chromaformer .onnx model, without Python.
//
//   node score.js INPUT.csv[.gz]... --model hybrid.onnx [-o OUT] [--batch-size 1024]
//                 [--threads N] [--quiet]
//
// Reads the marks and bins from the model card (<model stem>.model.json, written beside
// the .onnx by chromaformer-export), or from the .onnx's own metadata_props when there is
// no card. The reader and the scoring loop are ../web/lib/bincsv.mjs, shared with the
// browser page. Writes the same TSV as chromaformer-score (gene_id, probability,
// label), to a temporary file renamed into place only when the whole input was valid.
// The contract it relies on is ../CONTRACT.md.
'use strict';

const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const ort = require('onnxruntime-node');

class InputError extends Error {}

function usage(msg) {
  if (msg) process.stderr.write(`Error: ${msg}\n`);
  process.stderr.write(
    'usage: node score.js INPUT... --model MODEL.onnx [-o OUT] [--batch-size N] ' +
      '[--threads N] [--quiet]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { inputs: [], model: null, output: null, batchSize: 1024, threads: 0, quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--model' || a === '-m') opts.model = value();
    else if (a === '-o' || a === '--output') opts.output = value();
    else if (a === '--batch-size') opts.batchSize = parseInt(value(), 10);
    else if (a === '--threads') opts.threads = parseInt(value(), 10);
    else if (a === '--quiet' || a === '-q') opts.quiet = true;
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else opts.inputs.push(a);
  }
  if (!opts.model) usage('--model is required');
  if (!opts.inputs.length) usage('give at least one input file');
  if (!(opts.batchSize >= 1)) usage('--batch-size must be a positive integer');
  return opts;
}

function readCard(modelPath, lib) {
  const card = modelPath.replace(/\.onnx$/, '') + '.model.json';
  if (fs.existsSync(card)) return lib.layoutFromCard(JSON.parse(fs.readFileSync(card, 'utf8')), card);
  // no card: the .onnx describes itself (metadata_props)
  return lib.layoutFromOnnx(fs.readFileSync(modelPath), modelPath);
}

function defaultOutput(input) {
  const base = input.replace(/\.csv\.gz$|\.csv$|\.gz$/, '');
  return base + '.scores.tsv';
}

function outputNames(inputs) {
  const parts = inputs.map((p) => defaultOutput(p).replace(/\.scores\.tsv$/, '').split(path.sep).filter(Boolean));
  const longest = Math.max(...parts.map((p) => p.length));
  for (let depth = 1; depth <= longest; depth++) {
    const names = parts.map((p) => p.slice(-depth).join('_'));
    if (new Set(names).size === names.length) return names;
  }
  throw new InputError('the same input is named twice');
}

// Decompressed byte chunks of a plain or gzip file.
async function* chunks(file) {
  const fd = fs.openSync(file, 'r');
  const magic = Buffer.alloc(2);
  fs.readSync(fd, magic, 0, 2, 0);
  fs.closeSync(fd);
  const raw = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  if (!(magic[0] === 0x1f && magic[1] === 0x8b)) {
    yield* raw;
    return;
  }
  try {
    yield* raw.pipe(zlib.createGunzip());
  } catch (err) {
    throw new InputError(`${file}: invalid gzip data: ${err.message}`);
  }
}

async function scoreFile(lib, session, layout, input, output, opts) {
  const t0 = process.hrtime.bigint();
  const tmp = path.join(path.dirname(output), `.${path.basename(output)}.${process.pid}.tmp`);
  fs.mkdirSync(path.dirname(output), { recursive: true });
  const out = fs.openSync(tmp, 'w');
  let genes = 0;
  try {
    fs.writeSync(out, lib.TSV_HEADER);
    const batches = lib.readBatches(chunks(input), input, layout, { batchSize: opts.batchSize });
    genes = await lib.scoreBatches(ort, session, layout, batches, (b) => {
      fs.writeSync(out, lib.tsvRows(b.ids, b.probability, b.labels, b.n));
    });
    fs.closeSync(out);
    fs.renameSync(tmp, output);
  } catch (err) {
    try { fs.closeSync(out); } catch (_) { /* already closed */ }
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { genes, seconds };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const lib = await import('../web/lib/bincsv.mjs');
  if (!fs.existsSync(opts.model)) throw new InputError(`${opts.model}: no such model file`);
  const layout = readCard(opts.model, lib);
  const sessionOptions = {};
  if (opts.threads > 0) sessionOptions.intraOpNumThreads = opts.threads;
  const session = await ort.InferenceSession.create(opts.model, sessionOptions);
  if (!session.inputNames.includes('counts') || !session.outputNames.includes('probability')) {
    throw new InputError(`${opts.model}: expected input 'counts' and output 'probability' (see export/CONTRACT.md)`);
  }
  let targets;
  if (!opts.output) targets = opts.inputs.map(defaultOutput);
  else if (opts.inputs.length === 1 && !(fs.existsSync(opts.output) && fs.statSync(opts.output).isDirectory())) {
    targets = [opts.output];
  } else {
    fs.mkdirSync(opts.output, { recursive: true });
    targets = outputNames(opts.inputs).map((n) => path.join(opts.output, `${n}.scores.tsv`));
  }
  for (let i = 0; i < opts.inputs.length; i++) {
    if (!fs.existsSync(opts.inputs[i])) throw new InputError(`${opts.inputs[i]}: no such input file`);
    const { genes, seconds } = await scoreFile(lib, session, layout, opts.inputs[i], targets[i], opts);
    if (!opts.quiet) {
      process.stdout.write(`${opts.inputs[i]}: ${genes} genes in ${seconds.toFixed(2)} s ` +
        `(${Math.round(genes / seconds)} genes/s) -> ${targets[i]}\n`);
    }
  }
}

main().catch((err) => {
  const known = err instanceof InputError || (err && err.name === 'FormatError');
  const msg = known ? err.message : String(err && err.message ? err.message : err);
  process.stderr.write(`Error: ${msg.split('\n')[0]}\n`);
  process.exit(1);
});

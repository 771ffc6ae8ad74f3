#!/usr/bin/env node
// Score benchmark-format bin CSVs with a chromaformer .onnx model, without Python.
//
//   node score.js INPUT.csv[.gz]... --model hybrid.onnx [-o OUT] [--batch-size 1024]
//                 [--threads N] [--quiet]
//
// Reads the model card (<model stem>.model.json, written beside the .onnx by
// chromaformer-export) for the marks and bins, because onnxruntime-node cannot read
// ONNX metadata. Writes the same TSV as chromaformer-score (gene_id, probability,
// label), to a temporary file renamed into place only when the whole input was valid.
// The contract it relies on is ../CONTRACT.md.
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');
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

function readCard(modelPath) {
  const card = modelPath.replace(/\.onnx$/, '') + '.model.json';
  if (!fs.existsSync(card)) {
    throw new InputError(`${card}: no model card beside ${modelPath} (chromaformer-export writes it)`);
  }
  const c = JSON.parse(fs.readFileSync(card, 'utf8'));
  const input = c.schema && c.schema.inputs && c.schema.inputs.counts;
  if (!input || !Array.isArray(input.marks) || !(input.bins > 0)) {
    throw new InputError(`${card}: not a chromaformer model card (schema.inputs.counts.marks/bins missing)`);
  }
  return { marks: input.marks, bins: input.bins, card };
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

// Lines of a plain or gzip file, numbered from 1.
function lines(file) {
  let stream = fs.createReadStream(file);
  const fd = fs.openSync(file, 'r');
  const magic = Buffer.alloc(2);
  fs.readSync(fd, magic, 0, 2, 0);
  fs.closeSync(fd);
  if (magic[0] === 0x1f && magic[1] === 0x8b) stream = stream.pipe(zlib.createGunzip());
  return readline.createInterface({ input: stream, crlfDelay: Infinity });
}

const NUMBER = /^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

async function scoreFile(session, layout, input, output, opts) {
  const { marks, bins } = layout;
  const nMarks = marks.length;
  const fields = 3 + nMarks;
  const per = bins * nMarks;
  const t0 = process.hrtime.bigint();
  const tmp = path.join(path.dirname(output), `.${path.basename(output)}.${process.pid}.tmp`);
  fs.mkdirSync(path.dirname(output), { recursive: true });
  const out = fs.openSync(tmp, 'w');
  let genes = 0;
  try {
    fs.writeSync(out, 'gene_id\tprobability\tlabel\n');
    let batch = new Float32Array(opts.batchSize * per);
    let ids = [];
    let labels = [];
    let gene = null;
    let bin = 0;
    let lineNo = 0;
    const seen = new Set();

    const flush = async () => {
      if (!ids.length) return;
      const n = ids.length;
      const tensor = new ort.Tensor('float32', batch.subarray(0, n * per), [n, bins, nMarks]);
      const res = await session.run({ counts: tensor }, ['probability']);
      const prob = res.probability.data;
      let text = '';
      for (let i = 0; i < n; i++) text += `${ids[i]}\t${prob[i].toPrecision(7)}\t${labels[i]}\n`;
      fs.writeSync(out, text);
      genes += n;
      ids = [];
      labels = [];
    };
    const fail = (what) => {
      throw new InputError(`${input}:${lineNo}: ${what}`);
    };

    for await (const raw of lines(input)) {
      lineNo++;
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (line === '') fail('empty line (expected GeneID,BinID,marks...,Label)');
      const f = line.split(',');
      if (f.length !== fields) {
        fail(`expected ${fields} comma-separated fields (GeneID,BinID,${marks.join(',')},Label) but found ${f.length}`);
      }
      const id = f[0];
      if (id === '') fail('empty GeneID');
      if (id !== gene) {
        if (gene !== null && bin !== bins) fail(`gene ${gene} has ${bin} bins, expected ${bins}`);
        if (seen.has(id)) fail(`gene ${id} appears again after other genes (rows of a gene must be contiguous)`);
        seen.add(id);
        if (ids.length === opts.batchSize) await flush();
        gene = id;
        bin = 0;
        ids.push(id);
        labels.push(null);
      }
      bin++;
      if (bin > bins) fail(`gene ${id} has more than ${bins} bins`);
      if (String(bin) !== f[1] && Number(f[1]) !== bin) fail(`expected BinID ${bin} for gene ${id}, found '${f[1]}'`);
      const base = (ids.length - 1) * per + (bin - 1) * nMarks;
      for (let m = 0; m < nMarks; m++) {
        const s = f[2 + m];
        if (!NUMBER.test(s)) fail(`column ${3 + m} (${marks[m]}): expected a non-negative number, found '${s}'`);
        batch[base + m] = Number(s);
      }
      const label = f[fields - 1];
      if (label !== '0' && label !== '1') fail(`column ${fields} (Label): expected 0 or 1, found '${label}'`);
      const k = ids.length - 1;
      if (labels[k] === null) labels[k] = label;
      else if (labels[k] !== label) fail(`gene ${id}: label ${label} differs from its first bin's ${labels[k]}`);
    }
    if (gene === null) throw new InputError(`${input}: no genes to score`);
    if (bin !== bins) fail(`gene ${gene} has ${bin} bins, expected ${bins}`);
    await flush();
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
  const layout = readCard(opts.model);
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
    const { genes, seconds } = await scoreFile(session, layout, opts.inputs[i], targets[i], opts);
    if (!opts.quiet) {
      process.stdout.write(`${opts.inputs[i]}: ${genes} genes in ${seconds.toFixed(2)} s ` +
        `(${Math.round(genes / seconds)} genes/s) -> ${targets[i]}\n`);
    }
  }
}

main().catch((err) => {
  const msg = err instanceof InputError ? err.message : String(err && err.message ? err.message : err);
  process.stderr.write(`Error: ${msg.split('\n')[0]}\n`);
  process.exit(1);
});

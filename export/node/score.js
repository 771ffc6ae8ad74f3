#!/usr/bin/env node
// Score benchmark-format bin CSVs with a chromaformer .onnx model, without Python.
//
//   node score.js INPUT.csv[.gz]... --model hybrid.onnx [-o OUT] [--batch-size 1024]
//                 [--threads N] [--quiet]
//
// Reads the marks and bins from the model card (<model stem>.model.json, written beside
// the .onnx by chromaformer-export), or from the .onnx's own metadata_props when there is
// no card. The reader (the C++ reader built to WebAssembly, ../web/lib/wasmreader.mjs)
// and the scoring loop (../web/lib/bincsv.mjs) are shared with the browser page. Writes the same TSV as chromaformer-score (gene_id, probability,
// label), to a temporary file renamed into place only when the whole input was valid.
// The contract it relies on is ../CONTRACT.md.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');

class InputError extends Error {}

let ort;
try {
  ort = require('onnxruntime-node');
} catch (err) {
  if (err.code !== 'MODULE_NOT_FOUND') throw err;
  process.stderr.write(
    'Error: onnxruntime-node is not installed: run ' +
      `(cd ${path.relative(process.cwd(), __dirname) || '.'} && ONNXRUNTIME_NODE_INSTALL=skip npm ci) first\n`);
  process.exit(1);
}

// Temporaries are named as chromaformer's Python writers name theirs
// (.NAME.cf-HOST-PID-RANDOM.tmp), so that either removes those a killed run left.
const HOST = crypto.createHash('sha1').update(os.hostname()).digest('hex').slice(0, 6);

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

function removeStale(dir, name) {
  let entries = [];
  try { entries = fs.readdirSync(dir); } catch (_) { return; }
  const prefix = `.${name}.cf-`;
  for (const e of entries) {
    if (!e.startsWith(prefix)) continue;
    const [host, pid] = e.slice(prefix.length).split('-');
    if (host === HOST && /^\d+$/.test(pid) && !alive(Number(pid))) {
      fs.rmSync(path.join(dir, e), { force: true });
    }
  }
}

// Whether a path, or a symbolic link on its way, is under /dev or /proc: an open
// descriptor's alias (/dev/stdout -> /proc/self/fd/1 -> the file a shell opened).
function throughDescriptor(p) {
  let q = path.resolve(p);
  for (let hop = 0; hop < 40; hop++) {
    if (q.startsWith('/dev/') || q.startsWith('/proc/')) return true;
    let st;
    try { st = fs.lstatSync(q); } catch (_) { return false; }
    if (!st.isSymbolicLink()) return false;
    q = path.resolve(path.dirname(q), fs.readlinkSync(q));
  }
  return false;
}

// How an output is written: 'file' (temporary + rename; through a symbolic link) or
// 'stream' (a character device, a FIFO, a /dev/stdout alias: written into, never
// replaced). A folder, a block device or a socket is refused.
function outputKind(out) {
  let st;
  try { st = fs.statSync(out); } catch (err) {
    if (err.code === 'ENOENT') return 'file';
    throw err;
  }
  if (st.isFile()) return throughDescriptor(out) ? 'stream' : 'file';
  if (st.isCharacterDevice() || st.isFIFO()) return 'stream';
  const what = st.isDirectory() ? 'a directory' : st.isBlockDevice() ? 'a block device' :
    st.isSocket() ? 'a socket' : 'not a regular file';
  throw new InputError(`${out}: ${what}; an output must be a regular file (or a character ` +
    'device such as /dev/null, or a FIFO), and it is never replaced');
}

// Copies a finished temporary into a device or FIFO by plain reads and writes. Never
// fs.copyFile: libuv's copy unlinks its destination when the copy fails, and a device
// cannot take copy_file_range (as root that removed /dev/null).
function ownDescriptor(target) {
  const p = path.resolve(target);
  const named = { '/dev/stdin': 0, '/dev/stdout': 1, '/dev/stderr': 2 };
  if (p in named) return named[p];
  for (const prefix of ['/dev/fd/', '/proc/self/fd/', `/proc/${process.pid}/fd/`]) {
    if (p.startsWith(prefix) && /^\d+$/.test(p.slice(prefix.length))) return Number(p.slice(prefix.length));
  }
  return null;
}

function writeInto(tmp, target) {
  const src = fs.openSync(tmp, 'r');
  // this process's own descriptor (/dev/stdout): its offset and O_APPEND hold; else a
  // new one for appending (a file a shell opened with >> is not truncated)
  const own = ownDescriptor(target);
  const dst = own !== null ? own : fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_APPEND);
  try {
    const buf = Buffer.alloc(1 << 20);
    let n;
    while ((n = fs.readSync(src, buf, 0, buf.length, null)) > 0) {
      let off = 0;
      while (off < n) off += fs.writeSync(dst, buf, off, n - off);
    }
  } finally {
    fs.closeSync(src);
    if (own === null) fs.closeSync(dst);
  }
}

function sameFile(a, b) {
  try {
    const x = fs.statSync(a);
    const y = fs.statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch (_) {
    return false;
  }
}

function checkOutputs(targets, inputs) {
  for (let i = 0; i < inputs.length; i++) {
    if (!fs.existsSync(inputs[i])) throw new InputError(`${inputs[i]}: no such input file`);
    if (!fs.statSync(inputs[i]).isFile()) {
      throw new InputError(`${inputs[i]}: not a regular file; the scorer reads files (plain or .gz)`);
    }
    for (let j = 0; j < i; j++) {
      if (sameFile(inputs[i], inputs[j])) {
        throw new InputError(`${inputs[i]}: the same input as ${inputs[j]}, given twice`);
      }
    }
  }
  for (const out of targets) {
    if (outputKind(out) !== 'file') continue;
    for (const inp of inputs) {
      if (sameFile(out, inp)) {
        throw new InputError(`${out}: is the input ${inp}; refusing to overwrite an input (give another output)`);
      }
    }
  }
}

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
  // the .onnx describes itself (metadata_props); a card beside it must say the same
  const own = lib.layoutFromOnnx(fs.readFileSync(modelPath), modelPath);
  if (!fs.existsSync(card)) return own;
  let parsed;
  try {
    parsed = JSON.parse(fs.readFileSync(card, 'utf8'));
  } catch (err) {
    throw new InputError(`${card}: not JSON (${err.message.split('\n')[0]})`);
  }
  const fromCard = lib.layoutFromCard(parsed, card);
  for (const key of ['family', 'marks', 'bins', 'binSize', 'task']) {
    const a = JSON.stringify(fromCard[key]);
    const b = JSON.stringify(own[key]);
    if (fromCard[key] !== undefined && own[key] !== undefined && a !== b) {
      throw new InputError(`${card}: disagrees with ${modelPath} on ${key} (${a} against ` +
        `${b} in the model's metadata): the card is not this model's; re-export it`);
    }
  }
  return own;
}

function defaultOutput(input) {
  const base = input.replace(/\.csv\.gz$|\.csv$|\.gz$/, '');
  return base + '.scores.tsv';
}

// Each input's default output; two of one stem (s.csv, s.csv.gz) keep their whole names.
function defaultOutputs(inputs) {
  const stems = inputs.map(defaultOutput);
  return inputs.map((p, i) =>
    stems.filter((s) => s === stems[i]).length > 1 ? `${p}.scores.tsv` : stems[i]);
}

function outputNames(inputs) {
  const stems = inputs.map((p) => defaultOutput(p).replace(/\.scores\.tsv$/, '').split(path.sep).filter(Boolean));
  const whole = inputs.map((p) => p.split(path.sep).filter(Boolean));
  for (const parts of [stems, whole]) {
    const longest = Math.max(...parts.map((p) => p.length));
    for (let depth = 1; depth <= longest; depth++) {
      const names = parts.map((p) => p.slice(-depth).join('_'));
      if (new Set(names).size === names.length) return names;
    }
  }
  throw new InputError(`${inputs[0]}: the same input is named twice`);
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
  const gunzip = zlib.createGunzip();
  try {
    yield* raw.pipe(gunzip);
  } catch (err) {
    throw new InputError(`${file}: invalid gzip data: ${err.message}`);
  }
  // zlib stops at the last member and ignores what follows (zero padding, junk)
  if (gunzip.bytesWritten < fs.statSync(file).size) {
    throw new InputError(`${file}: invalid gzip data: the bytes after the last gzip member are not gzip data`);
  }
}

async function scoreFile(lib, reader, session, layout, input, output, opts) {
  const t0 = process.hrtime.bigint();
  const kind = outputKind(output);
  // a regular file is replaced through any symbolic link; a device or FIFO is written into
  const real = kind === 'file' && fs.existsSync(output) ? fs.realpathSync(output) : output;
  const dir = kind === 'file' ? path.dirname(real) : os.tmpdir();
  const name = path.basename(real);
  const tmp = path.join(dir, `.${name}.cf-${HOST}-${process.pid}-${crypto.randomBytes(6).toString('hex')}.tmp`);
  let mode = null;
  if (kind === 'file') {
    fs.mkdirSync(dir, { recursive: true });
    removeStale(dir, name);
    if (fs.existsSync(real)) mode = fs.statSync(real).mode & 0o7777;
  }
  let out;
  try {
    out = fs.openSync(tmp, 'wx');
  } catch (err) {
    throw new InputError(`${output}: ${err.code === 'EACCES' ? 'Permission denied' : err.message}`);
  }
  let genes = 0;
  try {
    fs.writeSync(out, lib.TSV_HEADER);
    const batches = reader.readBatches(chunks(input), input, layout, { batchSize: opts.batchSize });
    genes = await lib.scoreBatches(ort, session, layout, batches, (b) => {
      fs.writeSync(out, lib.tsvRows(b.ids, b.probability, b.labels, b.n));
    });
    fs.closeSync(out);
    if (kind === 'file') {
      if (mode !== null) fs.chmodSync(tmp, mode);
      fs.renameSync(tmp, real);
    } else {
      writeInto(tmp, output);
      fs.rmSync(tmp, { force: true });
    }
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
  const { loadReader } = await import('../web/lib/wasmreader.mjs');
  const reader = await loadReader(fs.readFileSync(path.join(__dirname, '..', 'web', 'lib', 'cfreader.wasm')));
  if (!fs.existsSync(opts.model)) throw new InputError(`${opts.model}: no such model file`);
  const layout = readCard(opts.model, lib);
  const sessionOptions = {};
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  if (opts.threads > cores) {
    process.stderr.write(`note: --threads ${opts.threads} is more than the ${cores} cores available; using ${cores}\n`);
    opts.threads = cores;
  }
  if (opts.threads > 0) sessionOptions.intraOpNumThreads = opts.threads;
  const session = await ort.InferenceSession.create(opts.model, sessionOptions);
  if (!session.inputNames.includes('counts') || !session.outputNames.includes('probability')) {
    throw new InputError(`${opts.model}: expected input 'counts' and output 'probability' (see export/CONTRACT.md)`);
  }
  let targets;
  const folder = opts.output && (opts.output.endsWith('/') ||
    (fs.existsSync(opts.output) && fs.statSync(opts.output).isDirectory()));
  for (const input of opts.inputs) {
    if (!fs.existsSync(input)) throw new InputError(`${input}: no such input file`);
  }
  if (!opts.output) targets = defaultOutputs(opts.inputs);
  else if (opts.inputs.length === 1 && !folder) {
    targets = [opts.output];
  } else {
    if (fs.existsSync(opts.output) && !fs.statSync(opts.output).isDirectory()) {
      throw new InputError(`${opts.output}: several inputs need -o to be a folder, not a file`);
    }
    fs.mkdirSync(opts.output, { recursive: true });
    targets = outputNames(opts.inputs).map((n) => path.join(opts.output, `${n}.scores.tsv`));
  }
  checkOutputs(targets, opts.inputs);
  for (let i = 0; i < opts.inputs.length; i++) {
    const { genes, seconds } = await scoreFile(lib, reader, session, layout, opts.inputs[i], targets[i], opts);
    if (!opts.quiet) {
      (ownDescriptor(targets[i]) === 1 ? process.stderr : process.stdout).write(`${opts.inputs[i]}: ${genes} genes in ${seconds.toFixed(2)} s ` +
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

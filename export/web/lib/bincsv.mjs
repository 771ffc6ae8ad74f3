// The bin-CSV reader, the model's layout and the scoring loop, shared by the browser page
// (export/web) and the Node.js scorer (export/node/score.js). No browser or Node API here:
// callers hand in decompressed byte chunks and an onnxruntime module (web or node).
//
// Strictness and messages follow the C++ reader (csrc/binparse.cpp) on the format's rules
// (docs/guide/data-format.md): no header, GeneID,BinID,<one count per mark>,Label; CRLF, a
// UTF-8 BOM, a missing final newline and trailing blank lines are accepted; anything else
// is a FormatError "FILE:LINE[:COLUMN]: what was expected". A test feeds the same bad
// files to both readers and compares the messages.

export class FormatError extends Error {
  constructor(path, line, column, what) {
    let where = path;
    if (line > 0) where += `:${line}`;
    if (line > 0 && column > 0) where += `:${column}`;
    super(`${where}: ${what}`);
    this.name = 'FormatError';
    this.path = path;
    this.line = line;
    this.column = column;
    this.reason = what;
  }
}

// --- the model's layout ------------------------------------------------------------------

const BINS_INPUT = 'counts';
const ATTENTION = ['bin_attention', 'mark_attention'];

function layoutOf(where, f) {
  if (f.family && f.family !== 'bins') {
    throw new FormatError(where, 0, 0,
      `a ${f.family} model: this scorer reads bin CSVs for the bin models only`);
  }
  if (!Array.isArray(f.marks) || !f.marks.length || !(f.bins > 0)) {
    throw new FormatError(where, 0, 0,
      'not a chromaformer model: its marks and bins are missing (see export/CONTRACT.md)');
  }
  return {
    marks: f.marks,
    bins: f.bins,
    binSize: f.binSize || 0,
    architecture: f.architecture || '',
    task: f.task || 'clf',
    outputs: f.outputs,
    attention: ATTENTION.every((n) => f.outputs.includes(n)),
  };
}

// The layout from a model card (model.model.json, written by chromaformer-export).
export function layoutFromCard(card, where = 'model card') {
  const inp = card && card.schema && card.schema.inputs && card.schema.inputs[BINS_INPUT];
  const info = (card && card.info) || {};
  if (!inp) {
    if (info.family && info.family !== 'bins') return layoutOf(where, { family: info.family });
    throw new FormatError(where, 0, 0,
      `not a chromaformer model card (schema.inputs.${BINS_INPUT}.marks/bins missing)`);
  }
  return layoutOf(where, {
    family: info.family,
    marks: inp.marks,
    bins: inp.bins,
    binSize: inp.bin_size,
    architecture: info.architecture,
    task: info.task,
    outputs: Object.keys((card.schema && card.schema.outputs) || {}),
  });
}

// The layout from the ONNX file's own metadata_props (the model is self-describing).
export function layoutFromOnnx(bytes, where = 'model.onnx') {
  const meta = readOnnxMetadata(bytes, where);
  return layoutOf(where, {
    family: meta.family,
    marks: meta.marks ? meta.marks.split(',') : null,
    bins: Number(meta.bins),
    binSize: Number(meta.bin_size),
    architecture: meta.architecture,
    task: meta.task,
    outputs: meta.outputs ? meta.outputs.split(',') : [],
  });
}

// metadata_props of an ONNX ModelProto (field 14: repeated {key = 1, value = 2}), read
// from the protobuf wire format; every other field is skipped by its length.
export function readOnnxMetadata(bytes, where = 'model.onnx') {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const bad = () => new FormatError(where, 0, 0, 'not an ONNX model (unreadable protobuf)');
  const utf8 = new TextDecoder();
  let pos = 0;
  const varint = (end) => {
    let v = 0;
    let scale = 1;
    for (;;) {
      if (pos >= end || scale > 2 ** 63) throw bad();
      const byte = b[pos++];
      v += (byte & 0x7f) * scale;
      if (byte < 0x80) return v;
      scale *= 128;
    }
  };
  const fields = (start, end, visit) => {
    pos = start;
    while (pos < end) {
      const key = varint(end);
      const field = Math.floor(key / 8);
      const wire = key % 8;
      if (wire === 0) varint(end);
      else if (wire === 1) pos += 8;
      else if (wire === 5) pos += 4;
      else if (wire === 2) {
        const n = varint(end);
        if (pos + n > end) throw bad();
        const s = pos;
        pos += n;
        visit(field, s, pos);
        pos = s + n;
      } else throw bad();
      if (pos > end) throw bad();
    }
  };
  const meta = {};
  fields(0, b.length, (field, s, e) => {
    if (field !== 14) return;
    let key = '';
    let value = '';
    const saved = pos;
    fields(s, e, (f, a, z) => {
      if (f === 1) key = utf8.decode(b.subarray(a, z));
      else if (f === 2) value = utf8.decode(b.subarray(a, z));
    });
    pos = saved;
    meta[key] = value;
  });
  return meta;
}

// --- the reader --------------------------------------------------------------------------

const UTF8 = new TextEncoder();

// A field quoted for a message as the C++ reader quotes it: cut after at most 24 UTF-8
// bytes on a character boundary, control characters written as \xNN.
function show(field) {
  let bytes = 0;
  let cut = 0;
  for (const ch of field) {
    const n = UTF8.encode(ch).length;
    if (bytes + n > 24) break;
    bytes += n;
    cut += ch.length;
  }
  const head = field.slice(0, cut).replace(/[\x00-\x1f\x7f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return `'${head}${cut < field.length ? '...' : ''}'`;
}

// Gene ids end up in TSVs and tracks: no tabs or control characters, and valid UTF-8
// (TextDecoder turned bad bytes into U+FFFD).
const UNCLEAN_ID = /[\x00-\x1f\x7f\ufffd]/;

const DECIMAL = /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const SPECIAL = /^-?(inf|infinity|nan(\([0-9A-Za-z_]*\))?)$/i; // what from_chars also reads
const FLT_MAX = 3.4028234663852886e38; // the largest float32
const DIGITS = /^\d{1,16}$/;
const BIN_ID = /^\d{1,12}/;

// Bytes of one row, at most (as the C++ reader): a row is a few dozen bytes, and one
// without an end must not grow a buffer with the file.
const MAX_LINE = 16 << 20;

// Lines of decompressed byte chunks (UTF-8, BOM dropped), without their line ends.
async function* lines(chunks, path) {
  const decoder = new TextDecoder('utf-8');
  let rest = '';
  let count = 0;
  for await (const chunk of chunks) {
    rest += decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n', start)) {
      const end = nl > start && rest.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      count++;
      yield rest.slice(start, end);
      start = nl + 1;
    }
    rest = rest.slice(start);
    if (rest.length > MAX_LINE) {
      throw new FormatError(path, count + 1, 0,
        `a line of more than ${MAX_LINE >> 20} MiB without a line end: not a row of the bin CSV`);
    }
  }
  rest += decoder.decode();
  if (rest !== '') yield rest.endsWith('\r') ? rest.slice(0, -1) : rest;
}

// Batches of whole genes: {ids, labels (Uint8Array), counts (Float32Array, genes x bins x
// marks), n}. Throws FormatError at the first bad line; nothing of a bad file should be
// kept by the caller.
export async function* readBatches(chunks, path, layout, opts = {}) {
  const batchSize = opts.batchSize || 1024;
  const integerCounts = Boolean(opts.integerCounts);
  const { bins } = layout;
  const marks = layout.marks.length;
  const want = marks + 3;
  const per = bins * marks;
  const columns = `${want} columns (GeneID,BinID,${marks} mark counts,Label)`;
  const markLabel = (m) => `field ${m + 3} (${layout.marks[m]})`;
  const seen = new Map();
  let counts = new Float32Array(batchSize * per);
  let labels = new Uint8Array(batchSize);
  let ids = [];
  let row = 0; // data rows so far
  let line = 0;
  let blank = 0; // the first blank line of a run that may end the file
  let prevId = null;
  let prevLabel = -1;

  for await (const text of lines(chunks, path)) {
    line++;
    if (text === '') {
      if (!blank) blank = line;
      continue;
    }
    if (blank) {
      throw new FormatError(path, blank, 0,
        'empty line (blank lines are allowed only at the end of the file)');
    }
    const fail = (column, what) => {
      throw new FormatError(path, line, column, what);
    };
    const f = text.split(',');
    const tooFew = () => fail(0, `expected ${columns}, found ${f.length}`);
    const e = row % bins;
    const g = ids.length - (e === 0 ? 0 : 1); // this row's gene in the batch
    if (e === 0 && ids.length === batchSize) {
      yield { ids, labels, counts, n: ids.length };
      counts = new Float32Array(batchSize * per);
      labels = new Uint8Array(batchSize);
      ids = [];
    }
    const slot = (e === 0 ? ids.length : g) * per + e * marks;
    // GeneID
    if (f[0] === '') fail(1, 'empty GeneID (field 1)');
    if (f.length === 1) tooFew();
    const id = f[0];
    // BinID
    let col = id.length + 2;
    const m0 = BIN_ID.exec(f[1]);
    if (!m0 || m0[0].length !== f[1].length) {
      if (line === 1) {
        fail(col, `this looks like a header row (${show(f[1])} is not a BinID); the format ` +
          'has no header: every row is GeneID,BinID,<counts>,Label');
      }
      fail(col, `field 2 (BinID): expected an integer, got ${show(f[1])}`);
    }
    if (f.length === 2) tooFew();
    const bin = Number(m0[0]);
    col += f[1].length + 1;
    // Counts
    const values = new Float32Array(marks);
    for (let m = 0; m < marks; m++) {
      const s = f[2 + m];
      if (DIGITS.test(s)) {
        values[m] = Number(s);
      } else {
        const numeric = DECIMAL.test(s) || SPECIAL.test(s);
        if (s === '') fail(col, `${markLabel(m)}: empty field; expected a non-negative count`);
        if (numeric && s[0] === '-') fail(col, `${markLabel(m)}: negative count ${show(s)}`);
        if (numeric && integerCounts) {
          fail(col, `${markLabel(m)}: expected a non-negative integer count, got ${show(s)}`);
        }
        const d = numeric && DECIMAL.test(s) ? Number(s) : NaN;
        if (Number.isFinite(d) && d > FLT_MAX) {
          fail(col, `${markLabel(m)}: count ${show(s)} is beyond what float32 holds (3.4e38)`);
        }
        if (!Number.isFinite(d)) {
          fail(col, `${markLabel(m)}: expected a non-negative ` +
            `${integerCounts ? 'integer count' : 'number'}, got ${show(s)}`);
        }
        values[m] = d;
      }
      if (f.length === 3 + m) tooFew();
      col += s.length + 1;
    }
    // Label
    const lab = f[want - 1];
    let label;
    if (f.length === want && (lab === '0' || lab === '1')) label = lab === '1' ? 1 : 0;
    else if (f.length > want) fail(0, `expected ${columns}, found ${f.length}`);
    else fail(col, `field ${want} (Label): expected 0 or 1, got ${show(lab)}`);
    if (e === 0 && UNCLEAN_ID.test(id)) {
      fail(1, `GeneID (field 1): expected UTF-8 text without tabs or control characters, got ${show(id)}`);
    }
    // Against the row before it
    if (row > 0) {
      if (e === 0) {
        if (id === prevId) fail(1, `gene '${id}' has more than ${bins} bins`);
      } else {
        if (id !== prevId) {
          fail(1, `gene '${prevId}' has ${e} bins, expected ${bins} (gene '${id}' starts here)`);
        }
        if (label !== prevLabel) {
          fail(0, `label changes inside gene '${id}' (from ${prevLabel} to ${label}); ` +
            'a gene has one label on all its rows');
        }
      }
    }
    if (bin !== e + 1) {
      fail(0, `BinIDs out of order in gene '${id}': expected BinID ${e + 1}, got ${bin}`);
    }
    if (e === 0) {
      const first = seen.get(id);
      if (first !== undefined) {
        fail(1, `gene '${id}' appears again (its first block starts at line ${first}); ` +
          "each gene's rows must be consecutive");
      }
      seen.set(id, line);
      labels[ids.length] = label;
      ids.push(id);
    }
    counts.set(values, slot);
    prevId = id;
    prevLabel = label;
    row++;
  }
  if (row === 0) {
    throw new FormatError(path, 0, 0,
      'empty file: expected rows of GeneID,BinID,<one count per mark>,Label');
  }
  if (row % bins !== 0) {
    throw new FormatError(path, row, 0,
      `gene '${prevId}' has ${row % bins} bins, expected ${bins} (the file ends)`);
  }
  if (ids.length) yield { ids, labels, counts, n: ids.length };
}

// --- scoring -----------------------------------------------------------------------------

// Scores every batch; calls onBatch({ids, labels, probability, n}) in input order.
// `ort` is onnxruntime-web or onnxruntime-node; `session` one of its InferenceSessions.
export async function scoreBatches(ort, session, layout, batches, onBatch) {
  const { bins } = layout;
  const marks = layout.marks.length;
  let genes = 0;
  for await (const b of batches) {
    const x = new ort.Tensor('float32', b.counts.subarray(0, b.n * bins * marks), [b.n, bins, marks]);
    const res = await session.run({ [BINS_INPUT]: x }, ['probability']);
    await onBatch({ ids: b.ids, labels: b.labels, counts: b.counts, probability: res.probability.data, n: b.n });
    genes += b.n;
  }
  return genes;
}

// C's printf("%.7g"): what the Python scorer writes, so that both TSVs are the same bytes.
export function formatG(x, digits = 7) {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const [mant, ex] = x.toExponential(digits - 1).split('e');
  const exp = Number(ex);
  const strip = (s) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (exp < -4 || exp >= digits) {
    const a = Math.abs(exp);
    return `${strip(mant)}e${exp < 0 ? '-' : '+'}${a < 10 ? '0' : ''}${a}`;
  }
  return strip(x.toFixed(Math.max(0, digits - 1 - exp)));
}

export const TSV_HEADER = 'gene_id\tprobability\tlabel\n';

export function tsvRows(ids, probability, labels, n = ids.length) {
  let text = '';
  for (let i = 0; i < n; i++) text += `${ids[i]}\t${formatG(probability[i])}\t${labels[i]}\n`;
  return text;
}

// Area under the ROC curve (ties get half credit), as scikit-learn's roc_auc_score;
// null when only one class is present.
export function auroc(labels, scores) {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[order[k]]) {
        pos++;
        rankSum += rank;
      }
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (!pos || !neg) return null;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

// --- attributions of one gene (the method of chromaformer explain) -----------------------

// Exact mark Shapley values and window occlusion of one gene's (bins x marks) counts,
// explaining the logit, as chromaformer.explain.attribution does: {value, baseline,
// shapley (marks), occlusion (bins x marks, row-major), window}.
export async function attributeGene(ort, session, layout, counts, window = 0) {
  const { bins } = layout;
  const marks = layout.marks.length;
  const per = bins * marks;
  const w = window || Math.max(1, Math.ceil(bins / 20));
  const subsets = 2 ** marks;
  const starts = [];
  for (let s = 0; s < bins; s += w) starts.push(s);
  const variants = subsets + starts.length * marks;
  const x = new Float32Array(variants * per);
  for (let v = 0; v < subsets; v++) {
    for (let b = 0; b < bins; b++) {
      for (let m = 0; m < marks; m++) {
        // coalition v: bit (marks - 1 - m) set = mark m kept (row 0 empty, last all)
        if ((v >> (marks - 1 - m)) & 1) x[v * per + b * marks + m] = counts[b * marks + m];
      }
    }
  }
  starts.forEach((s, j) => {
    for (let m = 0; m < marks; m++) {
      const v = subsets + j * marks + m;
      x.set(counts.subarray(0, per), v * per);
      for (let b = s; b < Math.min(bins, s + w); b++) x[v * per + b * marks + m] = 0;
    }
  });
  const res = await session.run({ [BINS_INPUT]: new ort.Tensor('float32', x, [variants, bins, marks]) }, ['logit']);
  const z = res.logit.data;
  const fact = (k) => (k <= 1 ? 1 : k * fact(k - 1));
  const shapley = new Float64Array(marks);
  for (let v = 0; v < subsets; v++) {
    let size = 0;
    for (let m = 0; m < marks; m++) size += (v >> m) & 1;
    for (let m = 0; m < marks; m++) {
      const bit = 1 << (marks - 1 - m);
      if (v & bit) continue;
      const weight = (fact(size) * fact(marks - size - 1)) / fact(marks);
      shapley[m] += weight * (z[v | bit] - z[v]);
    }
  }
  const value = z[subsets - 1];
  const occlusion = new Float64Array(per);
  starts.forEach((s, j) => {
    for (let m = 0; m < marks; m++) {
      const drop = value - z[subsets + j * marks + m];
      for (let b = s; b < Math.min(bins, s + w); b++) occlusion[b * marks + m] = drop;
    }
  });
  return { value, baseline: z[0], shapley, occlusion, window: w };
}

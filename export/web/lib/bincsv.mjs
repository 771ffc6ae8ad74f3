// The model's layout, its ONNX metadata and the scoring loop, shared by the browser page
// (export/web) and the Node.js scorer (export/node/score.js), and FormatError, the
// one-line "FILE:LINE[:COLUMN]: what was expected" error of both. The bin CSV itself is
// read by the C++ reader built to WebAssembly (wasmreader.mjs). No browser or Node API
// here: callers hand in an onnxruntime module (web or node).

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
  if (f.task && f.task !== 'clf') {
    throw new FormatError(where, 0, 0,
      `a ${f.task} model: this scorer writes the probabilities of classifiers (clf); ` +
      'score it with chromaformer-score');
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

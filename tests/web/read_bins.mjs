// Reads bin CSVs with the reader that the page and the Node scorer share (the C++ reader
// built to WebAssembly, export/web/lib/wasmreader.mjs), for tests/web:
//   node read_bins.mjs PLAN.json
// PLAN: {marks: [...], bins, files: [...]}; prints one JSON object per file: {ok, message}
// or {ok, ids, labels, counts}.
import fs from 'node:fs';
import { loadReader } from '../../export/web/lib/wasmreader.mjs';

const { readBatches } = await loadReader(
  fs.readFileSync(new URL('../../export/web/lib/cfreader.wasm', import.meta.url)));

const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const layout = { marks: plan.marks, bins: plan.bins };
const out = [];
for (const file of plan.files) {
  const r = { ok: true, ids: [], labels: [], counts: [] };
  try {
    const chunks = fs.createReadStream(file, { highWaterMark: plan.chunk_bytes || 65536 });
    for await (const b of readBatches(chunks, file, layout, { batchSize: 2 })) {
      r.ids.push(...b.ids);
      r.labels.push(...b.labels.subarray(0, b.n));
      r.counts.push(...b.counts.subarray(0, b.n * plan.bins * plan.marks.length));
    }
  } catch (err) {
    if (err.name !== 'FormatError') throw err;
    out.push({ ok: false, message: err.message });
    continue;
  }
  out.push(r);
}
process.stdout.write(JSON.stringify(out));

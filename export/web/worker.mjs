// The page's Web Worker: reads the bin CSV (plain or gzip), scores it with onnxruntime-web
// (WASM; multi-threaded when the page is cross-origin isolated) and explains single genes.
// The page's main thread only draws. Messages in: {type: 'score', csv, model, card,
// threads, batchSize} and {type: 'explain', index}; out: 'ready', 'progress', 'scored',
// 'explained', 'error' (one line).
import * as ort from './node_modules/onnxruntime-web/dist/ort.wasm.min.mjs';
import {
  FormatError, attributeGene, auroc, layoutFromCard, layoutFromOnnx, scoreBatches,
} from './lib/bincsv.mjs';
import { loadReader } from './lib/wasmreader.mjs';

ort.env.wasm.wasmPaths = new URL('./node_modules/onnxruntime-web/dist/', import.meta.url).href;

// The bin-CSV reader (the C++ reader built to WebAssembly), loaded once.
let reader = null;
async function binReader() {
  if (!reader) {
    const res = await fetch(new URL('./lib/cfreader.wasm', import.meta.url));
    if (!res.ok) throw new Error(`cannot fetch the bin-CSV reader (${res.status})`);
    reader = await loadReader(new Uint8Array(await res.arrayBuffer()));
  }
  return reader;
}

let state = null; // {session, layout, ids, counts: [Float32Array per batch], batch}

// A File, a Blob or {url, name}: its name and bytes.
// A bundled example's response (the one place that fetches), or null for a user's File.
async function fetched(source) {
  if (!source.url) return null;
  const res = await fetch(source.url);
  if (!res.ok) throw new FormatError(source.name, 0, 0, `cannot fetch (${res.status})`);
  return res;
}

async function bytesOf(source) {
  const res = await fetched(source);
  return new Uint8Array(await (res ?? source).arrayBuffer());
}

async function streamOf(source) {
  const res = await fetched(source);
  if (res) return { stream: res.body, size: Number(res.headers.get('content-length')) || 0 };
  return { stream: source.stream(), size: source.size };
}

// Decompressed chunks of the CSV, counting the compressed bytes read for the progress bar.
async function* csvChunks(source, progress) {
  const { stream, size } = await streamOf(source);
  const reader = stream.getReader();
  const first = await reader.read();
  const head = first.done ? new Uint8Array(0) : first.value;
  const gzip = head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
  let read = 0;
  const counted = new ReadableStream({
    start(controller) {
      if (head.length) {
        read += head.length;
        progress(size ? read / size : 0);
        controller.enqueue(head);
      }
      if (first.done) controller.close();
    },
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) {
        controller.close();
        return;
      }
      read += value.length;
      progress(size ? read / size : 0);
      controller.enqueue(value);
    },
  });
  const body = gzip ? counted.pipeThrough(new DecompressionStream('gzip')) : counted;
  try {
    for await (const chunk of body) yield chunk;
  } catch (err) {
    if (err instanceof FormatError) throw err;
    throw new FormatError(source.name, 0, 0, `invalid gzip data: ${err.message || err}`);
  }
}

async function score(msg) {
  const t0 = performance.now();
  const modelBytes = await bytesOf(msg.model);
  let layout;
  if (msg.card) {
    let card;
    try {
      card = JSON.parse(new TextDecoder().decode(await bytesOf(msg.card)));
    } catch (err) {
      throw new FormatError(msg.card.name, 0, 0, `not JSON: ${err.message}`);
    }
    layout = layoutFromCard(card, msg.card.name);
  } else {
    layout = layoutFromOnnx(modelBytes, msg.model.name);
  }
  if (state) { // the previous file's session and genes: free their WebAssembly memory
    await state.session.release();
    state = null;
  }
  const threads = self.crossOriginIsolated ? msg.threads || navigator.hardwareConcurrency || 1 : 1;
  ort.env.wasm.numThreads = threads;
  let session;
  try {
    session = await ort.InferenceSession.create(modelBytes, { executionProviders: ['wasm'] });
  } catch (err) {
    throw new FormatError(msg.model.name, 0, 0, `onnxruntime cannot load it: ${String(err.message || err).split('\n')[0]}`);
  }
  const ids = [];
  const probability = [];
  const labels = [];
  const counts = [];
  let fraction = 0;
  const batches = (await binReader()).readBatches(csvChunks(msg.csv, (f) => { fraction = f; }), msg.csv.name, layout, {
    batchSize: msg.batchSize || 512,
  });
  const tScore = performance.now();
  const genes = await scoreBatches(ort, session, layout, batches, (b) => {
    for (let i = 0; i < b.n; i++) {
      ids.push(b.ids[i]);
      labels.push(b.labels[i]);
    }
    probability.push(Float32Array.from(b.probability.subarray(0, b.n)));
    counts.push(b.counts);
    self.postMessage({ type: 'progress', genes: ids.length, fraction });
  });
  const seconds = (performance.now() - tScore) / 1000;
  const prob = new Float32Array(genes);
  let k = 0;
  for (const p of probability) {
    prob.set(p, k);
    k += p.length;
  }
  state = { session, layout, counts, batch: msg.batchSize || 512 };
  self.postMessage({
    type: 'scored',
    name: msg.csv.name,
    model: msg.model.name,
    layout,
    ids,
    probability: prob,
    labels,
    auroc: auroc(labels, prob),
    seconds,
    total: (performance.now() - t0) / 1000,
    threads,
  });
}

async function explain(msg) {
  if (!state) throw new Error('score a file first');
  const { session, layout, counts, batch } = state;
  const per = layout.bins * layout.marks.length;
  const block = counts[Math.floor(msg.index / batch)];
  const x = block.slice((msg.index % batch) * per, (msg.index % batch + 1) * per);
  const att = await attributeGene(ort, session, layout, x, msg.window || 0);
  let attention = null;
  if (layout.attention) {
    const res = await session.run(
      { counts: new ort.Tensor('float32', x, [1, layout.bins, layout.marks.length]) },
      ['bin_attention', 'mark_attention'],
    );
    attention = { bin: Float32Array.from(res.bin_attention.data), mark: Float32Array.from(res.mark_attention.data) };
  }
  self.postMessage({ type: 'explained', index: msg.index, counts: x, attention, ...att });
}

self.onmessage = async (e) => {
  try {
    if (e.data.type === 'score') await score(e.data);
    else if (e.data.type === 'explain') await explain(e.data);
  } catch (err) {
    const text = err instanceof FormatError ? err.message : String(err && err.message ? err.message : err);
    self.postMessage({ type: 'error', message: text.split('\n')[0] });
  }
};
self.postMessage({ type: 'ready', isolated: self.crossOriginIsolated, cores: navigator.hardwareConcurrency });

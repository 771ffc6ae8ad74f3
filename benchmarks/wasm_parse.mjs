// For benchmarks/wasm.py: parses bin CSVs with the C++ reader built to WebAssembly
// (export/web/lib/wasmreader.mjs) and with the JavaScript parser it replaced (a copy of
// that bincsv.mjs given as OLD), in Node and in headless Chromium (playwright-core), in
// the same run.   node wasm_parse.mjs PLAN.json  ->  JSON on stdout
// PLAN: {old, lib, chromium, playwright, rounds, chunk_bytes, files: [{path, bins, marks}]}
// Each parse: the file's bytes in chunks (in memory, so that only parsing is timed) to
// batches of 1,024 genes, every count summed (parity: the same genes, labels and sums).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

// The timed work, the same source in Node and in the page.
const PARSE = `async function parseAll(readBatches, bytes, name, layout, chunk) {
  async function* chunks() {
    for (let i = 0; i < bytes.length; i += chunk) yield bytes.subarray(i, i + chunk);
  }
  const t0 = performance.now();
  let genes = 0; let ones = 0; let sum = 0; let first = '';
  const per = layout.bins * layout.marks.length;
  for await (const b of readBatches(chunks(), name, layout, { batchSize: 1024 })) {
    if (!genes) first = b.ids[0];
    genes += b.n;
    for (let g = 0; g < b.n; g++) ones += b.labels[g];
    const c = b.counts;
    for (let i = 0, n = b.n * per; i < n; i++) sum += c[i];
  }
  return { seconds: (performance.now() - t0) / 1000, genes, ones, sum, first };
}`;
// eslint-disable-next-line no-new-func
const parseAll = new Function(`return (${PARSE.replace(/^async function parseAll/, 'async function')})`)();

async function inNode() {
  const { readBatches: jsRead } = await import(pathToFileURL(plan.old).href);
  const { loadReader } = await import(pathToFileURL(path.join(plan.lib, 'wasmreader.mjs')).href);
  const t0 = performance.now();
  const wasm = await loadReader(fs.readFileSync(path.join(plan.lib, 'cfreader.wasm')));
  const load = (performance.now() - t0) / 1000;
  const out = [];
  for (const f of plan.files) {
    const bytes = new Uint8Array(fs.readFileSync(f.path));
    const layout = { bins: f.bins, marks: f.marks };
    for (let r = 0; r < plan.rounds; r++) {
      for (const [method, read] of [['JavaScript parser', jsRead], ['C++ reader (WebAssembly)', wasm.readBatches]]) {
        const res = await parseAll(read, bytes, path.basename(f.path), layout, plan.chunk_bytes);
        out.push({ where: 'Node', file: f.path, method, round: r, ...res });
      }
    }
  }
  return { load, runs: out };
}

async function inChromium() {
  const require = createRequire(import.meta.url);
  const { chromium } = require(plan.playwright);
  const browser = await chromium.launch({
    executablePath: plan.chromium || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--disable-default-apps', '--no-first-run', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage();
    const base = 'http://bench.invalid/';
    const served = {
      'bincsv.mjs': plan.old,
      'lib/bincsv.mjs': path.join(plan.lib, 'bincsv.mjs'),
      'lib/wasmreader.mjs': path.join(plan.lib, 'wasmreader.mjs'),
      'lib/cfreader.mjs': path.join(plan.lib, 'cfreader.mjs'),
      'lib/cfreader.wasm': path.join(plan.lib, 'cfreader.wasm'),
    };
    plan.files.forEach((f, i) => { served[`genome${i}.csv`] = f.path; });
    await page.route(`${base}**`, (route) => {
      const name = route.request().url().slice(base.length);
      if (name === '') return route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>bench</title>' });
      const file = served[name];
      if (!file) return route.fulfill({ status: 404, body: '' });
      const type = name.endsWith('.mjs') ? 'text/javascript'
        : name.endsWith('.wasm') ? 'application/wasm' : 'text/csv';
      return route.fulfill({ contentType: type, body: fs.readFileSync(file) });
    });
    await page.goto(base);
    return await page.evaluate(async ({ files, rounds, chunk, parseSrc }) => {
      // eslint-disable-next-line no-new-func
      const parse = new Function(`return (${parseSrc.replace(/^async function parseAll/, 'async function')})`)();
      const { readBatches: jsRead } = await import('/bincsv.mjs');
      const { loadReader } = await import('/lib/wasmreader.mjs');
      const t0 = performance.now();
      const bin = new Uint8Array(await (await fetch('/lib/cfreader.wasm')).arrayBuffer());
      const wasm = await loadReader(bin);
      const load = (performance.now() - t0) / 1000;
      const out = [];
      for (let i = 0; i < files.length; i++) {
        const f = files[i];
        const bytes = new Uint8Array(await (await fetch(`/genome${i}.csv`)).arrayBuffer());
        const layout = { bins: f.bins, marks: f.marks };
        for (let r = 0; r < rounds; r++) {
          for (const [method, read] of [['JavaScript parser', jsRead], ['C++ reader (WebAssembly)', wasm.readBatches]]) {
            const res = await parse(read, bytes, `genome${i}.csv`, layout, chunk);
            out.push({ where: 'Chromium', file: f.path, method, round: r, ...res });
          }
        }
      }
      return { load, runs: out };
    }, { files: plan.files, rounds: plan.rounds, chunk: plan.chunk_bytes, parseSrc: PARSE });
  } finally {
    await browser.close();
  }
}

const node = await inNode();
const page = await inChromium();
process.stdout.write(JSON.stringify({ node, chromium: page }));

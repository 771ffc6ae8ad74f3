// The page's main thread: inputs, progress, the table, the download and the heatmaps.
// Reading and scoring run in worker.mjs.
import { TSV_HEADER, tsvRows } from './lib/bincsv.mjs';

const $ = (id) => document.getElementById(id);
const PAGE = 50;
const EXAMPLE = {
  csv: { url: 'examples/e116-valid-300.csv.gz', name: 'e116-valid-300.csv.gz' },
  model: { url: 'examples/e116.onnx', name: 'e116.onnx' },
  card: null,
};

const worker = new Worker(new URL('./worker.mjs', import.meta.url), { type: 'module' });
const params = new URLSearchParams(location.search);
let result = null; // the 'scored' message
let view = []; // row indices, filtered and sorted
let sort = { key: 'index', dir: 1 };
let page = 0;
let chosen = -1;
let busy = false;

function showError(text) {
  const box = $('error');
  box.textContent = text;
  box.hidden = !text;
}

function setBusy(on) {
  busy = on;
  $('score').disabled = on || !($('csv').files.length && $('model').files.length);
  $('example').disabled = on;
}

function start(job) {
  showError('');
  setBusy(true);
  $('output').hidden = true;
  $('progress').hidden = false;
  $('bar').value = 0;
  $('progress-text').textContent = `reading ${job.csv.name}...`;
  document.body.dataset.state = 'scoring';
  const threads = Number(params.get('threads')) || 0;
  worker.postMessage({ type: 'score', threads, batchSize: Number(params.get('batch')) || 512, ...job });
}

$('score').onclick = () => start({
  csv: $('csv').files[0],
  model: $('model').files[0],
  card: $('card').files[0] || null,
});
$('example').onclick = () => start(EXAMPLE);
for (const id of ['csv', 'model']) $(id).onchange = () => setBusy(busy);

// The worker's module failed to load (no onnxruntime-web under node_modules: `npm ci`
// was not run): say so at once instead of waiting on "starting onnxruntime-web...".
worker.onerror = (e) => {
  e.preventDefault();
  $('env').textContent = 'onnxruntime-web did not start';
  document.body.dataset.state = 'failed';
  setBusy(true);
  showError('onnxruntime-web could not be loaded: install the page\'s packages first ' +
    '(cd export/web && npm ci), then reload');
};

worker.onmessage = (e) => {
  const m = e.data;
  if (m.type === 'ready') {
    const threads = m.isolated ? `${Number(params.get('threads')) || m.cores} threads` : '1 thread (serve with serve.py for more)';
    $('env').textContent = `onnxruntime-web, WebAssembly, ${threads}`;
    document.body.dataset.state = 'ready';
  } else if (m.type === 'progress') {
    $('bar').value = m.fraction;
    $('progress-text').textContent = `${m.genes.toLocaleString('en-US')} genes scored (${Math.round(100 * m.fraction)}% of the file)`;
  } else if (m.type === 'scored') {
    setBusy(false);
    $('progress').hidden = true;
    result = m;
    chosen = -1;
    sort = { key: 'index', dir: 1 };
    page = 0;
    $('filter').value = '';
    showResults();
    window.chromaformerScored = { genes: m.ids.length, seconds: m.seconds, total: m.total, threads: m.threads };
    document.body.dataset.state = 'scored';
  } else if (m.type === 'explained') {
    drawGene(m);
    window.chromaformerExplained = m; // for scripts driving the page (the tests)
    document.body.dataset.state = 'explained';
  } else if (m.type === 'error') {
    setBusy(false);
    $('progress').hidden = true;
    showError(m.message);
    document.body.dataset.state = 'error';
  }
};

function stat(value, label) {
  return `<div><b>${value}</b><span>${label}</span></div>`;
}

function showResults() {
  const r = result;
  const n = r.ids.length;
  const high = r.probability.reduce((a, p) => a + (p >= 0.5), 0);
  $('summary').innerHTML = [
    stat(n.toLocaleString('en-US'), `genes in ${r.name}`),
    stat(high.toLocaleString('en-US'), 'called expressed (P &ge; 0.5)'),
    stat(r.auroc === null ? 'n/a' : r.auroc.toFixed(4), 'AUROC against the labels'),
    stat(Math.round(n / r.seconds).toLocaleString('en-US'), `genes/s (${r.threads} thread${r.threads > 1 ? 's' : ''})`),
  ].join('');
  const tsv = TSV_HEADER + tsvRows(r.ids, r.probability, r.labels);
  const a = $('download');
  if (a.href) URL.revokeObjectURL(a.href);
  a.href = URL.createObjectURL(new Blob([tsv], { type: 'text/tab-separated-values' }));
  a.download = `${r.name.replace(/\.csv\.gz$|\.csv$|\.gz$/, '')}.scores.tsv`;
  $('output').hidden = false;
  $('gene-title').textContent = 'Click a gene to see what drives its prediction';
  for (const c of ['heat-attr', 'heat-attn']) $(c).hidden = true;
  $('shapley').innerHTML = '';
  refresh();
}

function refresh() {
  const r = result;
  const q = $('filter').value.trim().toLowerCase();
  view = [];
  for (let i = 0; i < r.ids.length; i++) if (!q || r.ids[i].toLowerCase().includes(q)) view.push(i);
  const key = {
    index: (i) => i, id: (i) => r.ids[i], probability: (i) => r.probability[i], label: (i) => r.labels[i],
  }[sort.key];
  view.sort((a, b) => {
    const x = key(a);
    const y = key(b);
    return (x < y ? -1 : x > y ? 1 : a - b) * sort.dir;
  });
  const pages = Math.max(1, Math.ceil(view.length / PAGE));
  page = Math.min(page, pages - 1);
  const rows = view.slice(page * PAGE, (page + 1) * PAGE).map((i) => {
    const p = r.probability[i];
    return `<tr data-i="${i}"${i === chosen ? ' class="chosen"' : ''}><td class="num">${i + 1}</td>` +
      `<td>${escape(r.ids[i])}</td><td class="num"><span class="pbar" style="width:${Math.round(p * 60)}px"></span>${p.toFixed(4)}</td>` +
      `<td class="num">${r.labels[i]}</td></tr>`;
  });
  $('genes').tBodies[0].innerHTML = rows.join('');
  $('page').textContent = `page ${page + 1} of ${pages}`;
  $('count').textContent = `${view.length.toLocaleString('en-US')} of ${r.ids.length.toLocaleString('en-US')} genes`;
  $('prev').disabled = page === 0;
  $('next').disabled = page >= pages - 1;
  for (const th of document.querySelectorAll('#genes th')) {
    th.classList.toggle('sorted-asc', th.dataset.key === sort.key && sort.dir === 1);
    th.classList.toggle('sorted-desc', th.dataset.key === sort.key && sort.dir === -1);
  }
}

function escape(s) {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

$('filter').oninput = () => { page = 0; refresh(); };
$('prev').onclick = () => { page--; refresh(); };
$('next').onclick = () => { page++; refresh(); };
for (const th of document.querySelectorAll('#genes th')) {
  th.onclick = () => {
    sort = { key: th.dataset.key, dir: sort.key === th.dataset.key ? -sort.dir : th.dataset.key === 'probability' ? -1 : 1 };
    page = 0;
    refresh();
  };
}
$('genes').tBodies[0].onclick = (e) => {
  const tr = e.target.closest('tr');
  if (!tr) return;
  chosen = Number(tr.dataset.i);
  refresh();
  $('gene-title').textContent = `${result.ids[chosen]}: explaining...`;
  document.body.dataset.state = 'explaining';
  worker.postMessage({ type: 'explain', index: chosen });
};

// --- drawing ------------------------------------------------------------------------------

const RED = [178, 24, 43];
const BLUE = [33, 102, 172];
const PURPLE = [84, 39, 143];
const mix = (a, t) => a.map((c) => Math.round(255 + (c - 255) * t));

function niceStep(span) {
  const raw = span / 6;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((k) => k * p).find((s) => s >= raw);
}

// values: (marks x bins) row-major; diverging around 0, or sequential from 0.
function heatmap(canvas, { title, values, marks, bins, binSize, diverging, unit }) {
  const dpr = window.devicePixelRatio || 1;
  const W = 660;
  const left = 86;
  const right = 92;
  const top = 30;
  const rowH = 24;
  const H = top + marks.length * rowH + 46;
  canvas.width = W * dpr;
  canvas.height = H * dpr;
  canvas.style.width = `${W}px`;
  canvas.style.height = `${H}px`;
  const g = canvas.getContext('2d');
  g.scale(dpr, dpr);
  g.fillStyle = '#fff';
  g.fillRect(0, 0, W, H);
  const plotW = W - left - right;
  const cell = plotW / bins;
  // diverging: -lim..+lim around 0; sequential: lo..hi, the gene's own range
  let lim = 0;
  let lo = Infinity;
  for (const v of values) {
    lim = Math.max(lim, Math.abs(v));
    lo = Math.min(lo, v);
  }
  lim = lim || 1;
  const span = lim - lo || 1;
  const shade = (v) => (diverging ? mix(v >= 0 ? RED : BLUE, Math.min(1, Math.abs(v) / lim)) : mix(PURPLE, (v - lo) / span));
  for (let m = 0; m < marks.length; m++) {
    for (let b = 0; b < bins; b++) {
      const v = values[m * bins + b];
      g.fillStyle = `rgb(${shade(v)})`;
      g.fillRect(left + b * cell, top + m * rowH, Math.ceil(cell), rowH - 2);
    }
  }
  g.fillStyle = '#1d2430';
  g.font = '600 13px system-ui, sans-serif';
  g.fillText(title, left, 18);
  g.font = '12px system-ui, sans-serif';
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  marks.forEach((mk, m) => g.fillText(mk, left - 6, top + m * rowH + rowH / 2 - 1));
  // x axis: kb from the TSS, which sits between the two middle bins
  const half = (bins * binSize) / 2000;
  const step = niceStep(2 * half);
  const y0 = top + marks.length * rowH;
  g.textAlign = 'center';
  g.textBaseline = 'top';
  g.strokeStyle = '#1d2430';
  for (let t = -Math.floor(half / step) * step; t <= half + 1e-9; t += step) {
    const x = left + ((t + half) / (2 * half)) * plotW;
    g.beginPath();
    g.moveTo(x, y0);
    g.lineTo(x, y0 + 4);
    g.stroke();
    g.fillText(`${+t.toFixed(2)}`, x, y0 + 6);
  }
  g.fillText('kb from TSS (dashed line)', left + plotW / 2, y0 + 24);
  g.setLineDash([4, 3]);
  g.beginPath();
  g.moveTo(left + plotW / 2, top - 4);
  g.lineTo(left + plotW / 2, y0);
  g.stroke();
  g.setLineDash([]);
  // colour bar
  const bx = W - right + 16;
  const bh = marks.length * rowH - 2;
  for (let k = 0; k < bh; k++) {
    const t = 1 - k / bh;
    g.fillStyle = `rgb(${shade(diverging ? (2 * t - 1) * lim : lo + t * span)})`;
    g.fillRect(bx, top + k, 12, 1);
  }
  g.fillStyle = '#1d2430';
  g.textAlign = 'left';
  g.textBaseline = 'middle';
  g.fillText(`${diverging ? '+' : ''}${lim.toPrecision(2)}`, bx + 16, top + 5);
  g.fillText(diverging ? `-${lim.toPrecision(2)}` : lo.toPrecision(2), bx + 16, top + bh - 5);
  g.save();
  g.translate(W - 8, top + bh / 2);
  g.rotate(-Math.PI / 2);
  g.textAlign = 'center';
  g.fillText(unit, 0, 0);
  g.restore();
}

function drawGene(m) {
  const r = result;
  const { marks, bins, binSize } = r.layout;
  const M = marks.length;
  const id = r.ids[m.index];
  const p = r.probability[m.index];
  $('gene-title').textContent = `${id}: P(expressed) ${p.toFixed(4)}, label ${r.labels[m.index]}`;
  const attr = new Float64Array(M * bins);
  for (let b = 0; b < bins; b++) for (let k = 0; k < M; k++) attr[k * bins + b] = m.occlusion[b * M + k];
  const c1 = $('heat-attr');
  c1.hidden = false;
  heatmap(c1, {
    title: `Occlusion: logit drop when a mark is removed from ${m.window} bin${m.window > 1 ? 's' : ''}`,
    values: attr, marks, bins, binSize, diverging: true, unit: 'logit drop',
  });
  const c2 = $('heat-attn');
  if (m.attention) {
    const w = new Float64Array(M * bins);
    for (let k = 0; k < M; k++) {
      for (let b = 0; b < bins; b++) w[k * bins + b] = m.attention.bin[k * bins + b] * m.attention.mark[k];
    }
    c2.hidden = false;
    heatmap(c2, {
      title: 'Attention: bin weight x mark weight', values: w, marks, bins, binSize, diverging: false, unit: 'attention',
    });
  } else {
    c2.hidden = true;
  }
  const lim = Math.max(...m.shapley.map(Math.abs)) || 1;
  const rows = marks.map((mk, k) => {
    const v = m.shapley[k];
    const w = Math.round((Math.abs(v) / lim) * 180);
    return `<tr><td>${escape(mk)}</td><td class="num">${v >= 0 ? '+' : ''}${v.toFixed(3)}</td>` +
      `<td><span class="bar ${v >= 0 ? 'pos' : 'neg'}" style="width:${w}px"></span></td></tr>`;
  });
  $('shapley').innerHTML = '<table><thead><tr><th>mark</th><th class="num">Shapley value (logit)</th><th></th></tr></thead>' +
    `<tbody>${rows.join('')}</tbody></table><p class="muted">logit ${m.value.toFixed(3)} = ` +
    `${m.baseline.toFixed(3)} with every mark removed + the sum of the Shapley values.</p>`;
}

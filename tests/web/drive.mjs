// Drives export/web in a real headless Chromium (playwright-core) for tests/web and
// benchmarks/web.py:  node drive.mjs PLAN.json
// PLAN: {url, query?, out, chromium, playwright, jobs: [{name, example?, csv?, model?,
// card?, sort? (column keys to click), explain? (a gene id) or explain_row?,
// screenshot?}]}. Writes OUT/report.json and, per job, OUT/NAME.tsv (the page's
// download) and OUT/NAME.png when asked.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const { chromium } = require(plan.playwright);

const browser = await chromium.launch({
  executablePath: plan.chromium || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--disable-default-apps', '--no-first-run', '--disable-dev-shm-usage'],
});
const report = { jobs: [], console: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  page.on('console', (m) => { if (m.type() === 'error') report.console.push(m.text()); });
  page.on('pageerror', (e) => report.console.push(String(e)));
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(plan.url + (plan.query || ''));
  const state = (want) => page.waitForFunction(
    (w) => w.includes(document.body.dataset.state), want, { timeout: plan.timeout_ms || 300000 });
  await state(plan.expect_failure ? ['ready', 'failed'] : ['ready']);
  report.state = await page.evaluate(() => document.body.dataset.state);
  report.error = await page.textContent('#error');
  report.isolated = await page.evaluate(() => self.crossOriginIsolated);
  report.env = await page.textContent('#env');
  if (plan.empty_screenshot) await page.screenshot({ path: path.join(plan.out, 'empty.png'), fullPage: true });
  for (const job of report.state === 'failed' ? [] : plan.jobs) {
    const r = { name: job.name };
    if (job.example) {
      await page.click('#example');
    } else {
      await page.setInputFiles('#csv', job.csv);
      await page.setInputFiles('#model', job.model);
      await page.setInputFiles('#card', job.card ? [job.card] : []);
      await page.click('#score');
    }
    const t0 = Date.now();
    await page.waitForFunction(() => document.body.dataset.state === 'scoring');
    await state(['scored', 'error']);
    r.wall_seconds = (Date.now() - t0) / 1000;
    r.state = await page.evaluate(() => document.body.dataset.state);
    if (r.state === 'error') {
      r.error = await page.textContent('#error');
    } else {
      r.summary = await page.textContent('#summary');
      r.timing = await page.evaluate(() => window.chromaformerScored);
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      r.download_name = download.suggestedFilename();
      await download.saveAs(path.join(plan.out, `${job.name}.tsv`));
      if (job.sort) {
        for (const click of [].concat(job.sort)) await page.click(`#genes th[data-key="${click}"]`);
      }
      if (job.explain !== undefined || job.explain_row !== undefined) {
        if (job.explain !== undefined) await page.fill('#filter', job.explain);
        await page.click(`#genes tbody tr:nth-child(${(job.explain_row || 0) + 1})`);
        await state(['explained']);
        r.explained = await page.evaluate(() => {
          const m = window.chromaformerExplained;
          return { index: m.index, value: m.value, baseline: m.baseline, window: m.window,
            shapley: Array.from(m.shapley), occlusion: Array.from(m.occlusion),
            attention: Boolean(m.attention) };
        });
        r.title = await page.textContent('#gene-title');
      }
      r.first_rows = await page.$$eval('#genes tbody tr', (rows) => rows.slice(0, 3).map((t) => t.innerText));
    }
    if (job.screenshot) await page.screenshot({ path: path.join(plan.out, `${job.name}.png`), fullPage: true });
    report.jobs.push(r);
  }
  const origin = new URL(plan.url).origin;
  report.foreign_requests = requests.filter((u) => !u.startsWith(origin) && !u.startsWith('blob:') && !u.startsWith('data:'));
} finally {
  await browser.close();
}
fs.writeFileSync(path.join(plan.out, 'report.json'), JSON.stringify(report, null, 1));

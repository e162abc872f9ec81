// Page speed in headless chromium (a benchmark, not a test), for the tiny test model and a
// default-sized model with random weights, on the CPU fallback and on WebGPU (SwiftShader
// here, a software adapter: asked for with ?backend=webgpu), the CPU fallback on one thread and
// on every core (?threads=N, www/model/parallel.js). Per run it reports:
// - ready: page load to the Generate button enabled (wasm, weights fetch and validation);
// - first step: Generate clicked to the first reverse step drawn;
// - ms/step: the page's own figure (#timing: the average of the last 20 steps when the run
//   has more than 20, else the last step alone), for the page's first run and a second one;
// - longest main-thread task while the run went (PerformanceObserver 'longtask', which only
//   reports tasks over 50 ms: "< 50" means none was reported).
// `make page-bench` writes both weights files and runs this; it prints a Markdown table.

import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { MAX_THREADS } from '../../www/model/parallel.js';
import { launch, openPage, settle } from './browser.mjs';
import { serve } from './server.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// The tiny model runs 21 DDIM steps (the first, warm-up step left out of the average); the
// default-sized one is hundreds of ms per step on the CPU, so it runs 4 and reports the last.
// SwiftShader would take minutes per step for it: not run.
const tiny = { name: 'tiny (16x16, 0.18 M)', file: 'target/e2e/tiny.safetensors', steps: 21 };
const defaultSize = { name: 'default size (64x64, 8.95 M)', file: 'target/e2e/default-random.safetensors', steps: 4 };
// The CPU fallback on one thread and on every core the browser reports (www/model/parallel.js).
const cores = Math.min(MAX_THREADS, availableParallelism());
const cases = [
  { model: tiny, batch: 4, webgpu: false, threads: 1 },
  { model: tiny, batch: 4, webgpu: false, threads: cores },
  { model: tiny, batch: 4, webgpu: true },
  { model: defaultSize, batch: 1, webgpu: false, threads: 1 },
  { model: defaultSize, batch: 4, webgpu: false, threads: 1 },
  { model: defaultSize, batch: 4, webgpu: false, threads: cores },
];

/** Records, from the first script on, long tasks and when each drawn step arrived. */
function instrument() {
  window.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) window.__longTasks.push({ start: entry.startTime, ms: entry.duration });
  }).observe({ type: 'longtask', buffered: true });
  window.__stepAt = {};
  window.addEventListener('ddpm:frame', (event) => { window.__stepAt[event.detail.step] ??= performance.now(); });
}

async function measure({ model, batch, webgpu, threads }, server) {
  const browser = await launch(webgpu);
  try {
    const backend = webgpu ? '&backend=webgpu' : `&backend=cpu&threads=${threads}`;
    const url = `${server.url}/index.html?weights=/bench/${model.file}${backend}`;
    const { page } = await openPage(browser, url, undefined, { record: false });
    await page.addInitScript(instrument);
    await page.reload();
    const ready = await settle(page, ['ready', 'error']);
    if (ready !== 'ready') return { failed: await page.locator('#error').textContent() };
    const readyMs = await page.evaluate(() => performance.now());
    // The fingerprint check runs right after loading (the page before the worker failed a
    // Generate clicked while it ran: the benchmark measures speed, not that race).
    await page.waitForFunction(() => document.body.dataset.fingerprint, null, { timeout: 240_000 });
    // On the CPU: every helper thread has loaded the weights.
    await page.waitForFunction(() => document.body.dataset.threads, null, { timeout: 240_000 });
    await page.selectOption('#batch', String(batch));
    await page.selectOption('#sampler', 'ddim');
    await page.fill('#steps', String(model.steps));
    await page.fill('#seed', '1');
    const clickedAt = await page.evaluate(() => {
      const at = performance.now();
      document.getElementById('generate').click();
      return at;
    });
    const state = await settle(page, ['done', 'error']);
    if (state !== 'done') return { failed: await page.locator('#error').textContent() };
    const first = await page.evaluate(() => ({
      stepAt: window.__stepAt, longTasks: window.__longTasks,
      average: document.getElementById('timing').dataset.msPerStep,
      last: document.getElementById('timing').dataset.lastStepMs,
      backend: document.getElementById('backend').dataset.backend,
      threads: document.getElementById('timing').dataset.threads,
    }));
    const during = first.longTasks.filter((task) => task.start >= clickedAt).map((task) => task.ms);
    const figure = (timing) => Number(model.steps > 20 ? timing.average : timing.last);
    // A second run on the same page: wasm code is compiled lazily and tiered up as it runs, and
    // buffers are allocated once, so the first run of a fresh page is the slower one.
    await page.evaluate(() => { document.body.dataset.state = 'again'; document.getElementById('generate').click(); });
    if (await settle(page, ['done', 'error']) !== 'done') return { failed: await page.locator('#error').textContent() };
    const second = await page.evaluate(() => ({
      average: document.getElementById('timing').dataset.msPerStep,
      last: document.getElementById('timing').dataset.lastStepMs,
    }));
    return {
      backend: first.backend,
      threads: first.threads,
      readyMs,
      firstStepMs: first.stepAt[1] - clickedAt,
      msPerStep: figure(first),
      secondRunMsPerStep: figure(second),
      longestTaskMs: during.length ? Math.max(...during) : null,
    };
  } finally {
    await browser.close();
  }
}

function row({ model, batch, webgpu }, figures) {
  const where = webgpu ? 'WebGPU SwiftShader' : 'CPU fallback';
  if (figures.failed) return `| ${model.name} | ${batch} | ${where} | | failed: ${figures.failed} | | | |`;
  const longest = figures.longestTaskMs === null ? '< 50' : figures.longestTaskMs.toFixed(0);
  return `| ${model.name} | ${batch} | ${where} (${figures.backend}) | ${webgpu ? '' : figures.threads} | `
    + `${figures.msPerStep.toFixed(1)} / ${figures.secondRunMsPerStep.toFixed(1)} | `
    + `${longest} | ${figures.readyMs.toFixed(0)} | ${figures.firstStepMs.toFixed(0)} |`;
}

const routes = {};
for (const model of [tiny, defaultSize]) {
  if (!existsSync(join(root, model.file))) throw new Error(`missing ${model.file}: run make page-bench`);
  routes[`/bench/${model.file}`] = join(root, model.file);
}
const server = await serve(root, routes);
try {
  console.log('| model | batch | backend | CPU threads | ms/step (first run / second run) | longest main-thread task during the run (ms) | ready (ms) | first step after click (ms) |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const benchCase of cases) console.log(row(benchCase, await measure(benchCase, server)));
} finally {
  await server.close();
}

// Page speed in headless chromium (a benchmark, not a test), for the tiny test model and a
// default-sized model with random weights, on the CPU fallback and on WebGPU (SwiftShader
// here, a software adapter: asked for with ?backend=webgpu). Per run it reports:
// - ready: page load to the Generate button enabled (wasm, weights fetch and validation);
// - first step: Generate clicked to the first reverse step drawn;
// - ms/step: the page's own figure (#timing: the average of the last 20 steps when the run
//   has more than 20, else the last step alone);
// - longest main-thread task while the run went (PerformanceObserver 'longtask', which only
//   reports tasks over 50 ms: "< 50" means none was reported).
// `make page-bench` writes both weights files and runs this; it prints a Markdown table.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { launch, openPage, settle } from './browser.mjs';
import { serve } from './server.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// The tiny model runs 21 DDIM steps (the first, warm-up step left out of the average); the
// default-sized one is hundreds of ms per step on the CPU, so it runs 4 and reports the last.
// SwiftShader would take minutes per step for it: not run.
const models = [
  { name: 'tiny (16x16, 0.18 M)', file: 'target/e2e/tiny.safetensors', batch: 4, steps: 21, webgpu: true },
  { name: 'default size (64x64, 8.95 M)', file: 'target/e2e/default-random.safetensors', batch: 1, steps: 4, webgpu: false },
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

async function measure(model, webgpu, server) {
  const browser = await launch(webgpu);
  try {
    const backend = webgpu ? '&backend=webgpu' : '&backend=cpu';
    const { page } = await openPage(browser, `${server.url}/index.html?weights=/bench/${model.file}${backend}`);
    await page.addInitScript(instrument);
    await page.reload();
    const ready = await settle(page, ['ready', 'error']);
    if (ready !== 'ready') return { failed: await page.locator('#error').textContent() };
    const readyMs = await page.evaluate(() => performance.now());
    // The fingerprint check runs right after loading (the page before the worker failed a
    // Generate clicked while it ran: the benchmark measures speed, not that race).
    await page.waitForFunction(() => document.body.dataset.fingerprint, null, { timeout: 240_000 });
    await page.selectOption('#batch', String(model.batch));
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
    const figures = await page.evaluate(() => ({
      stepAt: window.__stepAt, longTasks: window.__longTasks,
      average: document.getElementById('timing').dataset.msPerStep,
      last: document.getElementById('timing').dataset.lastStepMs,
      backend: document.getElementById('backend').dataset.backend,
    }));
    const during = figures.longTasks.filter((task) => task.start >= clickedAt).map((task) => task.ms);
    return {
      backend: figures.backend,
      readyMs,
      firstStepMs: figures.stepAt[1] - clickedAt,
      msPerStep: Number(model.steps > 20 ? figures.average : figures.last),
      longestTaskMs: during.length ? Math.max(...during) : null,
    };
  } finally {
    await browser.close();
  }
}

function row(model, where, figures) {
  if (figures.failed) return `| ${model.name} | ${model.batch} | ${where} | failed: ${figures.failed} | | | |`;
  const longest = figures.longestTaskMs === null ? '< 50' : figures.longestTaskMs.toFixed(0);
  return `| ${model.name} | ${model.batch} | ${where} (${figures.backend}) | ${figures.msPerStep.toFixed(1)} | `
    + `${longest} | ${figures.readyMs.toFixed(0)} | ${figures.firstStepMs.toFixed(0)} |`;
}

const routes = {};
for (const model of models) {
  if (!existsSync(join(root, model.file))) throw new Error(`missing ${model.file}: run make page-bench`);
  routes[`/bench/${model.file}`] = join(root, model.file);
}
const server = await serve(root, routes);
try {
  console.log('| model | batch | backend | ms/step | longest main-thread task during the run (ms) | ready (ms) | first step after click (ms) |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const model of models) {
    console.log(row(model, 'CPU fallback', await measure(model, false, server)));
    if (model.webgpu) console.log(row(model, 'WebGPU SwiftShader', await measure(model, true, server)));
  }
} finally {
  await server.close();
}

// Page speed in headless chromium (a benchmark, not a test): ms per reverse step on the CPU
// fallback and on WebGPU (SwiftShader here, a software adapter: asked for with
// ?backend=webgpu), for the tiny test model and a default-sized model with random weights.
// `make page-bench` writes both weights files and runs this; it prints a Markdown table.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { launch, openPage, settle } from './browser.mjs';
import { serve } from './server.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// The tiny model runs 21 DDIM steps and reports the page's average of the last 20 (the first,
// warm-up step left out); the default-sized one is seconds per step on the CPU, so it runs 3
// and reports the last. SwiftShader would take minutes per step for it: not run.
const models = [
  { name: 'tiny (16x16, 0.18 M)', file: 'target/e2e/tiny.safetensors', batch: 4, steps: 21, webgpu: true },
  { name: 'default size (64x64, 8.95 M)', file: 'target/e2e/default-random.safetensors', batch: 1, steps: 3, webgpu: false },
];

async function msPerStep(model, webgpu, server) {
  const browser = await launch(webgpu);
  try {
    const backend = webgpu ? '&backend=webgpu' : '&backend=cpu';
    const hash = `#seed=1&batch=${model.batch}&sampler=ddim&steps=${model.steps}&clip=1`;
    const url = `${server.url}/index.html?weights=/bench/${model.file}${backend}${hash}`;
    const { page } = await openPage(browser, url);
    const state = await settle(page, ['done', 'error']);
    if (state !== 'done') return `failed: ${await page.locator('#error').textContent()}`;
    const used = await page.locator('#backend').getAttribute('data-backend');
    const figure = model.steps > 20 ? 'data-ms-per-step' : 'data-last-step-ms';
    const ms = await page.locator('#timing').getAttribute(figure);
    return `${Number(ms).toFixed(1)} (${used})`;
  } finally {
    await browser.close();
  }
}

const routes = {};
for (const model of models) {
  if (!existsSync(join(root, model.file))) throw new Error(`missing ${model.file}: run make page-bench`);
  routes[`/bench/${model.file}`] = join(root, model.file);
}
const server = await serve(root, routes);
try {
  console.log('| model | batch | CPU fallback ms/step | WebGPU (SwiftShader) ms/step |');
  console.log('| --- | --- | --- | --- |');
  for (const model of models) {
    const cpu = await msPerStep(model, false, server);
    const gpu = model.webgpu ? await msPerStep(model, true, server) : 'not run (minutes per step)';
    console.log(`| ${model.name} | ${model.batch} | ${cpu} | ${gpu} |`);
  }
} finally {
  await server.close();
}

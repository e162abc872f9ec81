// The model runs in a Web Worker (www/model/): in a real browser, a Generate clicked at any
// moment starts a run (never an aliasing error), the page answers input while the CPU backend
// computes the default-sized model, a run goes on in a hidden tab, the worker's frames equal
// those of the Generator called on the main thread (the path the page used before), a batch
// run over several CPU threads gives the frames of one, and ?bench=1 prints its table. Needs `make pkg` and the weights `make e2e` writes.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { launch, maxAbsDiff, openPage, settle } from './browser.mjs';
import { serve } from './server.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const tinyWeights = join(root, 'target/e2e/tiny.safetensors');
// Random weights of the default size (64x64, 8.95 M parameters): the published model's cost.
const defaultSizeWeights = join(root, 'target/e2e/default-random.safetensors');
const TINY = '?weights=/test/tiny.safetensors';
const DEFAULT_SIZE = '?weights=/test/default-random.safetensors';
// The same bound page.test.mjs puts on WebGPU against the CPU (any one pixel channel).
const CROSS_BACKEND_MAX_DIFFERENCE = 8;
// A task longer than this on the main thread is a stutter a user notices (RAIL's 100 ms).
const RESPONSIVE_MS = 100;

let server;

before(async () => {
  assert.ok(existsSync(join(root, 'www/pkg/ddpm_avatars.js')), 'build the page first: make pkg');
  assert.ok(existsSync(tinyWeights) && existsSync(defaultSizeWeights), 'make the test weights first: make e2e');
  server = await serve(root, {
    '/test/tiny.safetensors': tinyWeights,
    '/test/default-random.safetensors': defaultSizeWeights,
  });
});

after(async () => {
  await server?.close();
});

function open(browser, path, initScript) {
  return openPage(browser, `${server.url}/index.html${path}`, initScript);
}

/**
 * Clicks Generate in the same task that enables it (a MutationObserver fires before the page's
 * next await), with DDIM `steps` chosen first. Records whether the fingerprint check, the
 * model call the page starts right after enabling the button, was still running then.
 */
function clickGenerateTheInstantItIsEnabled(steps) {
  document.addEventListener('DOMContentLoaded', () => {
    const button = document.getElementById('generate');
    const observer = new MutationObserver(() => {
      if (button.disabled) return;
      observer.disconnect();
      document.getElementById('sampler').value = 'ddim';
      document.getElementById('steps').value = String(steps);
      window.__fingerprintPendingAtClick = document.body.dataset.fingerprint === undefined;
      button.click();
    });
    observer.observe(button, { attributes: true, attributeFilter: ['disabled'] });
  });
}

for (const webgpu of [true, false]) {
  const name = webgpu ? 'WebGPU (SwiftShader)' : 'the CPU';
  test(`Generate clicked the instant it is enabled starts a run on ${name}`, async () => {
    const browser = await launch(webgpu);
    try {
      const backend = webgpu ? '&backend=webgpu' : '&backend=cpu';
      const { page, problems } = await open(browser, TINY + backend, [clickGenerateTheInstantItIsEnabled, 3]);
      assert.equal(await settle(page), 'done', await page.locator('#error').textContent());
      assert.equal(await page.evaluate(() => window.__fingerprintPendingAtClick), true,
        'the click came while the fingerprint check was still in the worker');
      assert.equal(await page.locator('#error').textContent(), '');
      assert.deepEqual((await page.evaluate(() => window.__frames)).map((f) => f.step), [0, 1, 2, 3]);
      assert.equal(await page.locator('#backend').getAttribute('data-backend'), webgpu ? 'webgpu-f32' : 'cpu');
      // Time to the first step, on the page: download, check, Generate to step 1.
      const figures = await page.locator('#figures').evaluate((el) => ({ ...el.dataset }));
      for (const key of ['fetchMs', 'checkMs', 'firstStepMs']) {
        assert.ok(Number(figures[key]) > 0, `#figures has ${key}: ${JSON.stringify(figures)}`);
      }
      await page.waitForFunction(() => document.body.dataset.fingerprint === 'ok');
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });
}

test('Generate while a teaching view computes, and a language switch mid-run, both just work', async () => {
  const browser = await launch(false);
  try {
    const { page, problems } = await open(browser, `${TINY}&backend=cpu&lang=en#view=interpolate`);
    assert.equal(await settle(page, ['ready', 'error']), 'ready');
    await page.selectOption('#sampler', 'ddim');
    await page.fill('#steps', '40');
    // The interpolation (8 images, 50 DDIM steps) is queued in the worker, then the main run.
    await page.click('[data-testid=interp-run]');
    await page.click('#generate');
    await page.waitForFunction(() => (window.__frames.at(-1)?.step ?? 0) >= 2);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'running');
    await page.click('#lang-toggle');
    assert.equal(await settle(page), 'done', await page.locator('#error').textContent());
    await page.waitForFunction(() => document.querySelector('[data-testid=interp-canvas]').dataset.done);
    assert.equal(await page.locator('#status').textContent(), '完成：共 40 步。');
    assert.equal(await page.locator('#error').textContent(), '');
    const steps = (await page.evaluate(() => window.__frames)).map((f) => f.step);
    assert.deepEqual(steps, Array.from({ length: 41 }, (_, i) => i), 'every step drawn, in order');
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

/** Long main-thread tasks (the browser reports those over 50 ms) and the pause click's delay. */
function watchResponsiveness() {
  window.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) window.__longTasks.push({ start: entry.startTime, ms: entry.duration });
  }).observe({ type: 'longtask' });
  document.addEventListener('click', (event) => {
    // From the input event's creation to its handler: what a user waits before anything happens.
    if (event.target.id === 'pause') window.__pauseDelays = [...(window.__pauseDelays ?? []), performance.now() - event.timeStamp];
  }, true);
}

test('the page stays responsive while the CPU backend runs the default-sized model', async () => {
  const browser = await launch(false);
  try {
    const { page, problems } = await open(browser, `${DEFAULT_SIZE}&backend=cpu`, [watchResponsiveness]);
    assert.equal(await settle(page, ['ready', 'error']), 'ready', await page.locator('#error').textContent());
    await page.selectOption('#batch', '1');
    await page.selectOption('#sampler', 'ddim');
    await page.fill('#steps', '5');
    const startedAt = await page.evaluate(() => performance.now());
    await page.click('#generate');
    await page.waitForFunction(() => (window.__frames.at(-1)?.step ?? 0) >= 1);
    // Mid-run: the worker is inside a step of hundreds of ms; the click is handled at once.
    await page.click('#pause');
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'paused');
    const pausedAt = await page.evaluate(() => window.__frames.at(-1).step);
    await page.waitForTimeout(1500);
    const stillAt = await page.evaluate(() => window.__frames.at(-1).step);
    assert.ok(stillAt <= pausedAt + 1, `a paused run stops within a step (${pausedAt} -> ${stillAt})`);
    await page.click('#pause');
    assert.equal(await settle(page), 'done', await page.locator('#error').textContent());
    const { tasks, delays, msPerStep } = await page.evaluate((since) => ({
      tasks: window.__longTasks.filter((task) => task.start >= since).map((task) => task.ms),
      delays: window.__pauseDelays,
      msPerStep: Number(document.getElementById('timing').dataset.msPerStep),
    }), startedAt);
    assert.equal(delays.length, 2);
    assert.ok(Math.max(...delays) < RESPONSIVE_MS, `the pause clicks waited ${delays.map(Math.round)} ms`);
    assert.ok(msPerStep > RESPONSIVE_MS, `the model's steps are long (${msPerStep} ms): the test means something`);
    const longest = tasks.length ? Math.max(...tasks) : 0;
    assert.ok(longest < RESPONSIVE_MS, `main-thread tasks during the run: ${tasks.map(Math.round)} ms`);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

/** What a hidden tab looks like to a page: `document.hidden`, and no animation frames. */
function hideTheTab() {
  Object.defineProperty(document, 'hidden', { get: () => true, configurable: true });
  Object.defineProperty(document, 'visibilityState', { get: () => 'hidden', configurable: true });
  window.requestAnimationFrame = () => 0; // a background tab runs none
}

test('a run in a hidden tab still advances to the end', async () => {
  const browser = await launch(false);
  try {
    const { page, problems } = await open(browser, `${TINY}&backend=cpu#seed=2&batch=4&sampler=ddim&steps=10&clip=1`, [hideTheTab]);
    assert.equal(await page.evaluate(() => document.hidden), true);
    assert.equal(await settle(page), 'done', await page.locator('#error').textContent());
    assert.equal((await page.evaluate(() => window.__frames)).length, 11);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

for (const webgpu of [false, true]) {
  const name = webgpu ? 'WebGPU (SwiftShader)' : 'the CPU';
  test(`on ${name}, the worker's frames equal those of the Generator called on the main thread`, async (t) => {
    const browser = await launch(webgpu);
    try {
      const backend = webgpu ? '&backend=webgpu' : '&backend=cpu';
      const { page, problems } = await open(browser, `${TINY}${backend}#seed=5&batch=4&sampler=ddim&steps=4&clip=1`);
      assert.equal(await settle(page), 'done', await page.locator('#error').textContent());
      const drawn = (await page.evaluate(() => window.__frames)).map((frame) => frame.pixels);
      // The path before the worker: the wasm Generator on this thread, every step's grid
      // converted on the host from raw values (the worker's frames are packed on the device).
      const direct = await page.evaluate(async (useWebgpu) => {
        const { Generator } = await import('/www/pkg/ddpm_avatars.js');
        const bytes = new Uint8Array(await (await fetch('/test/tiny.safetensors')).arrayBuffer());
        const generator = await Generator.create(bytes, useWebgpu);
        generator.start({ seed: 5, batch: 4, sampler: 'ddim', steps: 4, clip: true });
        const frames = [await generator.preview(true)];
        for (let step = 1; step <= 4; step += 1) frames.push(await generator.step({ draw: true, raw: true }));
        return frames.map((frame) => Array.from(frame.rgba));
      }, webgpu);
      assert.equal(drawn.length, direct.length);
      const differences = drawn.map((pixels, i) => maxAbsDiff(pixels, direct[i]));
      t.diagnostic(`largest pixel difference per step: ${differences}`);
      assert.ok(Math.max(...differences) <= CROSS_BACKEND_MAX_DIFFERENCE, `differences ${differences}`);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });
}

/**
 * In the page: the same calls on two model workers, one running batches on one thread, the
 * other on `threads` (www/model/parallel.js): a run from noise, a twin's run from given images,
 * and a run whose later seeds are too large to split. Returns every frame of both.
 */
async function framesOnOneAndManyThreads(threads) {
  const { ModelWorker } = await import('/www/model/client.js');
  const { initialNoise } = await import('/www/pkg/ddpm_avatars.js');
  const module = await WebAssembly.compileStreaming(fetch('/www/pkg/ddpm_avatars_bg.wasm'));
  const bytes = new Uint8Array(await (await fetch('/test/tiny.safetensors')).arrayBuffer());
  const plain = (frame) => Object.fromEntries(Object.entries(frame).filter(([key]) => key !== 'modelMs')
    .map(([key, value]) => [key, ArrayBuffer.isView(value) ? Array.from(value) : value && typeof value === 'object' ? plain(value) : value]));
  const framesOf = async (count) => {
    const worker = ModelWorker.open(module);
    try {
      const generator = await worker.load(bytes, false, count);
      const started = await generator.threads();
      const frames = [];
      const run = async (target, steps) => {
        frames.push(plain(await target.preview(true)));
        for (let step = 1; step <= steps; step += 1) {
          frames.push(plain(await target.step({ draw: true, x0: true, raw: true, focus: step % 4 })));
        }
      };
      await generator.start({ seed: 9, batch: 4, sampler: 'ddim', steps: 3, clip: true });
      await run(generator, 3);
      const twin = generator.twin();
      await twin.startFrom(initialNoise(40, 4, 3 * 16 * 16), 500, { seed: 40, sampler: 'ddpm', clip: true });
      await run(twin, 2);
      await generator.start({ seed: Number.MAX_SAFE_INTEGER - 1, batch: 4, sampler: 'ddim', steps: 2 });
      await run(generator, 1);
      return { started, frames };
    } finally {
      worker.close();
    }
  };
  return { one: await framesOf(1), many: await framesOf(threads) };
}

test('on the CPU, a batch run over 3 threads gives exactly the frames of one thread', async () => {
  const browser = await launch(false);
  try {
    const { page, problems } = await open(browser, `${TINY}&backend=cpu&threads=3#seed=9&batch=4&sampler=ddim&steps=3&clip=1`);
    assert.equal(await settle(page), 'done', await page.locator('#error').textContent());
    // The link's run started at once: it waited for the helpers, then ran on all 3 threads.
    assert.equal(await page.locator('#timing').getAttribute('data-threads'), '3');
    assert.match(await page.locator('#timing').textContent(), /on 3 CPU threads/);
    const drawn = (await page.evaluate(() => window.__frames)).map((frame) => frame.pixels);
    const { one, many } = await page.evaluate(framesOnOneAndManyThreads, 3);
    assert.equal(one.started, 1);
    assert.equal(many.started, 3, 'the helper workers all started');
    // 4 images over 3 threads: parts of 2, 1 and 1; the last run has seeds past 2^53: one thread.
    const threadsPerFrame = many.frames.map((frame) => frame.threads);
    assert.deepEqual(threadsPerFrame, [...Array(4 + 3).fill(3), undefined, undefined]);
    assert.equal(many.frames.length, one.frames.length);
    for (const [i, frame] of many.frames.entries()) {
      const { threads, ...same } = frame;
      assert.deepEqual(same, one.frames[i], `frame ${i}: pixels, x0, raw values, focus and counters`);
    }
    // The page's run had the settings of the first run above: it drew the one-thread frames.
    assert.deepEqual(drawn, one.frames.slice(0, 4).map((frame) => frame.rgba));
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test('?bench=1 runs the fixed benchmark and shows its table; the page stays usable', async () => {
  const browser = await launch(false);
  try {
    const { page, problems } = await open(browser, `${TINY}&backend=cpu&bench=1`);
    await page.waitForFunction(() => document.body.dataset.bench, null, { timeout: 120_000 });
    assert.equal(await page.evaluate(() => document.body.dataset.bench), 'done', await page.locator('#bench-status').textContent());
    const rows = JSON.parse(await page.locator('#bench-table').getAttribute('data-rows'));
    assert.deepEqual(rows.map((row) => [row.batch, row.steps]), [[1, 20], [16, 20]]);
    // After every helper started: batch 16 runs on all the page's threads, batch 1 on one.
    const threads = Number(await page.evaluate(() => document.body.dataset.threads));
    assert.ok(threads >= 1);
    assert.deepEqual(rows.map((row) => row.threads), [1, threads]);
    for (const row of rows) {
      for (const key of ['firstStepMs', 'modelMs', 'wallMs']) assert.ok(row[key] > 0, `${key} in ${JSON.stringify(row)}`);
      assert.ok(row.drawMs >= 0 && row.wallMs >= row.modelMs, JSON.stringify(row));
    }
    const table = await page.locator('#bench-table').textContent();
    assert.match(table, /\| cpu \| 1 \| 1 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/);
    assert.match(table, new RegExp(`\\| cpu \\| 16 \\| ${threads} \\|`));
    assert.ok(await page.locator('#bench-table').isVisible());
    await page.click('#generate');
    assert.equal(await settle(page), 'done');
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

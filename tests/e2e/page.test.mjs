// The page in a real browser (Debian chromium via playwright-core): WebGPU (SwiftShader) and
// CPU fallback runs, reproducible share links, agreement across backends, bad weights URLs.
// Needs `make pkg` (www/pkg) and target/e2e/tiny.safetensors (`cargo run --example tiny_weights`).

import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { cachedWeights, launch, maxAbsDiff, meanAbsDiff, openPage, settle } from './browser.mjs';
import { notFound, serve } from './server.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const tinyWeights = join(root, 'target/e2e/tiny.safetensors');
const garbageWeights = join(root, 'target/e2e/garbage.safetensors');
// `trainer sample` of the same run as RUN_HASH, written by `make e2e`.
const nativeSample = join(root, 'target/e2e/native.png');
const RUN_HASH = '#seed=5&batch=1&sampler=ddim&steps=4&clip=1';
const TINY = '?weights=/test/tiny.safetensors';
// Largest mean absolute difference (in 0..255 pixel units) allowed between the WebGPU and the
// CPU result of the same run: float summation order differs between the backends.
const CROSS_BACKEND_TOLERANCE = 2;
// Largest difference of any one pixel channel allowed between them. Measured here (chromium's
// SwiftShader WebGPU against the CPU backend, this run): 0, both mean and max. A real GPU sums
// in another order and may move a few pixels by a level or two; 8 levels leaves room for that
// and still fails on any pixel that visibly differs, which a mean bound alone lets through.
const CROSS_BACKEND_MAX_DIFFERENCE = 8;
// The same for the page against `trainer sample` (wasm against native, both on the CPU).
// Measured here: 0, both mean and max; 2 levels leave room for rounding only.
const NATIVE_MAX_DIFFERENCE = 2;
// Bigger than the page's 64 MiB limit for weights files.
const HUGE_BYTES = 256 * 1024 * 1024;
// The page's default on the CPU: the small model (www/models.js). The full-size file is not
// on this server, so the page loads the small one without offering a choice (models.test.mjs
// covers both files, either one, and neither).
const DEFAULT_WEIGHTS = '/www/weights/avatars-64-small.safetensors';
const FULL_WEIGHTS = '/www/weights/avatars-64.safetensors';

let server;
const finals = {};
const huge = { declared: zeros(HUGE_BYTES, true), streamed: zeros(HUGE_BYTES, false) };

/**
 * A server answering with `total` zero bytes, with or without a Content-Length (a server may
 * leave it out), and counting how many it got to send before the page hung up.
 */
function zeros(total, declareLength) {
  const record = { sent: 0 };
  const chunk = Buffer.alloc(1024 * 1024);
  record.handler = (request, response) => {
    const headers = { 'Content-Type': 'application/octet-stream', 'Cache-Control': 'no-store' };
    if (declareLength) headers['Content-Length'] = String(total);
    response.writeHead(200, headers);
    const pump = () => {
      while (record.sent < total && !response.destroyed) {
        record.sent += chunk.length;
        if (!response.write(chunk)) {
          response.once('drain', pump); // the page reads slower than this writes
          return;
        }
      }
      response.end();
    };
    pump();
  };
  return record;
}

before(async () => {
  assert.ok(existsSync(join(root, 'www/pkg/ddpm_avatars.js')), 'build the page first: make pkg');
  assert.ok(existsSync(tinyWeights), 'make the test weights first: cargo run --example tiny_weights');
  writeFileSync(garbageWeights, 'this is an HTML error page, not a safetensors file');
  // The tiny weights also stand in for the default weights, so "falls back to the default"
  // is tested without the published file.
  server = await serve(root, {
    '/test/tiny.safetensors': tinyWeights,
    '/test/garbage.safetensors': garbageWeights,
    '/test/native.png': nativeSample,
    [DEFAULT_WEIGHTS]: tinyWeights,
    [FULL_WEIGHTS]: notFound,
    '/test/huge-declared.safetensors': huge.declared.handler,
    '/test/huge-streamed.safetensors': huge.streamed.handler,
  });
});

after(async () => {
  await server?.close();
});

/** Opens the page at `path` (after the server's URL), recording every drawn frame. */
function open(browser, path) {
  return openPage(browser, `${server.url}/index.html${path}`);
}

/** A run of the tiny model; with `webgpu`, chromium's SwiftShader adapter, asked for by name
 * (the page prefers the CPU over a software adapter). */
async function finishedRun(webgpu) {
  const browser = await launch(webgpu);
  try {
    const query = webgpu ? `${TINY}&backend=webgpu` : TINY;
    const { page, problems } = await open(browser, query + RUN_HASH);
    assert.equal(await settle(page), 'done', await page.locator('#error').textContent());
    const backend = await page.locator('#backend').getAttribute('data-backend');
    const frames = await page.evaluate(() => window.__frames);
    // The golden fingerprint, recomputed on this backend, is within the trainer's tolerance.
    await page.waitForFunction(() => document.body.dataset.fingerprint !== undefined);
    assert.equal(await page.evaluate(() => document.body.dataset.fingerprint), 'ok');
    assert.deepEqual(problems, []);
    return { backend, frames };
  } finally {
    await browser.close();
  }
}

function assertEveryStepChangesThePicture(frames) {
  assert.deepEqual(frames.map((f) => f.step), [0, 1, 2, 3, 4], 'x_T and each of the 4 steps are drawn');
  for (let i = 1; i < frames.length; i += 1) {
    // The last DDIM step (from t = 0) removes only the little noise left, so no size threshold.
    assert.ok(meanAbsDiff(frames[i - 1].pixels, frames[i].pixels) > 0, `step ${i} left the canvas unchanged`);
  }
  assert.ok(meanAbsDiff(frames[0].pixels, frames.at(-1).pixels) > 10, 'the noise became an image');
}

test('WebGPU path: DDIM 4 steps on the WebGPU backend, every step drawn', async () => {
  const { backend, frames } = await finishedRun(true);
  assert.equal(backend, 'webgpu-f32');
  assertEveryStepChangesThePicture(frames);
  finals.webgpu = frames.at(-1).pixels;
});

test('CPU fallback: without WebGPU the same run completes on the CPU backend', async () => {
  const { backend, frames } = await finishedRun(false);
  assert.equal(backend, 'cpu');
  assertEveryStepChangesThePicture(frames);
  finals.cpu = frames.at(-1).pixels;
});

test('a software WebGPU adapter is passed over for the CPU unless asked for, and the page says why', async () => {
  const browser = await launch(true);
  try {
    const { page } = await open(browser, TINY);
    await page.waitForFunction(() => document.querySelector('#backend')?.dataset.backend);
    assert.equal(await page.locator('#backend').getAttribute('data-backend'), 'cpu');
    assert.match(await page.locator('#backend').textContent(), /software WebGPU adapter/);
  } finally {
    await browser.close();
  }
});

test('WebGPU and CPU agree on the final image', (t) => {
  assert.ok(finals.webgpu && finals.cpu, 'both runs finished');
  const difference = meanAbsDiff(finals.webgpu, finals.cpu);
  const largest = maxAbsDiff(finals.webgpu, finals.cpu);
  t.diagnostic(`WebGPU vs CPU: mean abs diff ${difference.toFixed(4)} / 255, max ${largest} / 255`);
  assert.ok(difference < CROSS_BACKEND_TOLERANCE, `mean abs diff ${difference} >= ${CROSS_BACKEND_TOLERANCE}/255`);
  assert.ok(largest <= CROSS_BACKEND_MAX_DIFFERENCE, `max abs diff ${largest} > ${CROSS_BACKEND_MAX_DIFFERENCE}/255`);
});

test('the page draws the same avatar as the native trainer for the same seed and sampler', async (t) => {
  assert.ok(existsSync(nativeSample), 'make the native sample first (see the Makefile e2e target)');
  assert.ok(finals.cpu, 'the CPU run finished');
  const browser = await launch(false);
  try {
    const { page } = await open(browser, '');
    const native = await page.evaluate(async (url) => {
      const image = new Image();
      image.src = url;
      await image.decode();
      const canvas = document.createElement('canvas');
      [canvas.width, canvas.height] = [image.width, image.height];
      const context = canvas.getContext('2d');
      context.drawImage(image, 0, 0);
      return Array.from(context.getImageData(0, 0, image.width, image.height).data);
    }, '/test/native.png');
    // Same seeded noise (wasm and native), same sampler code; only float rounding may differ.
    const [mean, largest] = [meanAbsDiff(native, finals.cpu), maxAbsDiff(native, finals.cpu)];
    t.diagnostic(`page vs trainer sample: mean abs diff ${mean.toFixed(4)} / 255, max ${largest} / 255`);
    assert.ok(mean < 1, `the page and \`trainer sample\` disagree: mean abs diff ${mean}`);
    assert.ok(largest <= NATIVE_MAX_DIFFERENCE, `the page and \`trainer sample\` disagree: max abs diff ${largest}`);
  } finally {
    await browser.close();
  }
});

test('the same share link opened twice gives identical pixels', async () => {
  const browser = await launch(false);
  try {
    const results = [];
    for (let i = 0; i < 2; i += 1) {
      const { page, problems } = await open(browser, `${TINY}#seed=123&batch=4&sampler=ddim&steps=3&clip=1`);
      assert.equal(await settle(page), 'done');
      assert.equal(await page.inputValue('#seed'), '123', 'the link restores the controls');
      assert.equal(await page.inputValue('#batch'), '4');
      results.push((await page.evaluate(() => window.__frames)).at(-1).pixels);
      assert.deepEqual(problems, []);
      await page.close();
    }
    assert.deepEqual(results[0], results[1]);
  } finally {
    await browser.close();
  }
});

test('bad weights URLs are explained and the default weights stay usable', async () => {
  const browser = await launch(false);
  try {
    for (const [url, expected] of [['/test/missing.safetensors', '404'], ['/test/garbage.safetensors', 'safetensors']]) {
      const { page, problems } = await open(browser, `?weights=${url}`);
      assert.equal(await settle(page, ['ready', 'error']), 'ready');
      const message = await page.locator('#error').textContent();
      assert.ok(message.includes(url) && message.includes(expected), message);
      assert.ok(message.includes('default'), message);
      // Only weights that loaded are cached: the file that failed is fetched anew next time.
      assert.deepEqual(await cachedWeights(page), [DEFAULT_WEIGHTS]);
      await page.selectOption('#sampler', 'ddim');
      await page.fill('#steps', '10');
      await page.click('#generate');
      assert.equal(await settle(page), 'done', 'the default weights still generate');
      assert.deepEqual(problems, []);
      await page.close();
    }
  } finally {
    await browser.close();
  }
});

test('a second visit takes the weights from the Cache API instead of downloading them', async () => {
  const browser = await launch(false);
  try {
    const context = await browser.newContext();
    const downloads = () => server.requests.filter((r) => r === 'GET /test/tiny.safetensors').length;
    const before = downloads();
    for (let visit = 0; visit < 2; visit += 1) {
      const page = await context.newPage();
      await page.goto(`${server.url}/index.html${TINY}`);
      assert.equal(await settle(page, ['ready', 'error']), 'ready');
      await page.close();
    }
    assert.equal(downloads() - before, 1, 'downloaded once, then revalidated with HEAD only');
    assert.ok(server.requests.includes('HEAD /test/tiny.safetensors'));
  } finally {
    await browser.close();
  }
});

test('a share link made with other weights says so', async () => {
  const browser = await launch(false);
  try {
    const { page, problems } = await open(browser, `${TINY}#seed=9&batch=1&sampler=ddim&steps=2&clip=0&w=000000000000`);
    assert.equal(await settle(page), 'done');
    assert.match(await page.locator('#notice').textContent(), /other weights \(000000000000\)/);
    assert.equal(await page.isChecked('#clip'), false, 'clip=0 restored');
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test('weights over the size limit are refused in words, the download stops and nothing is cached', async () => {
  const browser = await launch(false);
  try {
    const cases = [
      // The server states the size: refused before the body is read.
      ['/test/huge-declared.safetensors', huge.declared, /the file is 256\.0 MB, more than the 64\.0 MB this page loads/],
      // No Content-Length: the page counts the bytes and stops at the chunk that passes the limit.
      ['/test/huge-streamed.safetensors', huge.streamed, /the download passed 6\d\.\d MB, more than the 64\.0 MB this page loads, and was stopped/],
    ];
    for (const [url, record, expected] of cases) {
      const { page, problems } = await open(browser, `?weights=${url}`);
      assert.equal(await settle(page, ['ready', 'error']), 'ready', 'the default weights load instead');
      const message = await page.locator('#error').textContent();
      assert.match(message, expected);
      assert.ok(message.includes(url) && message.includes('default'), message);
      assert.deepEqual(await cachedWeights(page), [DEFAULT_WEIGHTS]);
      assert.ok(record.sent < HUGE_BYTES, `the page read all ${record.sent} bytes instead of stopping`);
      assert.deepEqual(problems, []);
      await page.close();
    }
  } finally {
    await browser.close();
  }
});

test('DDIM spacing and DDPM variance: a link restores them, they change the avatars, and the share link keeps them', async () => {
  assert.ok(finals.cpu, 'the CPU run (leading spacing, the default) finished');
  const browser = await launch(false);
  try {
    const { page, problems } = await open(browser, `${TINY}${RUN_HASH}&spacing=trailing`);
    assert.equal(await settle(page), 'done');
    assert.equal(await page.inputValue('#spacing'), 'trailing');
    assert.ok(await page.locator('#variance-label').isHidden(), 'DDIM has no variance control');
    const trailing = (await page.evaluate(() => window.__frames)).at(-1).pixels;
    // Trailing visits 999, 749, 499, 249 instead of 750, 500, 250, 0: another image.
    assert.ok(meanAbsDiff(trailing, finals.cpu) > 1, 'the spacing changed the result');
    // A run writes its share link into the address bar.
    assert.match(await page.evaluate(() => location.hash), /spacing=trailing/);
    // DDPM with sigma^2 = beta: the control is restored from the link.
    await page.goto(`${server.url}/index.html${TINY}#seed=5&batch=1&sampler=ddpm&clip=1&variance=beta`);
    await page.waitForFunction(() => document.querySelector('#variance')?.value === 'beta');
    assert.ok(await page.locator('#spacing-label').isHidden(), 'DDPM has no spacing control');
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

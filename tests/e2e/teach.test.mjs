// Teaching mode in a real browser (CPU backend, tiny test weights): every view opens, draws and
// reacts to its controls; the forward explorer is exact at t = 0 and noise at t = T; the
// language switch leaves no untranslated text; a share link restores the open view.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { launch, maxAbsDiff, meanAbsDiff, openPage, settle } from './browser.mjs';
import { notFound, serve } from './server.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const tinyWeights = join(root, 'target/e2e/tiny.safetensors');
const TINY = '?weights=/test/tiny.safetensors&backend=cpu';
const VIEWS = ['anatomy', 'schedule', 'forward', 'scrub', 'interpolate', 'twopixel', 'clipping'];

let server;
let browser;

before(async () => {
  assert.ok(existsSync(tinyWeights), 'make the test weights first: cargo run --example tiny_weights');
  // The published model files are absent here (the repository commits the small one): views
  // run on the tiny test weights, and one test checks the page without any weights.
  server = await serve(root, {
    '/test/tiny.safetensors': tinyWeights,
    '/www/weights/avatars-64-small.safetensors': notFound,
    '/www/weights/avatars-64.safetensors': notFound,
  });
  browser = await launch(false);
});

after(async () => {
  await browser?.close();
  await server?.close();
});

async function open(hash = '', query = TINY) {
  const opened = await openPage(browser, `${server.url}/index.html${query}${hash}`);
  assert.equal(await settle(opened.page, ['ready', 'done', 'error']) !== 'error', true,
    await opened.page.locator('#error').textContent());
  return opened;
}

/** Pixels of the canvas matching `selector`, and whether any pixel differs from the first. */
async function pixels(page, selector) {
  return page.evaluate((css) => {
    const canvas = document.querySelector(css);
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    return Array.from(data);
  }, selector);
}

function assertDrawn(values, what) {
  assert.ok(values.length > 0, `${what} has no pixels`);
  const distinct = new Set();
  for (let i = 0; i < values.length; i += 4) distinct.add(`${values[i]},${values[i + 1]},${values[i + 2]},${values[i + 3]}`);
  assert.ok(distinct.size > 3, `${what} is blank (${distinct.size} colours)`);
}

/** Waits (up to 2 minutes) until the element's `data-<key>` is set (to `value`, when given). */
function waitForData(page, selector, key, value) {
  return page.waitForFunction(({ css, name, wanted }) => {
    const found = document.querySelector(css)?.dataset[name];
    return wanted === undefined ? Boolean(found) : found === wanted;
  }, { css: selector, name: key, wanted: value }, { timeout: 120_000 });
}

/** Runs `action` and waits (up to 2 minutes) until the canvas at `selector` shows something else. */
async function assertChanges(page, selector, action, what) {
  const before = await pixels(page, selector);
  assertDrawn(before, what);
  await action();
  for (let waited = 0; waited < 120_000; waited += 200) {
    const now = await pixels(page, selector);
    if (now.length !== before.length || meanAbsDiff(before, now) > 0) return;
    await page.waitForTimeout(200);
  }
  assert.fail(`${what}: the control did not change the drawing`);
}

test('step anatomy takes apart a step of the main run, for the chosen avatar', async () => {
  const { page, problems } = await open('#seed=3&batch=4&sampler=ddim&steps=5&clip=1&view=anatomy');
  assert.equal(await settle(page), 'done');
  const panels = await page.locator('[data-view-panel=anatomy] .anatomy-panels canvas').count();
  assert.equal(panels, 5);
  // DDIM with eta = 0 adds no fresh noise: that panel says so instead of drawing.
  for (const i of [1, 2, 3, 5]) {
    assertDrawn(await pixels(page, `[data-view-panel=anatomy] figure:nth-child(${i}) canvas`), `panel ${i}`);
  }
  assert.match(await page.locator('[data-view-panel=anatomy] figure:nth-child(4) .muted').textContent(), /no fresh noise/);
  assert.ok(await page.locator('[data-testid=anatomy-formula] math').count() > 0, 'the formula is typeset');
  assert.match(await page.locator('[data-testid=anatomy-status]').textContent(), /t = 1 → 0/);
  assertDrawn(await pixels(page, '[data-testid=anatomy-grid]'), 'the copy of the running grid');
  // Clicking the bottom-right avatar of the 2x2 grid picks avatar 4 (index 3).
  const box = await page.locator('[data-testid=anatomy-grid]').boundingBox();
  await page.mouse.click(box.x + box.width * 0.8, box.y + box.height * 0.8);
  assert.equal(await page.inputValue('[data-testid=anatomy-avatar]'), '3');
  await assertChanges(page, '[data-view-panel=anatomy] figure:nth-child(1) canvas', async () => {
    await page.selectOption('[data-testid=anatomy-avatar]', '2');
    await page.click('#generate');
    await settle(page);
  }, 'anatomy avatar');
  assert.deepEqual(problems, []);
  await page.close();
});

test('step anatomy of DDPM shows the fresh noise sigma_t z of the step', async () => {
  // Not `open`: that waits for the run to finish.
  const { page, problems } = await openPage(browser, `${server.url}/index.html${TINY}#seed=4&batch=1&sampler=ddpm&steps=1000&clip=1&view=anatomy`);
  // Pause (from inside the page, before the next step) while t is still large: the tiny model
  // runs all 1000 steps in seconds, and the last step adds no noise.
  await page.waitForFunction(() => {
    const status = document.querySelector('[data-testid=anatomy-status]');
    if (!status || !/t = 9\d\d/.test(status.textContent)) return false;
    document.getElementById('pause').click();
    return true;
  }, null, { timeout: 120_000, polling: 'raf' });
  for (let i = 1; i <= 5; i += 1) {
    assertDrawn(await pixels(page, `[data-view-panel=anatomy] figure:nth-child(${i}) canvas`), `panel ${i}`);
  }
  assert.match(await page.locator('[data-testid=anatomy-numbers]').textContent(), /β/);
  await page.click('#stop');
  assert.deepEqual(problems, []);
  await page.close();
});

test('schedule charts draw both schedules and follow t', async () => {
  const { page, problems } = await open('#view=schedule');
  const canvas = '[data-view-panel=schedule] canvas[data-view-canvas=alphaBar]';
  await assertChanges(page, canvas, () => page.locator('[data-testid=charts-t]').fill('100'), 'charts t');
  assert.match(page.url(), /schedule\.t=100/);
  assert.deepEqual(problems, []);
  await page.close();
});

test('forward explorer: t = 0 is the image exactly, t = T is noise, denoising runs from x_t', async () => {
  const { page, problems } = await open('#view=forward&forward.t=0&forward.image=2');
  const canvas = '[data-testid=forward-canvas]';
  await page.waitForFunction(() => document.querySelector('[data-testid=forward-canvas]').dataset.std);
  // The source, resized in the page the same way: the bundled sheet's cell 4 at model size.
  const source = await page.evaluate(async () => {
    const image = new Image();
    image.src = 'www/img/training-avatars.png';
    await image.decode();
    const side = document.querySelector('[data-testid=forward-canvas]').width;
    const canvas = document.createElement('canvas');
    [canvas.width, canvas.height] = [side, side];
    const context = canvas.getContext('2d', { willReadFrequently: true });
    context.imageSmoothingQuality = 'high';
    context.drawImage(image, 4 * 136, 0, 128, 128, 0, 0, side, side);
    return Array.from(context.getImageData(0, 0, side, side).data);
  });
  assert.deepEqual(await pixels(page, canvas), source, 't = 0 shows the input image exactly');
  await page.locator('[data-testid=forward-t]').fill('1000');
  const noise = await pixels(page, canvas);
  const gray = noise.filter((_, i) => i % 4 !== 3);
  const mean = gray.reduce((a, b) => a + b, 0) / gray.length;
  const std = Math.sqrt(gray.reduce((a, b) => a + (b - mean) ** 2, 0) / gray.length);
  assert.ok(Math.abs(mean - 127.5) < 8, `mean ${mean} is near mid-gray`);
  assert.ok(std > 60, `std ${std}: N(0, I) clipped to the pixel range spreads widely`);
  await page.locator('[data-testid=forward-t]').fill('300');
  await page.selectOption('#sampler', 'ddim');
  await page.fill('#steps', '10');
  await page.click('[data-testid=forward-denoise]');
  await waitForData(page, '[data-testid=forward-result]', 'done');
  assertDrawn(await pixels(page, '[data-testid=forward-result]'), 'denoised result');
  assert.match(await page.locator('[data-testid=forward-status]').textContent(), /t = 300 .* 4 /);
  assert.deepEqual(problems, []);
  await page.close();
});

test('timeline scrubs the kept frames and branches from one', async (t) => {
  const { page, problems } = await open('#seed=1&batch=1&sampler=ddim&steps=8&clip=1&view=scrub');
  assert.equal(await settle(page), 'done');
  assert.equal(await page.locator('[data-testid=timeline-slider]').getAttribute('max'), '8', 'x_T and 8 steps kept');
  await assertChanges(page, '[data-testid=timeline-canvas]', () => page.locator('[data-testid=timeline-slider]').fill('2'), 'timeline slider');
  assert.match(await page.locator('[data-testid=timeline-label]').textContent(), /step 2 of 8/);
  await page.click('[data-testid=timeline-branch-button]');
  await waitForData(page, '[data-testid=timeline-branch]', 'diff');
  assertDrawn(await pixels(page, '[data-testid=timeline-branch]'), 'branch');
  // The kept frames are 8-bit, so branching with eta = 0 would differ by about one level
  // (quantisation alone); fresh noise from another seed must change far more than that.
  const branch = page.locator('[data-testid=timeline-branch]');
  const [mean, largest] = [Number(await branch.getAttribute('data-diff')), Number(await branch.getAttribute('data-max-diff'))];
  t.diagnostic(`branch vs original ending: mean ${mean} / 255, max ${largest} / 255`);
  assert.ok(mean > 2, `another seed changes the ending by ${mean} / 255 on average, no more than quantisation`);
  assert.ok(largest > 16, `another seed changes no pixel by more than ${largest} / 255`);
  assert.deepEqual(problems, []);
  await page.close();
});

test('seed interpolation denoises a row of slerped x_T', async () => {
  const { page, problems } = await open('#view=interpolate&interpolate.steps=4&interpolate.n=5');
  await page.click('[data-testid=interp-run]');
  await waitForData(page, '[data-testid=interp-canvas]', 'done', '0-1-5');
  await assertChanges(page, '[data-testid=interp-canvas]', async () => {
    await page.fill('[data-testid=interp-b]', '7');
    await page.click('[data-testid=interp-run]');
    await waitForData(page, '[data-testid=interp-canvas]', 'done', '0-7-5');
  }, 'interpolation seed B');
  assert.deepEqual(problems, []);
  await page.close();
});

/** The final avatar of a plain run of the main controls (batch 1). */
async function plainAvatar(seed, steps) {
  const { page, problems } = await open(`#seed=${seed}&batch=1&sampler=ddim&steps=${steps}&clip=1`);
  assert.equal(await settle(page), 'done');
  const avatar = await pixels(page, '#canvas');
  assert.deepEqual(problems, []);
  await page.close();
  return avatar;
}

/** The pixels of image `index` of a row of `size`-pixel images 2 pixels apart. */
function tileOfRow(row, rowWidth, index, size) {
  const tile = [];
  for (let y = 0; y < size; y += 1) {
    const start = (y * rowWidth + index * (size + 2)) * 4;
    tile.push(...row.slice(start, start + size * 4));
  }
  return tile;
}

test('seed interpolation: its ends are the plain DDIM avatars of seeds A and B', async (t) => {
  // 4 DDIM steps (leading spacing: x_T is treated as x_750): a row that started at t = T, or
  // stopped a step short of x_0, ends elsewhere.
  const [a, b, count, steps] = [3, 8, 5, 4];
  const ends = [await plainAvatar(a, steps), await plainAvatar(b, steps)];
  const { page, problems } = await open(`#view=interpolate&interpolate.a=${a}&interpolate.b=${b}&interpolate.n=${count}&interpolate.steps=${steps}`);
  await page.click('[data-testid=interp-run]');
  await waitForData(page, '[data-testid=interp-canvas]', 'done', `${a}-${b}-${count}`);
  assert.match(await page.locator('[data-testid=interp-status]').textContent(), /4 DDIM steps/);
  const row = await pixels(page, '[data-testid=interp-canvas]');
  const [width, size] = await page.evaluate(() => {
    const canvas = document.querySelector('[data-testid=interp-canvas]');
    return [canvas.width, canvas.height];
  });
  for (const [index, plain] of [[0, ends[0]], [count - 1, ends[1]]]) {
    const tile = tileOfRow(row, width, index, size);
    const [mean, largest] = [meanAbsDiff(tile, plain), maxAbsDiff(tile, plain)];
    t.diagnostic(`interpolation end ${index} vs plain run: mean ${mean.toFixed(4)}, max ${largest} / 255`);
    // The same model, noise and steps on the same backend; only the batch differs (5 vs 1).
    // Measured here: identical (max 0); a level of rounding is allowed. The row started at
    // t = T (one step more than the plain run) ended up to 146 levels away.
    assert.ok(largest <= 1, `end ${index} differs from the plain avatar by up to ${largest} / 255`);
  }
  assert.deepEqual(problems, []);
  await page.close();
});

test('two-pixel world diffuses the cloud and follows t', async () => {
  const { page, problems } = await open('#view=twopixel');
  const canvas = '[data-view-panel=twopixel] canvas[data-view-canvas=twopixel-main]';
  await assertChanges(page, canvas, () => page.locator('[data-testid=twopixel-t]').fill('600'), 'two-pixel t');
  assert.deepEqual(problems, []);
  await page.close();
});

test('why clipping: the same seed with clipping on and off', async () => {
  const { page, problems } = await open('#view=clipping');
  await page.click('[data-testid=clip-run]');
  await waitForData(page, '[data-testid=clip-on]', 'done');
  const on = await pixels(page, '[data-testid=clip-on]');
  const off = await pixels(page, '[data-testid=clip-off]');
  assertDrawn(on, 'clip on');
  assertDrawn(off, 'clip off');
  assert.ok(meanAbsDiff(on, off) > 0, 'clipping changes the result');
  await assertChanges(page, '[data-testid=clip-on]', async () => {
    await page.fill('[data-testid=clip-seed]', '5');
    await page.click('[data-testid=clip-run]');
    await waitForData(page, '[data-testid=clip-on]', 'done', '5');
  }, 'clipping seed');
  assert.deepEqual(problems, []);
  await page.close();
});

test('the language switch translates every explanation and leaves no key untranslated', async () => {
  const { page, problems } = await open('', `${TINY}&lang=en`);
  // Every translated element of the page that is shown (tabs and menu options included).
  const texts = () => page.evaluate(() => [...document.querySelectorAll('[data-i18n], [data-i18n-html]')]
    .filter((el) => el.offsetParent !== null || el.closest('[role=tab]') || el.tagName === 'OPTION')
    .map((el) => el.textContent.trim()));
  // Open every view once so their texts exist too.
  for (const view of VIEWS) await page.click(`#tab-${view}`);
  const english = await texts();
  await page.click('[data-testid=lang-toggle]');
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN');
  const chinese = await texts();
  assert.ok(english.length > 60, `${english.length} translated elements`);
  assert.equal(await page.locator('#generate').textContent(), '生成');
  assert.match(await page.locator('#status').textContent(), /就绪/, 'the status line follows the language');
  assert.equal(chinese.length, english.length);
  const unchanged = english.filter((text, i) => text === chinese[i] && /[a-z]{3}/.test(text));
  assert.deepEqual(unchanged, [], 'English text left after switching to Chinese');
  assert.ok(chinese.every((text) => !/^(lesson|teach|page|anatomy|forward|timeline|interpolate|clipping|charts|twopixel)\.[\w.]+$/.test(text)), 'a raw key is shown');
  const { missing, mismatched } = await page.evaluate(async () => {
    const i18n = await import('/www/teach/i18n.js');
    return { missing: i18n.missingKeys(), mismatched: i18n.checkStrings() };
  });
  assert.deepEqual(missing, []);
  assert.deepEqual(mismatched, []);
  // Remembered: a new page in the same browser context starts in Chinese.
  await page.reload();
  await settle(page, ['ready', 'done', 'error']);
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN');
  assert.deepEqual(problems, []);
  await page.close();
});

test('a share link with a teaching view restores that view and its parameters', async () => {
  const { page, problems } = await open('#view=forward&forward.t=250&forward.image=3&forward.seed=9');
  assert.equal(await page.locator('[data-view-panel=forward]').isVisible(), true);
  assert.equal(await page.locator('[data-view-panel=anatomy]').isVisible(), false);
  assert.equal(await page.inputValue('[data-testid=forward-t]'), '250');
  assert.equal(await page.inputValue('[data-testid=forward-image]'), '3');
  assert.equal(await page.inputValue('[data-testid=forward-seed]'), '9');
  // The page's own share link carries the view.
  await page.click('#tab-twopixel');
  await page.locator('[data-testid=twopixel-t]').fill('420');
  await page.locator('[data-testid=twopixel-t]').dispatchEvent('change');
  const link = await page.evaluate(() => location.href);
  assert.match(link, /view=twopixel/);
  const again = await openPage(browser, link);
  await settle(again.page, ['ready', 'done', 'error']);
  assert.equal(await again.page.locator('[data-view-panel=twopixel]').isVisible(), true);
  assert.equal(await again.page.inputValue('[data-testid=twopixel-t]'), '420');
  assert.deepEqual([...problems, ...again.problems], []);
  await again.page.close();
  await page.close();
});

test('the lesson links open their live views', async () => {
  const { page } = await open();
  await page.click('[data-lesson=mixture] [data-open-view=twopixel]');
  assert.equal(await page.locator('[data-view-panel=twopixel]').isVisible(), true);
  assert.match(page.url(), /view=twopixel/);
  await page.close();
});

test('without any usable weights the model-free views still work and the others say why', async () => {
  // This server has no default weights: the page reports the 404 and keeps teaching.
  const { page, problems } = await openPage(browser, `${server.url}/index.html#view=forward&forward.t=500`);
  assert.equal(await settle(page, ['ready', 'error']), 'error');
  await page.waitForFunction(() => document.querySelector('[data-testid=forward-canvas]').dataset.std);
  assertDrawn(await pixels(page, '[data-testid=forward-canvas]'), 'forward jump without weights');
  await page.click('[data-testid=forward-denoise]');
  assert.match(await page.locator('[data-testid=forward-status]').textContent(), /no weights are loaded/);
  await page.click('#tab-schedule');
  assertDrawn(await pixels(page, '[data-view-panel=schedule] canvas[data-view-canvas=snr]'), 'charts without weights');
  assert.deepEqual(problems, []);
  await page.close();
});

// Hash values no view may trust: huge, negative, words, past 2^53 - 1, far past it, empty,
// and a list of out-of-range pairs (for the two-pixel blobs).
const JUNK = ['1e9', '-7', 'abc', '9007199254740993', '1e300', '', '1e9,-1e9;abc,2'];
const SEED = { min: 0, max: Number.MAX_SAFE_INTEGER };
/** Every hash parameter of every view, with the values it may take. */
const VIEW_PARAMS = {
  anatomy: { avatar: { min: 0, max: 15 } },
  schedule: { t: { min: 0, max: 999 } },
  forward: { t: { min: 0, max: 1000 }, image: { min: 0, max: 5 }, seed: SEED },
  scrub: { frame: { min: 0, max: 1000 }, seed: SEED },
  interpolate: { a: SEED, b: SEED, n: { choices: ['5', '8', '12'] }, steps: { min: 1, max: 1000 } },
  twopixel: { t: { min: 0, max: 999 }, blobs: { blobs: true } },
  clipping: { seed: SEED, sampler: { choices: ['ddim', 'ddpm'] } },
};
// Views that draw without a run of the model.
const DRAWN_AT_ONCE = {
  schedule: '[data-view-panel=schedule] canvas[data-view-canvas=alphaBar]',
  twopixel: '[data-view-panel=twopixel] canvas[data-view-canvas=twopixel-main]',
  forward: '[data-testid=forward-canvas]',
};

function assertInRange(what, value, range) {
  if (range.choices) {
    assert.ok(range.choices.includes(value), `${what} = ${value}`);
  } else if (range.blobs) {
    const points = value.split(';').map((pair) => pair.split(',').map(Number));
    assert.ok(points.length >= 1 && points.length <= 5, `${what} = ${value}`);
    assert.ok(points.every((p) => p.length === 2 && p.every((v) => v >= -1 && v <= 1)), `${what} = ${value}`);
  } else {
    assert.match(value, /^\d+$/, `${what} = ${value}`);
    assert.ok(Number(value) >= range.min && Number(value) <= range.max, `${what} = ${value}`);
  }
}

/** Waits (at most `seconds`) until the page has restored `view`: a page that hangs fails here. */
function restored(page, view, seconds) {
  return page.waitForFunction((name) => document.body.dataset.teachView === name, view, { timeout: seconds * 1000 });
}

/** The view's hash parameters as the page would share them now: each must be in range. */
async function assertViewStateInRange(page, view) {
  const state = await page.evaluate(async () => (await import('/www/teach/teach.js')).teachingParams());
  assert.equal(state.view, view);
  for (const [key, range] of Object.entries(VIEW_PARAMS[view])) assertInRange(`${view}.${key}`, state[`${view}.${key}`], range);
}

test('junk in every hash parameter of every view is clamped into range at once', async () => {
  for (const [view, params] of Object.entries(VIEW_PARAMS)) {
    const hashFor = (junk) => `#view=${view}&${Object.keys(params).map((key) => `${view}.${key}=${encodeURIComponent(junk)}`).join('&')}`;
    // Opened with junk (a link), then junk through the hash of the open page.
    const { page, problems } = await openPage(browser, `${server.url}/index.html${TINY}${hashFor(JUNK[0])}`);
    await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null, { timeout: 60_000 });
    await restored(page, view, 5);
    await assertViewStateInRange(page, view);
    for (const junk of JUNK.slice(1)) {
      await page.evaluate((hash) => {
        delete document.body.dataset.teachView;
        location.hash = hash;
      }, hashFor(junk));
      await restored(page, view, 5);
      assert.equal(await page.locator(`[data-view-panel=${view}]`).isVisible(), true, `${view} with ${junk}`);
      await assertViewStateInRange(page, view);
    }
    assert.ok(await page.locator('[data-testid=anatomy-avatar] option').count() <= 16, 'no more avatars than a batch holds');
    if (view === 'forward') await waitForData(page, DRAWN_AT_ONCE.forward, 'std');
    if (DRAWN_AT_ONCE[view]) assertDrawn(await pixels(page, DRAWN_AT_ONCE[view]), `${view} after junk`);
    assert.deepEqual(problems, []);
    await page.close();
  }
});

test('junk in the run parameters of a share link is clamped into range', async () => {
  const cases = [
    ['#seed=1e300&batch=1e9&sampler=ddim&steps=-3&clip=junk&w=%3Cb%3E', { seed: '9007199254740991', batch: '4', sampler: 'ddim', steps: '1' }],
    ['#seed=abc&batch=-1&sampler=DDIM&steps=1e9&clip=0', { seed: '0', batch: '4', sampler: 'ddpm', steps: '1000' }],
  ];
  for (const [hash, expected] of cases) {
    const { page, problems } = await openPage(browser, `${server.url}/index.html${TINY}${hash}`);
    await page.waitForFunction(() => ['running', 'done', 'error'].includes(document.body.dataset.state), null, { timeout: 60_000 });
    const shown = {};
    for (const key of Object.keys(expected)) shown[key] = await page.inputValue(`#${key}`);
    assert.deepEqual(shown, expected, hash);
    assert.equal(await page.locator('#error').isVisible(), false, await page.locator('#error').textContent());
    assert.doesNotMatch(await page.locator('#notice').textContent(), /other weights/, 'junk is no weights hash');
    if (expected.sampler === 'ddim') assert.equal(await settle(page), 'done', 'the clamped run completes');
    else await page.evaluate(() => document.getElementById('stop').click()); // 1000 DDPM steps
    assert.deepEqual(problems, []);
    await page.close();
  }
});

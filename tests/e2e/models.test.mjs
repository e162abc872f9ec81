// Which published weights file the page loads (www/models.js) and what it says about it
// (www/provenance.js), in a real browser: the small CPU-sized model by default, the full one on
// WebGPU or when a share link names it, a choice only when the server has both, the "not
// published yet" notice when it has neither; and the provenance line from the file's training
// metadata. Needs `make pkg` and target/e2e/tiny.safetensors (`make e2e`).

import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { launch, openPage, settle } from './browser.mjs';
import { notFound, serve } from './server.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const tinyWeights = join(root, 'target/e2e/tiny.safetensors');
const provenanceWeights = join(root, 'target/e2e/provenance.safetensors');
// The two published files, as the page names them (www/models.js) and as the server sees them.
const SMALL = 'www/weights/avatars-64-small.safetensors';
const FULL = 'www/weights/avatars-64.safetensors';
const RUN = '#seed=3&batch=1&sampler=ddim&steps=2&clip=1';
// The example of a file continued twice on the CPU (src/weights.rs `TrainingInfo`).
const TRAINING = {
  steps: 12000, images_seen: 384000, ema_decay: 0.9991, parent: 'ab12cd34ef56',
  parents: ['0011aabbccdd', 'ab12cd34ef56'], cpu_hours: 3.4,
};

// One server per set of published files; the tiny weights stand in for both models.
const servers = {};

/**
 * The weights file at `source` with its `training` metadata replaced by `training`: only that
 * object of the metadata text changes (every other number stays byte for byte), and the
 * header is padded with spaces to a multiple of 8 bytes, as the safetensors writer does.
 */
function withTraining(source, training) {
  const bytes = readFileSync(source);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  const metadata = header.__metadata__.ddpm_avatars;
  assert.match(metadata, /"training":\{[^{}]*\}/, 'the metadata has a flat training object');
  header.__metadata__.ddpm_avatars = metadata.replace(/"training":\{[^{}]*\}/, `"training":${JSON.stringify(training)}`);
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - (Buffer.byteLength(text) % 8)) % 8);
  const json = Buffer.from(text, 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, bytes.subarray(8 + headerLength)]);
}

before(async () => {
  assert.ok(existsSync(join(root, 'www/pkg/ddpm_avatars.js')), 'build the page first: make pkg');
  assert.ok(existsSync(tinyWeights), 'make the test weights first: make e2e');
  writeFileSync(provenanceWeights, withTraining(tinyWeights, TRAINING));
  const published = {
    both: [tinyWeights, tinyWeights], small: [tinyWeights, notFound],
    full: [notFound, tinyWeights], neither: [notFound, notFound],
  };
  for (const [name, [small, full]] of Object.entries(published)) {
    servers[name] = await serve(root, {
      [`/${SMALL}`]: small,
      [`/${FULL}`]: full,
      '/test/tiny.safetensors': tinyWeights,
      '/test/provenance.safetensors': provenanceWeights,
    });
  }
});

after(async () => {
  for (const server of Object.values(servers)) await server.close();
});

/** Opens the page on the server `name` at `path`, recording every drawn frame. */
function open(browser, name, path) {
  return openPage(browser, `${servers[name].url}/index.html${path}`);
}

/** The weights file the page loaded, the model select's options and value, whether it shows. */
function loadedModel(page) {
  return page.evaluate(() => ({
    url: document.getElementById('weights-url').textContent,
    options: [...document.getElementById('model').options].map((option) => option.value),
    value: document.getElementById('model').value,
    offered: !document.getElementById('model-row').hidden,
  }));
}

/** Whether the server `name` was asked for the whole file at `url` (not just its HEAD). */
const downloaded = (name, url) => servers[name].requests.includes(`GET /${url}`);

test('with both model files, the CPU backend loads the small one, offers both, and the share link names it', async () => {
  const browser = await launch(false);
  try {
    const { page, problems } = await open(browser, 'both', RUN);
    assert.equal(await settle(page), 'done', await page.locator('#error').textContent());
    assert.deepEqual(await loadedModel(page), { url: SMALL, options: ['small', 'full'], value: 'small', offered: true });
    assert.ok(downloaded('both', SMALL) && !downloaded('both', FULL), 'only the small file is downloaded');
    assert.match(await page.locator('#model option[value=small]').textContent(), /small/);
    // The run wrote its share link: it names the file, next to the weights' hash.
    assert.match(await page.evaluate(() => location.hash), /&w=[0-9a-f]{12}&model=small$/);
    assert.equal(await page.locator('#error').textContent(), '');
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test('a share link naming the full model loads the full file; picking the small one reopens the page with it', async () => {
  const browser = await launch(false);
  try {
    const { page, problems } = await open(browser, 'both', `${RUN}&model=full`);
    assert.equal(await settle(page), 'done', await page.locator('#error').textContent());
    assert.deepEqual(await loadedModel(page), { url: FULL, options: ['small', 'full'], value: 'full', offered: true });
    assert.match(await page.evaluate(() => location.hash), /&model=full$/);
    await Promise.all([page.waitForEvent('load'), page.selectOption('#model', 'small')]);
    // The old run is not restarted on the other weights: the hash names only the model.
    assert.equal(await settle(page, ['ready', 'done', 'error']), 'ready');
    assert.equal(await page.evaluate(() => location.hash), '#model=small');
    assert.deepEqual(await loadedModel(page), { url: SMALL, options: ['small', 'full'], value: 'small', offered: true });
    assert.equal(await page.locator('#notice').textContent(), '');
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test('on WebGPU the full model is the default when the server has it', async () => {
  const browser = await launch(true);
  try {
    const { page, problems } = await open(browser, 'both', '?backend=webgpu');
    assert.equal(await settle(page, ['ready', 'error']), 'ready', await page.locator('#error').textContent());
    assert.equal(await page.locator('#backend').getAttribute('data-backend'), 'webgpu-f32');
    assert.deepEqual(await loadedModel(page), { url: FULL, options: ['small', 'full'], value: 'full', offered: true });
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test('with only one model file, the page loads it without a word about the missing one and offers no choice', async () => {
  const browser = await launch(false);
  try {
    for (const [name, url, missing] of [['small', SMALL, FULL], ['full', FULL, SMALL]]) {
      const { page, problems } = await open(browser, name, '');
      assert.equal(await settle(page, ['ready', 'error']), 'ready', await page.locator('#error').textContent());
      const loaded = await loadedModel(page);
      assert.equal(loaded.url, url);
      assert.equal(loaded.offered, false, `${name}: a choice of one is no choice`);
      assert.equal(await page.locator('#error').textContent(), '');
      assert.ok(servers[name].requests.includes(`HEAD /${missing}`), 'the missing file was asked for');
      assert.ok(!downloaded(name, missing), 'a file the server does not have is not fetched');
      assert.deepEqual(problems, []);
      await page.close();
    }
  } finally {
    await browser.close();
  }
});

test('with neither model file, the page says that no default weights are published yet', async () => {
  const browser = await launch(false);
  try {
    const { page, problems } = await open(browser, 'neither', '');
    assert.equal(await settle(page, ['ready', 'error']), 'error');
    const message = await page.locator('#error').textContent();
    assert.ok(message.includes(SMALL) && message.includes('404'), message);
    assert.match(message, /No default weights are published yet/);
    assert.equal(await page.locator('#status').textContent(), 'No usable weights.');
    assert.equal((await loadedModel(page)).offered, false);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test('the weights panel says how the file was made: steps, images, CPU-hours and parent files, in both languages', async () => {
  const browser = await launch(false);
  try {
    const { page, problems } = await open(browser, 'both', '?weights=/test/provenance.safetensors&lang=en');
    assert.equal(await settle(page, ['ready', 'error']), 'ready', await page.locator('#error').textContent());
    const provenance = page.locator('#weights-provenance');
    assert.equal(await provenance.textContent(),
      'Training: 12,000 steps, 384K images, 3.4 CPU-hours, 2 parent files (0011aabbccdd → ab12cd34ef56).');
    assert.equal((await loadedModel(page)).offered, false, 'a ?weights= file is no published model');
    await page.click('[data-testid=lang-toggle]');
    const chinese = await provenance.textContent();
    assert.ok(chinese.startsWith('训练经过：12,000 步，'), chinese);
    assert.ok(chinese.includes('，3.4 CPU 小时，2 个父文件（0011aabbccdd → ab12cd34ef56）。'), chinese);
    assert.doesNotMatch(chinese, /steps|images|hours|parent/);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test('the provenance line leaves out what a file does not record, and ignores junk', async () => {
  const browser = await launch(false);
  try {
    // tiny_weights writes TrainingInfo::default(): 0 steps, no images, no CPU time, no parents.
    const { page, problems } = await open(browser, 'both', '?weights=/test/tiny.safetensors&lang=en');
    assert.equal(await settle(page, ['ready', 'error']), 'ready', await page.locator('#error').textContent());
    assert.equal(await page.locator('#weights-provenance').textContent(), 'Training: 0 steps.');
    const summaries = await page.evaluate(async () => {
      const { trainingSummary } = await import('/www/provenance.js');
      return [
        // A file from before lineages and CPU time were recorded: `parent` only.
        { steps: 12000, images_seen: 384000, ema_decay: 0.9991, parent: 'ab12cd34ef56' },
        // A few minutes of CPU time; a long lineage shows its ends.
        { steps: 5, cpu_hours: 0.01, parents: ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'] },
        // Hostile or broken metadata: nothing of it is shown.
        { steps: 'many', images_seen: -3, cpu_hours: Infinity, parents: ['<b>', 7], parent: 'x' },
        undefined,
      ].map(trainingSummary);
    });
    assert.deepEqual(summaries, [
      '12,000 steps, 384K images, 1 parent file (ab12cd34ef56)',
      '5 steps, < 0.1 CPU-hours, 6 parent files (a1 → … → a6)',
      '',
      '',
    ]);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

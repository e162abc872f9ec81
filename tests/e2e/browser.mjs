// Shared by the browser tests: Debian's chromium (driven by playwright-core), a page opened
// with every error recorded, and pixel comparisons.

import assert from 'node:assert/strict';

import { chromium } from 'playwright-core';

/** Headless Debian chromium; `webgpu` enables WebGPU (SwiftShader without a GPU). */
export async function launch(webgpu) {
  const args = ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];
  if (webgpu) args.push('--enable-unsafe-webgpu');
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args });
}

/**
 * Opens `url`, recording the canvas after every drawn frame (unless `record` is false: a
 * benchmark leaves the main thread to the page) and every page/console error; `initScript`
 * (`[function, argument]`) runs before the page's own scripts.
 */
export async function openPage(browser, url, initScript, { record = true } = {}) {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // A 404 for a deliberately bad URL is logged by the browser itself; the page must explain it.
    if (message.type() === 'error' && !message.text().includes('Failed to load resource')) {
      problems.push(`console error: ${message.text()}`);
    }
  });
  if (record) {
    await page.addInitScript(() => {
      window.__frames = [];
      window.addEventListener('ddpm:frame', (event) => {
        const canvas = document.getElementById('canvas');
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        window.__frames.push({ step: event.detail.step, pixels: Array.from(pixels) });
      });
    });
  }
  if (initScript) await page.addInitScript(...initScript);
  await page.goto(url);
  return { page, problems };
}

/** Waits until the page's state is one of `states`; returns it. */
export async function settle(page, states = ['done', 'error']) {
  await page.waitForFunction((wanted) => wanted.includes(document.body.dataset.state), states, { timeout: 240_000, polling: 100 });
  return page.evaluate(() => document.body.dataset.state);
}

/** Mean absolute difference of two equally long pixel arrays (0..255 units). */
export function meanAbsDiff(a, b) {
  assert.equal(a.length, b.length);
  let total = 0;
  for (let i = 0; i < a.length; i += 1) total += Math.abs(a[i] - b[i]);
  return total / a.length;
}

/** Largest absolute difference of two equally long pixel arrays (0..255 units). */
export function maxAbsDiff(a, b) {
  assert.equal(a.length, b.length);
  let largest = 0;
  for (let i = 0; i < a.length; i += 1) largest = Math.max(largest, Math.abs(a[i] - b[i]));
  return largest;
}

/** The URLs the page's Cache API holds weights for. */
export function cachedWeights(page) {
  return page.evaluate(async () => {
    const cache = await caches.open('ddpm-avatars-weights-v1');
    return (await cache.keys()).map((request) => new URL(request.url).pathname);
  });
}

// Fetching weights files: progress, a size limit, the Cache API (a second visit does not
// download again), and errors in words. A download is kept in the cache only once the caller
// has validated it (`remember()`), so a broken or hostile file is fetched anew every time
// instead of being served from the cache. Which file is the default: www/models.js.

import { tr } from './teach/i18n.js';

const CACHE_NAME = 'ddpm-avatars-weights-v1';

/**
 * Largest weights file the page loads. The published files are under 20 MB; a file far
 * bigger is a wrong URL or a hostile server, and would only exhaust the tab's memory.
 */
export const MAX_WEIGHTS_BYTES = 64 * 1024 * 1024;

const megabytes = (bytes) => (bytes / (1024 * 1024)).toFixed(1);

/**
 * Fetches `url` (from the cache when present and still current), reporting progress in
 * [0, 1]. Resolves to `{bytes, remember, forget}`: once the bytes proved to be valid weights,
 * `remember()` keeps them in the cache; when they did not, `forget()` drops any cached copy.
 * Throws an Error whose message says what went wrong (HTTP status, network or CORS, a file
 * over MAX_WEIGHTS_BYTES).
 */
export async function fetchWeights(url, onProgress) {
  const absolute = new URL(url, document.baseURI).href;
  const cache = 'caches' in self ? await caches.open(CACHE_NAME).catch(() => null) : null;
  const forget = async () => { await cache?.delete(absolute).catch(() => {}); };
  const cached = cache ? await cache.match(absolute) : undefined;
  if (cached && await stillCurrent(absolute, cached)) {
    onProgress(1, tr('ui.fromCache'));
    return { bytes: await readCapped(cached, () => {}), remember: async () => {}, forget };
  }
  const response = await download(absolute, url);
  const bytes = await readCapped(response, onProgress);
  return { bytes, remember: () => store(cache, absolute, response.headers, bytes), forget };
}

/** The server's answer for `absolute`, or an Error in words (`url` as the user gave it). */
async function download(absolute, url) {
  let response;
  try {
    response = await fetch(absolute, { cache: 'no-cache' });
  } catch (error) {
    throw new Error(`could not fetch ${url}: the network failed or the server does not allow `
      + `cross-origin requests (CORS). (${error.message})`);
  }
  if (!response.ok) {
    throw new Error(`could not fetch ${url}: the server answered ${response.status} ${response.statusText}`.trim());
  }
  return response;
}

/** Keeps validated bytes in the cache, with the headers `stillCurrent` compares. */
async function store(cache, absolute, sourceHeaders, bytes) {
  if (!cache) return;
  const headers = { 'Content-Type': 'application/octet-stream' };
  for (const name of ['ETag', 'Last-Modified', 'Content-Length']) {
    const value = sourceHeaders.get(name);
    if (value) headers[name] = value;
  }
  await cache.put(absolute, new Response(bytes, { headers })).catch(() => {});
}

/**
 * Whether a cached file is still what the server has (same ETag, or same Last-Modified and
 * length), asked with a HEAD request. Offline, the cached copy is used.
 */
async function stillCurrent(url, cached) {
  let head;
  try {
    head = await fetch(url, { method: 'HEAD', cache: 'no-cache' });
  } catch {
    return true;
  }
  if (!head.ok) return false;
  const same = (name) => head.headers.get(name) === cached.headers.get(name);
  if (head.headers.get('ETag')) return same('ETag');
  return head.headers.get('Last-Modified') !== null && same('Last-Modified') && same('Content-Length');
}

/**
 * The body of `response`, at most MAX_WEIGHTS_BYTES: refused up front when Content-Length
 * says it is bigger, and cut off as soon as more bytes arrive than the limit (a server may
 * omit the length, or state a wrong one).
 */
async function readCapped(response, onProgress) {
  const declared = Number(response.headers.get('Content-Length')) || 0;
  if (declared > MAX_WEIGHTS_BYTES) {
    await response.body?.cancel().catch(() => {});
    throw new Error(tr('ui.weightsTooLarge', { size: megabytes(declared), limit: megabytes(MAX_WEIGHTS_BYTES) }));
  }
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const buffer = new GrowingBuffer(declared);
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return buffer.bytes();
    if (buffer.length + value.length > MAX_WEIGHTS_BYTES) {
      await reader.cancel().catch(() => {});
      const size = megabytes(buffer.length + value.length);
      throw new Error(tr('ui.weightsTooLargeStreamed', { size, limit: megabytes(MAX_WEIGHTS_BYTES) }));
    }
    buffer.append(value);
    onProgress(declared ? buffer.length / declared : 0, `${megabytes(buffer.length)} MB`);
  }
}

/**
 * Bytes appended chunk by chunk into one array, sized up front when the length is known (no
 * copy at the end), doubled when it runs out (an unknown or wrong length).
 */
class GrowingBuffer {
  constructor(expected) {
    this.array = new Uint8Array(expected || 1024 * 1024);
    this.length = 0;
  }

  append(chunk) {
    if (this.length + chunk.length > this.array.length) {
      const capacity = Math.max(this.length + chunk.length, 2 * this.array.length);
      const grown = new Uint8Array(Math.min(capacity, MAX_WEIGHTS_BYTES));
      grown.set(this.array.subarray(0, this.length));
      this.array = grown;
    }
    this.array.set(chunk, this.length);
    this.length += chunk.length;
  }

  /** The bytes appended so far (a view, not a copy). */
  bytes() {
    return this.array.subarray(0, this.length);
  }
}

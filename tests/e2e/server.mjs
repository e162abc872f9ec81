// A minimal static file server for the browser tests: serves the repository root on
// 127.0.0.1, with optional path overrides (e.g. the test weights at the default URL, or a
// handler that answers like a hostile server).

import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm', '.json': 'application/json', '.png': 'image/png',
  '.safetensors': 'application/octet-stream',
};

/** A handler for `serve`'s overrides: the path is not on this server (a file not published). */
export function notFound(request, response) {
  response.writeHead(404, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' });
  response.end(request.method === 'HEAD' ? undefined : 'not found');
}

/**
 * Starts serving `root`; `overrides` maps URL paths to files, or to handlers
 * `(request, response) => void` that answer themselves. Resolves to {url, close, requests}:
 * `requests` lists every `METHOD path` served, for tests that count downloads.
 */
export function serve(root, overrides = {}) {
  const requests = [];
  const server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url, 'http://localhost').pathname);
    requests.push(`${request.method} ${path}`);
    if (typeof overrides[path] === 'function') {
      overrides[path](request, response);
      return;
    }
    const file = overrides[path] ?? join(root, normalize(path).replace(/^(\.\.[/\\])+/, ''));
    try {
      const body = await readFile(path.endsWith('/') ? join(file, 'index.html') : file);
      response.writeHead(200, {
        'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
        'Content-Length': body.length,
        'Cache-Control': 'no-store',
        ETag: `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`,
      });
      response.end(request.method === 'HEAD' ? undefined : body);
    } catch {
      response.writeHead(404, { 'Content-Type': 'text/plain' });
      response.end('not found');
    }
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        url: `http://127.0.0.1:${port}`,
        requests,
        close: () => new Promise((done) => server.close(done)),
      });
    });
  });
}

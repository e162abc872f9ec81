// Crisp canvas drawing for the teaching toys (charts, two-pixel world).

/**
 * Sizes a canvas's backing store to its CSS width (and `aspect` x that height) times
 * devicePixelRatio, and scales the context so drawing happens in CSS pixels. Returns
 * `{ctx, width, height, size}` in CSS pixels (`size` = width), or null while not laid out.
 */
export function fitCanvas(canvas, aspect) {
  const width = canvas.clientWidth;
  if (!width) return null;
  const height = Math.round(width * aspect);
  const dpr = window.devicePixelRatio || 1;
  const [w, h] = [Math.round(width * dpr), Math.round(height * dpr)];
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx, width, height, size: width };
}

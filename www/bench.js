// The page's fixed benchmark (?bench=1, or its button): DDIM with 20 steps at batch 1 and 16
// on the loaded weights, every step drawn, timed where the time goes: the model (in the
// worker, reading its result back included), drawing (this thread) and the whole step as the
// page sees it (messages included). A table to paste into a bug report.

import { drawFrame } from './teach/pixels.js';

/** The settings every benchmark uses, so figures from two machines compare. */
export const BENCH = { batches: [1, 16], steps: 20, seed: 0 };

const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;

/**
 * Runs the benchmark on a twin of `generator` (the page's run is left alone), once every CPU
 * helper thread has started; resolves to one row per batch: `{batch, threads, steps,
 * firstStepMs, modelMs, drawMs, wallMs}`, the last three the mean of steps 2 to 20 (the first
 * includes one-off work such as shader compilation).
 */
export async function runBenchmark(generator, { onProgress = () => {} } = {}) {
  const canvas = document.createElement('canvas');
  const rows = [];
  await generator.threads();
  for (const batch of BENCH.batches) {
    const twin = generator.twin();
    try {
      await twin.start({ seed: BENCH.seed, batch, sampler: 'ddim', steps: BENCH.steps });
      const model = [];
      const draw = [];
      const wall = [];
      let threads = 1;
      for (let step = 1; step <= BENCH.steps; step += 1) {
        const started = performance.now();
        const frame = await twin.step({ draw: true });
        threads = frame.threads ?? 1;
        const arrived = performance.now();
        drawFrame(canvas, frame);
        const drawn = performance.now();
        model.push(frame.modelMs);
        draw.push(drawn - arrived);
        wall.push(drawn - started);
        onProgress(batch, step, BENCH.steps);
      }
      rows.push({
        batch, threads, steps: BENCH.steps, firstStepMs: wall[0],
        modelMs: mean(model.slice(1)), drawMs: mean(draw.slice(1)), wallMs: mean(wall.slice(1)),
      });
    } finally {
      twin.free();
    }
  }
  return rows;
}

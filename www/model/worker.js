// The model's own thread. This module Worker owns every wasm Generator (the page's, and the
// twins the teaching views drive) and is their only caller: requests are handled one at a
// time, in the order they arrive (`enqueue`), so no two calls into a Generator ever overlap.
// On the CPU it also starts helper workers (more instances of this file) and runs each batch
// over them and itself (www/model/parallel.js): every Generator here is such a `Parallel`.
// The main run's loop also lives here, paced by the worker (not by animation frames, which
// stop in a background tab): each of its steps is a job in the same queue, so a teaching
// view's request waits at most one step.
//
// Messages in (from www/model/client.js), each `{op, ...}`:
// - requests `{op, request, ...}`, answered `{reply: request, result}` or `{reply: request, error}`:
//   load, fingerprint, twin, call (start | startFrom | step | preview), free; and `threads`,
//   answered without waiting for the queue
// - the main run: `run` starts one (a run in progress is stopped first); `pause`, `resume`,
//   `stop`, `drawn` (a frame was drawn: the next may come; carries what to read back) and
//   `wants` act at once and never touch a Generator
// Messages out: replies, and `{event: 'frame' | 'step' | 'end', run, ...}` for the main run.

import init, { Generator } from '../pkg/ddpm_avatars.js';
import { HelperPool, MAX_THREADS, Parallel } from './parallel.js';

/** The page's Generator; twins get the ids the page gives them. */
const MAIN = 0;
/** Frames of the main run sent but not yet drawn, at most: the page never falls behind. */
const MAX_FRAMES_IN_FLIGHT = 2;

const generators = new Map();
/** The CPU helper workers of the page's weights (none on WebGPU, or in a helper). */
let pool = HelperPool.none();
let queue = Promise.resolve();
let current = null; // the main run

/** Runs `job` once every job queued before it has finished (failed or not). */
function enqueue(job) {
  const result = queue.then(job);
  queue = result.catch(() => {});
  return result;
}

/** `job`'s result and how long it took, timed inside the queue (waiting not counted). */
function timed(job) {
  return enqueue(async () => {
    const started = performance.now();
    const value = await job();
    return { value, ms: performance.now() - started };
  });
}

// A turn for the messages waiting (pause, stop, a view's request) between two steps. A
// MessageChannel, not setTimeout: timers are throttled in background tabs, messages are not.
const ticker = new MessageChannel();
const ticks = [];
ticker.port1.onmessage = () => ticks.shift()?.();
function yieldToMessages() {
  return new Promise((resolve) => {
    ticks.push(resolve);
    ticker.port2.postMessage(null);
  });
}

/** The typed arrays' buffers in a result (frames): moved to the page, not copied. */
function transferables(value, found = []) {
  if (ArrayBuffer.isView(value)) {
    if (value.byteOffset === 0 && value.byteLength === value.buffer.byteLength) found.push(value.buffer);
  } else if (value && typeof value === 'object') {
    for (const item of Object.values(value)) transferables(item, found);
  }
  return found;
}

function errorText(error) {
  return error instanceof Error ? error.message : String(error);
}

function generator(id) {
  const found = generators.get(id);
  if (!found) throw new Error(`no model ${id} in the worker`);
  return found;
}

// ---------- requests (queued) ----------

const CALLS = {
  start: (target, [options]) => target.start(options),
  startFrom: (target, [x, t, options]) => target.startFrom(x, t, options),
  step: (target, [options]) => target.step(options),
  preview: (target, [raw, tiles]) => target.preview(raw, tiles),
};

const REQUESTS = {
  /**
   * Instantiates the page's compiled wasm module, then validates the weights; on the CPU
   * starts `threads - 1` helpers (www/model/parallel.js).
   */
  async load({ module, weights, useWebgpu, threads = 1 }) {
    await init({ module_or_path: module });
    const started = performance.now();
    const local = await Generator.create(weights, useWebgpu);
    const wanted = Math.min(MAX_THREADS, Math.max(1, Math.floor(threads) || 1));
    pool = local.backend === 'cpu' && wanted > 1 ? HelperPool.start(module, weights, wanted - 1) : HelperPool.none();
    const main = new Parallel(local, pool);
    generators.set(MAIN, main);
    return {
      id: MAIN,
      createMs: performance.now() - started,
      backend: main.backend,
      weightsHash: main.weightsHash,
      metadataJson: main.metadataJson,
      timesteps: main.timesteps,
      imageSize: main.imageSize,
      table: main.scheduleTable(),
    };
  },
  fingerprint: () => generator(MAIN).checkFingerprint(),
  twin({ of, id }) {
    generators.set(id, generator(of).twin());
  },
  async call({ id, method, args }) {
    const target = generator(id);
    if (!(method in CALLS)) throw new Error(`unknown model call ${method}`);
    const started = performance.now();
    const result = await CALLS[method](target, args);
    if (result && typeof result === 'object') result.modelMs = performance.now() - started;
    return result;
  },
  free({ id }) {
    generators.get(id)?.free();
    generators.delete(id);
  },
};

// ---------- the main run ----------

function post(message) {
  self.postMessage(message, transferables(message));
}

/** Steps the page's Generator through the run `state` describes, posting its frames. */
async function runLoop(state) {
  let main;
  try {
    main = generator(MAIN);
    await enqueue(() => main.start(state.settings));
  } catch (error) {
    post({ event: 'end', run: state.id, outcome: 'error', phase: 'start', error: errorText(error) });
    return;
  }
  try {
    const preview = await timed(() => main.preview(Boolean(state.wants.raw)));
    state.inFlight += 1;
    post({ event: 'frame', run: state.id, frame: preview.value, modelMs: preview.ms, threads: main.threads });
    const total = preview.value.total;
    for (let step = preview.value.step + 1; step <= total; step += 1) {
      await yieldToMessages();
      while (!state.stopped && (state.paused || state.inFlight >= MAX_FRAMES_IN_FLIGHT)) {
        await new Promise((resolve) => { state.wake = resolve; });
      }
      if (state.stopped) break;
      const { every, x0, raw, focus } = state.wants;
      const draw = step % Math.max(1, every || 1) === 0 || step === total;
      const options = draw ? { draw, x0: Boolean(x0), raw: Boolean(raw), focus: focus ?? undefined } : {};
      const { value, ms } = await timed(() => main.step(options));
      if (state.stopped) break;
      if (draw) {
        state.inFlight += 1;
        post({ event: 'frame', run: state.id, frame: value, modelMs: ms, threads: main.threads });
      } else {
        post({ event: 'step', run: state.id, step: value.step, total: value.total, modelMs: ms });
      }
    }
    post({ event: 'end', run: state.id, outcome: state.stopped ? 'stopped' : 'done' });
  } catch (error) {
    post({ event: 'end', run: state.id, outcome: 'error', phase: 'step', error: errorText(error) });
  }
}

function wake(state) {
  const resolve = state?.wake;
  if (state) state.wake = null;
  resolve?.();
}

/** Messages about the main run: they act at once and never call into a Generator. */
const RUN_CONTROL = {
  run({ run: id, settings, wants }) {
    if (current) {
      current.stopped = true;
      wake(current);
    }
    current = { id, settings, wants, paused: false, stopped: false, inFlight: 0, wake: null };
    runLoop(current);
  },
  pause({ run: id }) {
    if (current?.id === id) current.paused = true;
  },
  resume({ run: id }) {
    if (current?.id !== id) return;
    current.paused = false;
    wake(current);
  },
  stop({ run: id }) {
    if (current?.id !== id) return;
    current.stopped = true;
    wake(current);
  },
  drawn({ run: id, wants }) {
    if (current?.id !== id) return;
    current.inFlight = Math.max(0, current.inFlight - 1);
    if (wants) current.wants = wants;
    wake(current);
  },
  wants({ run: id, wants }) {
    if (current?.id === id) current.wants = wants;
  },
};

/** Requests answered outside the queue: they never call into a Generator. */
const UNQUEUED = {
  /** Threads a run of the page's Generator uses, once every helper has started (or failed). */
  async threads() {
    await pool.settled;
    return pool.helpers.length + 1;
  },
};

self.onmessage = ({ data }) => {
  if (data.op in RUN_CONTROL) {
    RUN_CONTROL[data.op](data);
    return;
  }
  const request = REQUESTS[data.op];
  const answer = data.op in UNQUEUED
    ? UNQUEUED[data.op](data)
    : request
      ? enqueue(() => request(data))
      : Promise.reject(new Error(`unknown request ${data.op}`));
  answer.then(
    (result) => self.postMessage({ reply: data.request, result }, transferables(result)),
    (error) => self.postMessage({ reply: data.request, error: errorText(error) }),
  );
};

// The CPU backend on every core. wasm in a page has no threads of its own here (burn's rayon
// would need SharedArrayBuffer, cross-origin isolation and a nightly Rust std), so a batch is
// run in parts instead: the model worker's own Generator takes one part, helper workers (more
// instances of www/model/worker.js, each with its own copy of the weights) take the others,
// and all parts step at the same time.
//
// Splitting changes no number: image i of a batch uses seed + i for x_T and for every step's
// noise (src/noise.rs), so a part holding images first .. first + n - 1 is started at
// seed + first and computes those images as the whole batch would. Each part sends its pictures
// as packed pixels (`tiles`), joined in batch order and drawn once (`packedToFrame`): a joined
// frame has the fields, layout and pixels of the whole batch's frame.

import { packedToFrame } from '../pkg/ddpm_avatars.js';
import { ModelWorker } from './client.js';

/** Most threads the page uses, whatever the machine reports (each holds a model copy). */
export const MAX_THREADS = 8;

/** Values per image: the models are RGB (src/weights.rs). */
const CHANNELS = 3;

/**
 * Splits a batch into `count` parts of consecutive images, the larger parts first:
 * `[{first, count}]`. 9 images in 4 parts: 3, 2, 2, 2.
 */
export function splitBatch(batch, count) {
  const parts = [];
  let first = 0;
  for (let k = 0; k < count; k += 1) {
    const size = Math.floor(batch / count) + (k < batch % count ? 1 : 0);
    parts.push({ first, count: size });
    first += size;
  }
  return parts;
}

/** The typed arrays `arrays` one after the other, in one array of their type. */
function concatenate(arrays) {
  const joined = new arrays[0].constructor(arrays.reduce((sum, array) => sum + array.length, 0));
  let offset = 0;
  for (const array of arrays) {
    joined.set(array, offset);
    offset += array.length;
  }
  return joined;
}

/**
 * The helper workers of the page's weights: each loads them (after the page is ready, so they
 * never delay it) and joins `helpers` once it has; one that fails to load, or stops later, is
 * left out (a warning for the first), and batches run on fewer threads.
 */
export class HelperPool {
  /** A pool with no helpers (WebGPU, one thread, or a helper itself). */
  static none() {
    return new HelperPool([], Promise.resolve());
  }

  /** Starts `count` helpers for `weights`: model workers (www/model/worker.js) on `module`. */
  static start(module, weights, count) {
    const ready = [];
    const loads = Array.from({ length: count }, () => {
      const helper = ModelWorker.open(module);
      return helper.load(weights, false, 1).then(
        (remote) => { ready.push(remote); },
        (error) => {
          console.warn(`a CPU helper thread did not start, batches use one fewer: ${error.message ?? error}`);
          helper.close();
        },
      );
    });
    return new HelperPool(ready, Promise.all(loads));
  }

  constructor(ready, settled) {
    this.ready = ready;
    /** Resolves once every helper has loaded or failed. */
    this.settled = settled;
  }

  /** The page's Generator in each helper that has loaded and still runs. */
  get helpers() {
    return this.ready.filter((remote) => !remote.worker.closed);
  }
}

/**
 * A Generator (the wasm one's calls: `start`, `startFrom`, `step`, `preview`, `twin`, ...)
 * that runs each batch over `local`, a wasm Generator, and the helpers of `pool`: the page's
 * Generator itself in each helper for the page's Generator (`root`), a twin of it for each
 * twin. A batch waits until every helper has started, then uses those that did.
 */
export class Parallel {
  // Every batch call maps the parts in order, helpers first: their messages go out before the
  // local Generator, last, computes its part on this thread.
  constructor(local, pool = HelperPool.none(), root = true) {
    this.local = local;
    this.pool = pool;
    this.root = root;
    this.twins = new Map(); // helper -> this twin's Generator there (twins only)
    this.parts = null; // the run in progress: [{generator, first, count}]
    this.batch = 0;
  }

  get backend() { return this.local.backend; }

  get weightsHash() { return this.local.weightsHash; }

  get metadataJson() { return this.local.metadataJson; }

  get timesteps() { return this.local.timesteps; }

  get imageSize() { return this.local.imageSize; }

  /** Threads the run in progress uses (1 before any run). */
  get threads() { return this.parts?.length ?? 1; }

  scheduleTable() { return this.local.scheduleTable(); }

  checkFingerprint() { return this.local.checkFingerprint(); }

  /** The same weights with a run of their own, over the same threads. */
  twin() {
    return new Parallel(this.local.twin(), this.pool, false);
  }

  free() {
    this.local.free();
    for (const twin of this.twins.values()) twin.free();
    this.twins.clear();
  }

  /** This Generator's counterpart in each running helper (a twin's made on first use). */
  helpers() {
    if (this.root) return this.pool.helpers;
    return this.pool.helpers.map((helper) => {
      if (!this.twins.has(helper)) this.twins.set(helper, helper.twin());
      return this.twins.get(helper);
    });
  }

  /**
   * The parts a batch of `batch` images from `seed` runs in: one per thread, at least one image
   * each, the local Generator last (it also joins the frames). A single part when the seeds
   * of the later images would not be exact JS numbers, or the seed is not valid at all: the
   * local Generator then runs (or refuses) it exactly as before.
   */
  async plan(batch, seed) {
    if (batch > 1) await this.pool.settled;
    const generators = [...this.helpers(), this.local];
    const exact = Number.isSafeInteger(seed) && seed >= 0 && Number.isSafeInteger(seed + batch - 1);
    const count = exact && Number.isSafeInteger(batch) && batch > 1 ? Math.min(batch, generators.length) : 1;
    const shift = generators.length - count; // the local Generator is always in
    return splitBatch(batch, count).map((part, k) => ({ ...part, generator: generators[shift + k] }));
  }

  /** Starts a run (as `Generator.start`), split over the threads there are now. */
  async start(options) {
    this.parts = null;
    const batch = options?.batch ?? 1;
    const parts = await this.plan(batch, options?.seed);
    if (parts.length === 1) return this.local.start(options);
    await Promise.all(parts.map(({ generator, first, count }) => generator.start({ ...options, seed: options.seed + first, batch: count })));
    this.parts = parts;
    this.batch = batch;
    return undefined;
  }

  /** Starts a run from given images (as `Generator.startFrom`), split like `start`. */
  async startFrom(x, t, options) {
    this.parts = null;
    const size = this.local.imageSize;
    const perImage = CHANNELS * size * size;
    const whole = x?.length > 0 && x.length % perImage === 0;
    const parts = whole ? await this.plan(x.length / perImage, options?.seed) : [];
    if (parts.length <= 1) return this.local.startFrom(x, t, options);
    const values = Float32Array.from(x);
    await Promise.all(parts.map(({ generator, first, count }) => generator.startFrom(
      values.slice(first * perImage, (first + count) * perImage), t, { ...options, seed: options.seed + first },
    )));
    this.parts = parts;
    this.batch = x.length / perImage;
    return undefined;
  }

  /** One reverse step of every part (as `Generator.step`), joined into the batch's frame. */
  async step(options = {}) {
    if (!this.parts) return this.local.step(options);
    const { draw, x0, raw, focus } = options;
    const focused = focus === undefined || focus === null ? null : focus;
    if (focused !== null && !(Number.isInteger(focused) && focused >= 0 && focused < this.batch)) {
      throw new Error(`focus ${focused} is not in a batch of ${this.batch}`);
    }
    const owns = (part) => focused !== null && focused >= part.first && focused < part.first + part.count;
    const frames = await Promise.all(this.parts.map((part) => part.generator.step({
      draw: Boolean(draw), x0: Boolean(x0), raw: Boolean(raw), tiles: true,
      ...(owns(part) ? { focus: focused - part.first } : {}),
    })));
    const frame = this.join(frames, { draw, x0, raw });
    const owner = this.parts.findIndex(owns);
    if (owner >= 0) frame.focus = { ...frames[owner].focus, index: focused };
    return frame;
  }

  /** The current images of every part (as `Generator.preview`), joined. */
  async preview(raw, tiles) {
    if (!this.parts) return this.local.preview(raw, tiles);
    const frames = await Promise.all(this.parts.map((part) => part.generator.preview(Boolean(raw), true)));
    return this.join(frames, { draw: true, raw });
  }

  /** One frame from the parts' frames: their counters, pixels joined and drawn, raw values joined. */
  join(frames, { draw, x0, raw }) {
    const { t, level, step, total, done } = frames[0];
    const frame = { t, level, step, total, done, threads: frames.length };
    const size = this.local.imageSize;
    if (draw) Object.assign(frame, packedToFrame(concatenate(frames.map((part) => part.pixels)), this.batch, size));
    if (x0) {
      const picture = packedToFrame(concatenate(frames.map((part) => part.x0Pixels)), this.batch, size);
      Object.assign(frame, { width: picture.width, height: picture.height, x0: picture.rgba });
    }
    if (raw) frame.x = concatenate(frames.map((part) => part.x));
    return frame;
  }
}

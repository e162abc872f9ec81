// The page's side of the model worker (www/model/worker.js): the main thread never runs the
// model, it sends requests and draws what comes back.
//
// - `ModelWorker.open(module)` starts the worker with the page's compiled wasm module
//   (compiled once, instantiated in both threads: the page keeps the cheap pure helpers).
// - `worker.load(bytes, useWebgpu, threads)` validates weights there and resolves to a
//   `RemoteGenerator`: the same calls as the wasm Generator (`start`, `startFrom`, `step`,
//   `preview`, `twin`, ...), each answered by the worker in arrival order, so a call made at any
//   moment is queued, never an aliasing error.
// - `worker.run(settings, wants, onEvent)` starts the main run, which the worker paces itself.

/** Thrown for a request the worker could not serve (the message says why). */
export class ModelError extends Error {}

export class ModelWorker {
  /** Starts the worker; `module` is the page's compiled `WebAssembly.Module`. */
  static open(module) {
    return new ModelWorker(new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }), module);
  }

  constructor(worker, module) {
    this.worker = worker;
    this.module = module;
    this.nextRequest = 1;
    this.nextTwin = 1;
    this.nextRun = 1;
    this.pending = new Map();
    this.run = null; // {id, onEvent}
    worker.onmessage = ({ data }) => this.receive(data);
    // A worker that failed to load (or crashed) fails every waiting request with the reason.
    this.closed = false; // set once the worker has stopped (crashed, or closed)
    worker.onerror = (event) => {
      event.preventDefault?.();
      this.closed = true;
      this.failAll(event.message || 'the model worker stopped');
    };
  }

  receive(data) {
    if (data.reply !== undefined) {
      const waiting = this.pending.get(data.reply);
      this.pending.delete(data.reply);
      if (!waiting) return;
      if (data.error !== undefined) waiting.reject(new ModelError(data.error));
      else waiting.resolve(data.result);
    } else if (data.event && this.run?.id === data.run) {
      this.run.onEvent(data);
    }
  }

  failAll(reason) {
    for (const waiting of this.pending.values()) waiting.reject(new ModelError(reason));
    this.pending.clear();
    if (this.run) this.run.onEvent({ event: 'end', run: this.run.id, outcome: 'error', phase: 'step', error: reason });
  }

  /** Sends a request; resolves to the worker's answer (requests are served in order). */
  request(op, fields = {}) {
    const id = this.nextRequest;
    this.nextRequest += 1;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...fields, op, request: id });
    });
  }

  /** A message about the main run; it takes effect at once (between two steps). */
  control(op, fields = {}) {
    if (this.run) this.worker.postMessage({ op, run: this.run.id, ...fields });
  }

  /**
   * Validates `bytes` as weights in the worker; resolves to the page's RemoteGenerator. On the
   * CPU the worker then loads the weights into `threads - 1` helper workers too, so that a
   * batch runs on `threads` cores (www/model/parallel.js).
   */
  async load(bytes, useWebgpu, threads = 1) {
    const info = await this.request('load', { module: this.module, weights: bytes, useWebgpu, threads });
    return new RemoteGenerator(this, info.id, info);
  }

  /** Ends the worker (and the helpers it started). */
  close() {
    this.closed = true;
    this.worker.terminate();
    this.failAll('the model worker was closed');
  }

  /**
   * Starts the main run (stopping one in progress): `settings` as `Generator.start` takes
   * them; `wants` `{every, x0, raw, focus}`: what each drawn step reads back. `onEvent` gets
   * `{event: 'frame', frame, modelMs}` (acknowledge each with `drawn()`), `{event: 'step',
   * step, total, modelMs}` for steps not drawn, and `{event: 'end', outcome, error}`.
   */
  startRun(settings, wants, onEvent) {
    const id = this.nextRun;
    this.nextRun += 1;
    this.run = { id, onEvent };
    this.worker.postMessage({ op: 'run', run: id, settings, wants });
    return id;
  }

  /** A frame was drawn: the worker may send the next; `wants` updates what it reads back. */
  drawn(wants) {
    this.control('drawn', { wants });
  }

  pause() { this.control('pause'); }

  resume() { this.control('resume'); }

  stop() { this.control('stop'); }

  wants(wants) { this.control('wants', { wants }); }
}

/** A Generator that lives in the worker, with the wasm Generator's calls (all async). */
export class RemoteGenerator {
  constructor(worker, id, info) {
    this.worker = worker;
    this.id = id;
    this.info = info;
  }

  get backend() { return this.info.backend; }

  get weightsHash() { return this.info.weightsHash; }

  get metadataJson() { return this.info.metadataJson; }

  get timesteps() { return this.info.timesteps; }

  get imageSize() { return this.info.imageSize; }

  /** Milliseconds the worker took to validate the weights and build the model. */
  get createMs() { return this.info.createMs; }

  /** The weights' schedule table (fetched once, with the weights). */
  scheduleTable() { return this.info.table; }

  checkFingerprint() { return this.worker.request('fingerprint'); }

  /** Resolves to the CPU threads a batch runs on, once the helper workers have started. */
  threads() { return this.worker.request('threads'); }

  /** The same weights with a run of its own; usable at once (the worker creates it first). */
  twin() {
    const id = this.worker.nextTwin;
    this.worker.nextTwin += 1;
    const made = this.worker.request('twin', { of: this.id, id });
    made.catch(() => {}); // a failure shows in the twin's first call
    return new RemoteGenerator(this.worker, id, this.info);
  }

  call(method, ...args) {
    return this.worker.request('call', { id: this.id, method, args });
  }

  start(options) { return this.call('start', options); }

  startFrom(x, t, options) { return this.call('startFrom', x, t, options); }

  /** One reverse step; the frame also carries `modelMs`, the worker's time for it. */
  step(options) { return this.call('step', options); }

  /** The current images; `tiles`: pictures as packed pixels (see www/model/parallel.js). */
  preview(raw, tiles) { return this.call('preview', raw, tiles); }

  /** Drops the twin's run and model handle in the worker (the weights stay shared). */
  free() {
    this.worker.request('free', { id: this.id }).catch(() => {});
  }
}

// The page's controller: hands the weights to the model worker (www/model/), starts, pauses
// and stops runs there, draws every frame it sends (every k-th step), shows where the time
// goes, and keeps the share link in the URL hash. The main thread never runs the model: all
// model logic lives in the Rust crate (src/web.rs), called from the worker.

import init from './pkg/ddpm_avatars.js';
import { runBenchmark } from './bench.js';
import { ModelWorker } from './model/client.js';
import { MAX_THREADS } from './model/parallel.js';
import { fetchWeights } from './weights.js';
import {
  MODELS, addressForModel, availableModels, chooseModel, modelAt, modelFromHash, modelParams,
  showModelChoice,
} from './models.js';
import { trainingSummary } from './provenance.js';
import { gridLayout } from './grid.js';
import { BATCH_CHOICES, SPACINGS, VARIANCES, oneOf, seedFrom, wholeNumberIn } from './params.js';
import { decodeShare, encodeShare } from './share.js';
import { STRINGS } from './strings.js';
import { LANGUAGE_EVENT, initLanguage, mountLanguageToggle, registerStrings, tr } from './teach/i18n.js';
import {
  mountTeaching, restoreTeaching, runStarted, runStepped, setGenerator, stepRequest, teachingParams,
} from './teach/teach.js';
import { drawFrame } from './teach/pixels.js';

registerStrings(STRINGS);

const $ = (id) => document.getElementById(id);
const ui = {
  canvas: $('canvas'), progress: $('progress'), status: $('status'), timing: $('timing'),
  generate: $('generate'), pause: $('pause'), stop: $('stop'), batch: $('batch'),
  sampler: $('sampler'), steps: $('steps'), stepsLabel: $('steps-label'), seed: $('seed'),
  variance: $('variance'), varianceLabel: $('variance-label'),
  spacing: $('spacing'), spacingLabel: $('spacing-label'),
  dice: $('dice'), clip: $('clip'), every: $('every'), showX0: $('show-x0'),
  downloadWhat: $('download-what'), download: $('download'), share: $('share'),
  backend: $('backend'), cpuHint: $('cpu-hint'), cpuEta: $('cpu-eta'),
  switchDdim: $('switch-ddim'), notice: $('notice'), error: $('error'),
  weightsInfo: $('weights-info'), weightsProvenance: $('weights-provenance'),
  weightsUrl: $('weights-url'), figures: $('figures'), model: $('model'), modelRow: $('model-row'),
  benchRun: $('bench-run'), benchStatus: $('bench-status'), benchTable: $('bench-table'),
};

const run = {
  worker: null, // the model worker (www/model/client.js)
  generator: null, // the page's RemoteGenerator, once weights loaded
  model: null, // the MODELS entry loaded; null for a file given by ?weights=URL
  available: [], // the MODELS entries the server has
  active: false,
  paused: false,
  finished: null, // resolves when the run in progress ends
  ended: null, // resolves `finished`
  threads: 1, // CPU threads of the run in progress (www/model/parallel.js)
  stepMillis: [], // the worker's time per step (the model, and reading its result back)
  drawMillis: [], // this thread's time per drawn frame
  clickedAt: 0,
  settings: null,
  lastFrame: null,
  load: { fetchMs: null, checkMs: null }, // time to the first step: the weights' part
};

// ---------- small helpers ----------

function setPageState(name) {
  document.body.dataset.state = name;
}

function setStatus(text) {
  ui.status.textContent = text;
}

function showError(text) {
  ui.error.textContent = text;
  ui.error.hidden = !text;
}

function showNotice(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = !text;
}

function errorText(error) {
  return error instanceof Error ? error.message : String(error);
}

/** A software rasteriser (SwiftShader, llvmpipe, WARP) is slower than the CPU backend. */
function isSoftwareAdapter(adapter) {
  const info = adapter.info ?? {};
  if (info.isFallbackAdapter || adapter.isFallbackAdapter) return true;
  const names = [info.vendor, info.architecture, info.device, info.description].join(' ');
  return /swiftshader|llvmpipe|lavapipe|software|basic render|warp/i.test(names);
}

/**
 * Whether to run on WebGPU. `?backend=cpu` forces the CPU and `?backend=webgpu` WebGPU even on
 * a software adapter; otherwise WebGPU only when the adapter is a real GPU. Returns
 * `{ useWebgpu, software }` (`software`: an adapter exists, but only a software one).
 */
async function chooseBackend() {
  const asked = new URLSearchParams(location.search).get('backend');
  if (asked === 'cpu' || !('gpu' in navigator)) return { useWebgpu: false, software: false };
  let adapter = null;
  try {
    adapter = await navigator.gpu.requestAdapter();
  } catch {
    adapter = null;
  }
  if (!adapter) return { useWebgpu: false, software: false };
  const software = isSoftwareAdapter(adapter);
  return { useWebgpu: asked === 'webgpu' || !software, software };
}

// ---------- weights ----------

/**
 * Compiles the wasm module once: this thread instantiates it for the pure helpers (noise,
 * schedule tables, pixels), the model worker for the model.
 */
async function loadWasm() {
  const url = new URL('./pkg/ddpm_avatars_bg.wasm', import.meta.url);
  let module;
  try {
    module = await WebAssembly.compileStreaming(fetch(url));
  } catch {
    // A server that does not say application/wasm: compile from the bytes instead.
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url} answered ${response.status}`);
    module = await WebAssembly.compile(await response.arrayBuffer());
  }
  await init({ module_or_path: module });
  return module;
}

/**
 * Threads the CPU backend runs a batch on: `?threads=N` (1 to MAX_THREADS), else every core
 * the browser reports, up to MAX_THREADS (each thread holds a copy of the model).
 */
function cpuThreads() {
  const cores = Math.min(MAX_THREADS, navigator.hardwareConcurrency || 1);
  return wholeNumberIn(new URLSearchParams(location.search).get('threads'), { min: 1, max: MAX_THREADS, fallback: cores });
}

/** Downloads the weights at `url` and validates them in the worker; only weights that loaded are cached. */
async function loadGenerator(url, useWebgpu) {
  setStatus(tr('ui.downloading', { url }));
  ui.progress.removeAttribute('value');
  const fetchStarted = performance.now();
  const weights = await fetchWeights(url, (fraction, detail) => {
    ui.progress.value = fraction;
    setStatus(tr('ui.downloadingDetail', { detail }));
  });
  run.load.fetchMs = performance.now() - fetchStarted;
  setStatus(tr('ui.checking'));
  let generator;
  try {
    generator = await run.worker.load(weights.bytes, useWebgpu, cpuThreads());
  } catch (error) {
    await weights.forget();
    throw error;
  }
  run.load.checkMs = generator.createMs;
  await weights.remember();
  return generator;
}

/**
 * Tries `candidates` (URLs) in order until one loads; each failure is shown in words. Resolves
 * to the URL that loaded, or null.
 */
async function loadFirstUsable(candidates, requested, useWebgpu) {
  for (const url of candidates) {
    try {
      run.generator = await loadGenerator(url, useWebgpu);
      return url;
    } catch (error) {
      const fallback = url === requested ? tr('ui.fallback') : '';
      // Only a published model's file missing means "not published yet" (the none-found case).
      const unpublished = modelAt(url) && /answered 404/.test(errorText(error)) ? tr('ui.unpublished') : '';
      showError(tr('ui.weightsFailed', { url, error: errorText(error) }) + fallback + unpublished);
    }
  }
  return null;
}

function describeWeights(generator, url) {
  ui.weightsUrl.textContent = url;
  let training = '';
  try {
    const meta = JSON.parse(generator.metadataJson);
    const size = meta.image.size;
    ui.weightsInfo.textContent = tr('ui.modelInfo', {
      size, dataset: meta.dataset.name, licence: meta.dataset.licence, hash: generator.weightsHash,
    });
    training = trainingSummary(meta.training);
  } catch {
    ui.weightsInfo.textContent = tr('ui.weightsOnly', { hash: generator.weightsHash });
  }
  ui.weightsProvenance.textContent = training ? tr('ui.provenance', { training }) : '';
  ui.weightsProvenance.hidden = !training;
  const cpuWhy = run.softwareAdapter ? 'ui.backendCpuSoftware' : 'ui.backendCpu';
  const backend = tr(generator.backend === 'cpu' ? cpuWhy : 'ui.backendGpu');
  ui.backend.textContent = backend;
  ui.backend.dataset.backend = generator.backend;
}

// ---------- settings and share link ----------

/** The controls' settings, each in its valid range (the input boxes accept any text). */
function readSettings() {
  const sampler = oneOf(ui.sampler.value, ['ddpm', 'ddim'], 'ddpm');
  const timesteps = run.generator ? run.generator.timesteps : 1000;
  const steps = sampler === 'ddpm' ? timesteps : wholeNumberIn(ui.steps.value, { min: 1, max: timesteps, fallback: 50 });
  return {
    seed: seedFrom(ui.seed.value),
    batch: oneOf(ui.batch.value, BATCH_CHOICES, 4),
    sampler,
    steps,
    clip: ui.clip.checked,
    variance: oneOf(ui.variance.value, VARIANCES, VARIANCES[0]),
    spacing: oneOf(ui.spacing.value, SPACINGS, SPACINGS[0]),
  };
}

function applySettings(settings) {
  ui.seed.value = String(settings.seed);
  ui.batch.value = String(settings.batch);
  ui.sampler.value = settings.sampler;
  ui.steps.value = String(settings.steps);
  ui.clip.checked = settings.clip;
  ui.variance.value = settings.variance;
  ui.spacing.value = settings.spacing;
  updateStepsVisibility();
}

/** DDIM has steps and a spacing; DDPM runs all T steps and has a variance. */
function updateStepsVisibility() {
  const ddim = ui.sampler.value === 'ddim';
  ui.stepsLabel.hidden = !ddim;
  ui.spacingLabel.hidden = !ddim;
  ui.varianceLabel.hidden = ddim;
}

/** The share link's parameters after the run's: which model file, and the open teaching view. */
function shareExtras() {
  return { ...modelParams(run.model), ...teachingParams() };
}

function shareLink(settings) {
  return `${location.origin}${location.pathname}${location.search}${encodeShare(settings, run.generator.weightsHash, shareExtras())}`;
}

/** Loads the picked model: the page reopens with it (one model per page; see addressForModel). */
function pickModel() {
  const model = MODELS.find((candidate) => candidate.id === ui.model.value);
  if (!model || model === run.model) return;
  history.replaceState(null, '', addressForModel(model, teachingParams()));
  location.reload();
}

// ---------- drawing ----------

function draw(frame) {
  if (!frame.rgba) return;
  const rgba = ui.showX0.checked && frame.x0 ? frame.x0 : frame.rgba;
  drawFrame(ui.canvas, { width: frame.width, height: frame.height, rgba });
  run.lastFrame = frame;
  window.dispatchEvent(new CustomEvent('ddpm:frame', { detail: { step: frame.step, t: frame.t } }));
  describeFrame(frame);
}

/** The progress bar and the status line for the frame shown. */
function describeFrame(frame) {
  ui.progress.value = frame.total ? frame.step / frame.total : 0;
  const what = tr(ui.showX0.checked && frame.x0 ? 'ui.showingX0' : 'ui.showingXt');
  // `level`: the paper's t of the image shown (its noise level).
  setStatus(frame.done
    ? tr('ui.done', { total: frame.total })
    : tr('ui.stepStatus', { step: frame.step, total: frame.total, t: frame.level, what }));
}

const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;

/** The figures line: where the time went (the worker's model time, this thread's drawing). */
function updateTiming({ step, total }) {
  const recent = run.stepMillis.slice(-20);
  if (!recent.length) return;
  const average = mean(recent);
  const drawing = run.drawMillis.length ? mean(run.drawMillis.slice(-20)) : 0;
  const remaining = (total - step) * average;
  const cpu = run.generator.backend === 'cpu';
  ui.timing.textContent = tr(cpu ? 'ui.timingCpu' : 'ui.timing', {
    ms: average.toFixed(1), draw: drawing.toFixed(1), eta: formatDuration(remaining), threads: run.threads,
  });
  ui.timing.dataset.threads = String(run.threads);
  // Read by tests/e2e/bench.mjs: the average of the last 20 steps and the last step alone.
  ui.timing.dataset.msPerStep = average.toFixed(2);
  ui.timing.dataset.lastStepMs = recent.at(-1).toFixed(2);
  ui.timing.dataset.drawMs = drawing.toFixed(2);
  if (run.generator.backend === 'cpu' && run.settings.steps > 100) {
    ui.cpuEta.textContent = tr('ui.cpuEta', { duration: formatDuration(total * average) });
    ui.cpuHint.hidden = false;
  }
}

/** Time to the first step: the weights' download and check, then Generate to step 1 drawn. */
function showFigures(firstStepMs) {
  const { fetchMs, checkMs } = run.load;
  if (fetchMs === null) return;
  const known = firstStepMs !== undefined && firstStepMs !== null;
  ui.figures.textContent = tr(known ? 'ui.figuresFirstStep' : 'ui.figuresLoad', {
    fetch: fetchMs.toFixed(0), check: checkMs.toFixed(0), first: known ? firstStepMs.toFixed(0) : '',
  });
  ui.figures.dataset.fetchMs = fetchMs.toFixed(1);
  ui.figures.dataset.checkMs = checkMs.toFixed(1);
  if (known) ui.figures.dataset.firstStepMs = firstStepMs.toFixed(1);
}

function formatDuration(millis) {
  const seconds = Math.round(millis / 1000);
  if (seconds < 60) return tr('ui.seconds', { s: seconds });
  const minutes = Math.floor(seconds / 60);
  return minutes < 60
    ? tr('ui.minutes', { m: minutes, s: seconds % 60 })
    : tr('ui.hours', { h: Math.floor(minutes / 60), m: minutes % 60 });
}

// ---------- the reverse-process loop ----------

/** Stops the run in progress and waits until the worker has. */
async function stopRun() {
  if (!run.active) return;
  run.worker.stop();
  await run.finished;
}

/** What each drawn step reads back: the views' wishes, checked against the run's batch. */
function wants() {
  const request = stepRequest(true);
  const batch = run.settings?.batch ?? 1;
  const focus = request.focus === undefined ? null : Math.min(Math.max(0, request.focus), batch - 1);
  return { every: Number(ui.every.value) || 1, x0: ui.showX0.checked, raw: request.raw, focus };
}

/** Starts a run with the controls' settings (stopping the one in progress first). */
async function generate() {
  if (!run.generator) return;
  const clickedAt = performance.now();
  await stopRun();
  showError('');
  const settings = readSettings();
  Object.assign(run, {
    settings, active: true, paused: false, stepMillis: [], drawMillis: [], clickedAt,
  });
  run.finished = new Promise((resolve) => { run.ended = resolve; });
  updateDownloadChoices(settings.batch);
  setControls();
  setPageState('running');
  run.worker.startRun({
    seed: settings.seed, batch: settings.batch, sampler: settings.sampler, steps: settings.steps, clip: settings.clip,
    variance: settings.variance, spacing: settings.spacing,
  }, wants(), onRunEvent);
  await run.finished;
}

/** A message from the worker about the main run. */
function onRunEvent(message) {
  const { settings } = run;
  if (message.event === 'frame') {
    const { frame } = message;
    run.threads = message.threads ?? 1;
    const started = performance.now();
    if (frame.step === 0) {
      history.replaceState(null, '', encodeShare(settings, run.generator.weightsHash, shareExtras()));
    } else {
      run.stepMillis.push(message.modelMs);
    }
    draw(frame);
    if (frame.step === 0) runStarted(settings, frame);
    else runStepped(frame, settings);
    run.drawMillis.push(performance.now() - started);
    if (frame.step === 1) showFigures(performance.now() - run.clickedAt);
    updateTiming(frame);
    run.worker.drawn(wants());
  } else if (message.event === 'step') {
    run.stepMillis.push(message.modelMs);
    ui.progress.value = message.step / message.total;
    if (message.step === 1) showFigures(performance.now() - run.clickedAt);
    updateTiming(message);
  } else if (message.event === 'end') {
    endRun(message);
  }
}

function endRun({ outcome, phase, error }) {
  run.active = false;
  run.paused = false;
  if (outcome === 'error' && phase === 'start') {
    showError(tr('ui.cannotStart', { error }));
    setPageState('ready');
  } else if (outcome === 'error') {
    showError(tr('ui.failed', { error }));
    setPageState('error');
  } else {
    setPageState(outcome);
    if (outcome === 'stopped') setStatus(tr('ui.stopped'));
  }
  setControls();
  run.ended?.();
}

function togglePause() {
  if (!run.active) return;
  run.paused = !run.paused;
  if (run.paused) run.worker.pause();
  else run.worker.resume();
  setPageState(run.paused ? 'paused' : 'running');
  setControls();
}

function setControls() {
  const ready = Boolean(run.generator);
  ui.generate.disabled = !ready;
  ui.pause.disabled = !run.active;
  ui.stop.disabled = !run.active;
  ui.pause.textContent = tr(run.paused ? 'ui.resume' : 'ui.pause');
  ui.download.disabled = !run.lastFrame;
  ui.share.disabled = !ready;
  ui.benchRun.disabled = !ready;
}

// ---------- downloads ----------

function updateDownloadChoices(batch) {
  ui.downloadWhat.replaceChildren(new Option(tr('ui.theGrid'), 'grid'));
  for (let i = 0; i < batch; i += 1) {
    ui.downloadWhat.append(new Option(tr('ui.avatarOption', { n: i + 1, seed: run.settings.seed + i }), String(i)));
  }
}

function download() {
  const frame = run.lastFrame;
  if (!frame) return;
  const choice = ui.downloadWhat.value;
  const size = run.generator.imageSize;
  let [x, y, width, height] = [0, 0, frame.width, frame.height];
  let name = `ddpm-avatars-seed${run.settings.seed}-x${run.settings.batch}.png`;
  if (choice !== 'grid') {
    const index = Number(choice);
    [x, y] = gridLayout(run.settings.batch, size).origin(index);
    [width, height] = [size, size];
    name = `ddpm-avatar-seed${run.settings.seed + index}.png`;
  }
  const scale = Math.max(1, Math.floor(512 / Math.max(width, height)));
  const out = document.createElement('canvas');
  out.width = width * scale;
  out.height = height * scale;
  const context = out.getContext('2d');
  context.imageSmoothingEnabled = false;
  context.drawImage(ui.canvas, x, y, width, height, 0, 0, out.width, out.height);
  out.toBlob((blob) => {
    if (!blob) return;
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = name;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }, 'image/png');
}

async function copyShareLink() {
  const link = shareLink(readSettings());
  try {
    await navigator.clipboard.writeText(link);
    showNotice(tr('ui.copied'));
  } catch {
    showNotice(tr('ui.shareLink', { link }));
  }
}

// ---------- wiring ----------

function wireControls() {
  ui.generate.addEventListener('click', () => generate());
  ui.pause.addEventListener('click', togglePause);
  ui.stop.addEventListener('click', () => stopRun());
  ui.dice.addEventListener('click', () => {
    ui.seed.value = String(Math.floor(Math.random() * 1_000_000));
  });
  ui.sampler.addEventListener('change', updateStepsVisibility);
  ui.download.addEventListener('click', download);
  ui.share.addEventListener('click', copyShareLink);
  ui.model.addEventListener('change', pickModel);
  ui.switchDdim.addEventListener('click', () => {
    ui.sampler.value = 'ddim';
    ui.steps.value = '50';
    updateStepsVisibility();
    ui.cpuHint.hidden = true;
    generate();
  });
  ui.showX0.addEventListener('change', () => {
    if (run.active) run.worker.wants(wants());
    else if (run.lastFrame) draw(run.lastFrame);
  });
  ui.every.addEventListener('change', () => { if (run.active) run.worker.wants(wants()); });
  ui.benchRun.addEventListener('click', () => benchmark());
  document.addEventListener('keydown', (event) => {
    const typing = ['INPUT', 'SELECT', 'TEXTAREA'].includes(document.activeElement?.tagName);
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.code === 'Space') {
      event.preventDefault();
      togglePause();
    } else if (event.key === 'g' || event.key === 'G') {
      generate();
    }
  });
  window.addEventListener('hashchange', () => {
    // A link to another published model pasted into this tab: the page reopens with that file.
    const named = run.available.find((model) => model.id === modelFromHash(location.hash));
    if (run.model && named && named !== run.model) location.reload();
    else restoreFromHash(true);
  });
}

/** Restores the teaching view and the run settings of the hash; `start` starts that run. */
function restoreFromHash(start) {
  restoreTeaching(location.hash);
  if (!run.generator) return false; // the settings are restored once the weights load
  const shared = decodeShare(location.hash, { maxSteps: run.generator.timesteps });
  if (!shared) return false;
  applySettings(shared);
  if (shared.weightsHash && shared.weightsHash !== run.generator.weightsHash) {
    showNotice(tr('ui.otherWeights', { theirs: shared.weightsHash, ours: run.generator.weightsHash }));
  }
  if (start) generate();
  return true;
}

/** Re-renders the texts the page wrote itself in the newly chosen language. */
function retranslate() {
  if (run.generator) describeWeights(run.generator, ui.weightsUrl.textContent);
  if (run.lastFrame) describeFrame(run.lastFrame);
  else if (run.generator) setStatus(tr('ui.ready'));
  if (run.settings) updateDownloadChoices(run.settings.batch);
  if (run.stepMillis.length) updateTiming(run.lastFrame ?? { step: 0, total: 0 });
  showFigures(Number(ui.figures.dataset.firstStepMs ?? NaN) || null);
  if (run.bench) showBenchmark(run.bench);
  setControls();
}

// ---------- the benchmark (?bench=1 or its button) ----------

/** Runs the fixed benchmark on the loaded weights (the run in progress is stopped first). */
async function benchmark() {
  if (!run.generator || ui.benchRun.disabled) return;
  ui.benchRun.disabled = true;
  $('bench').open = true;
  await stopRun();
  ui.benchStatus.textContent = tr('ui.benchRunning');
  try {
    const rows = await runBenchmark(run.generator, {
      onProgress: (batch, step, steps) => { ui.benchStatus.textContent = tr('ui.benchProgress', { batch, step, steps }); },
    });
    run.bench = { rows, backend: run.generator.backend, weightsHash: run.generator.weightsHash };
    showBenchmark(run.bench);
    document.body.dataset.bench = 'done';
  } catch (error) {
    ui.benchStatus.textContent = tr('ui.benchFailed', { error: errorText(error) });
    document.body.dataset.bench = 'error';
  } finally {
    setControls();
  }
}

function showBenchmark({ rows, backend, weightsHash }) {
  const header = `| ${tr('ui.benchColumns')} |`;
  const lines = rows.map((row) => `| ${backend} | ${row.batch} | ${row.threads} | ${row.firstStepMs.toFixed(1)} | `
    + `${row.modelMs.toFixed(1)} | ${row.drawMs.toFixed(2)} | ${row.wallMs.toFixed(1)} |`);
  ui.benchTable.textContent = [
    tr('ui.benchTitle', { hash: weightsHash, steps: rows[0]?.steps ?? 0 }), '', header,
    `|${' --- |'.repeat(7)}`, ...lines, '', navigator.userAgent,
  ].join('\n');
  ui.benchTable.hidden = false;
  ui.benchTable.dataset.rows = JSON.stringify(rows);
  ui.benchStatus.textContent = tr('ui.benchDone');
}

async function main() {
  setPageState('loading');
  // Asked at once: the HEAD requests overlap the wasm download.
  const published = availableModels();
  initLanguage();
  mountLanguageToggle($('lang-toggle'));
  window.addEventListener(LANGUAGE_EVENT, retranslate);
  wireControls();
  updateStepsVisibility();
  let module;
  try {
    module = await loadWasm();
    run.worker = ModelWorker.open(module);
  } catch (error) {
    showError(tr('ui.wasmFailed', { error: errorText(error) }));
    setPageState('error');
    return;
  }
  mountTeaching($('teach'));
  const { useWebgpu, software } = await chooseBackend();
  run.softwareAdapter = software;
  const requested = new URLSearchParams(location.search).get('weights');
  const available = await published;
  run.available = available;
  // The model a share link names, else the backend's default; with none on the server, the
  // small one, so that its 404 is explained (ui.unpublished). Then the other published ones.
  const chosen = chooseModel(available, { hash: location.hash, webgpu: useWebgpu }) ?? MODELS[0];
  const candidates = [...new Set([requested, chosen.url, ...available.map((model) => model.url)])]
    .filter(Boolean);
  const loaded = await loadFirstUsable(candidates, requested, useWebgpu);
  if (loaded) {
    run.model = loaded === requested ? null : modelAt(loaded) ?? null;
    describeWeights(run.generator, loaded);
  }
  showModelChoice(ui.model, ui.modelRow, available, run.model);
  if (!run.generator) {
    setStatus(tr('ui.noWeights'));
    setPageState('error');
    restoreTeaching(location.hash);
    return;
  }
  setGenerator(run.generator, readSettings);
  ui.progress.value = 0;
  setStatus(tr('ui.ready'));
  showFigures(null);
  setControls();
  setPageState('ready');
  // Queued in the worker like every request: a Generate clicked meanwhile waits its turn.
  // null: the file has no fingerprint; '': this device computes what the trainer computed.
  run.generator.checkFingerprint().catch(errorText).then((mismatch) => {
    document.body.dataset.fingerprint = mismatch === null ? 'none' : mismatch === '' ? 'ok' : 'mismatch';
    if (mismatch) showNotice(tr('ui.fingerprint', { mismatch }));
  });
  // On the CPU the helper threads load the weights after the page is ready (see www/model/parallel.js).
  run.generator.threads().then((threads) => { document.body.dataset.threads = String(threads); }, () => {});
  if (new URLSearchParams(location.search).get('bench') === '1') {
    restoreFromHash(false);
    benchmark();
  } else {
    restoreFromHash(true);
  }
}

main();

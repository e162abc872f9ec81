// The page's controller: loads the weights into the wasm Generator, runs the reverse process
// one step at a time without freezing the page, draws every (k-th) step, and keeps the
// share link in the URL hash. All model logic lives in the Rust crate (src/web.rs).

import init, { Generator } from './pkg/ddpm_avatars.js';
import { DEFAULT_WEIGHTS, fetchWeights } from './weights.js';
import { gridLayout } from './grid.js';
import { BATCH_CHOICES, SPACINGS, VARIANCES, oneOf, seedFrom, wholeNumberIn } from './params.js';
import { decodeShare, encodeShare } from './share.js';
import { STRINGS } from './strings.js';
import { LANGUAGE_EVENT, initLanguage, mountLanguageToggle, registerStrings, tr } from './teach/i18n.js';
import {
  mountTeaching, restoreTeaching, runStarted, runStepped, setGenerator, stepRequest, teachingParams,
} from './teach/teach.js';
import { drawFrame, nextFrame } from './teach/pixels.js';

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
  weightsInfo: $('weights-info'), weightsUrl: $('weights-url'),
};

const run = {
  generator: null,
  active: false,
  paused: false,
  stopRequested: false,
  finished: null, // promise of the running loop
  resume: null, // resolves a pause
  stepMillis: [],
  settings: null,
  lastFrame: null,
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

/** Downloads and validates the weights at `url`; only weights that loaded are cached. */
async function loadGenerator(url, useWebgpu) {
  setStatus(tr('ui.downloading', { url }));
  ui.progress.removeAttribute('value');
  const weights = await fetchWeights(url, (fraction, detail) => {
    ui.progress.value = fraction;
    setStatus(tr('ui.downloadingDetail', { detail }));
  });
  setStatus(tr('ui.checking'));
  let generator;
  try {
    generator = await Generator.create(weights.bytes, useWebgpu);
  } catch (error) {
    await weights.forget();
    throw error;
  }
  await weights.remember();
  return generator;
}

function describeWeights(generator, url) {
  ui.weightsUrl.textContent = url;
  try {
    const meta = JSON.parse(generator.metadataJson);
    const size = meta.image.size;
    ui.weightsInfo.textContent = tr('ui.modelInfo', {
      size, steps: meta.training.steps, dataset: meta.dataset.name, licence: meta.dataset.licence,
      hash: generator.weightsHash,
    });
  } catch {
    ui.weightsInfo.textContent = tr('ui.weightsOnly', { hash: generator.weightsHash });
  }
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

function shareLink(settings) {
  return `${location.origin}${location.pathname}${location.search}${encodeShare(settings, run.generator.weightsHash, teachingParams())}`;
}

// ---------- drawing ----------

function draw(frame) {
  const rgba = ui.showX0.checked && frame.x0 ? frame.x0 : frame.rgba;
  drawFrame(ui.canvas, { width: frame.width, height: frame.height, rgba });
  run.lastFrame = frame;
  window.dispatchEvent(new CustomEvent('ddpm:frame', { detail: { step: frame.step, t: frame.t } }));
  ui.progress.value = frame.total ? frame.step / frame.total : 0;
  const what = tr(ui.showX0.checked && frame.x0 ? 'ui.showingX0' : 'ui.showingXt');
  // `level`: the paper's t of the image shown (its noise level).
  setStatus(frame.done
    ? tr('ui.done', { total: frame.total })
    : tr('ui.stepStatus', { step: frame.step, total: frame.total, t: frame.level, what }));
}

function updateTiming(frame) {
  const recent = run.stepMillis.slice(-20);
  if (!recent.length) return;
  const average = recent.reduce((a, b) => a + b, 0) / recent.length;
  const remaining = (frame.total - frame.step) * average;
  ui.timing.textContent = tr('ui.timing', { ms: average.toFixed(1), eta: formatDuration(remaining) });
  // Read by tests/e2e/bench.mjs: the average of the last 20 steps and the last step alone.
  ui.timing.dataset.msPerStep = average.toFixed(2);
  ui.timing.dataset.lastStepMs = recent.at(-1).toFixed(2);
  if (run.generator.backend === 'cpu' && run.settings.steps > 100) {
    ui.cpuEta.textContent = tr('ui.cpuEta', { duration: formatDuration(frame.total * average) });
    ui.cpuHint.hidden = false;
  }
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

async function stopRun() {
  if (!run.active) return;
  run.stopRequested = true;
  if (run.resume) run.resume();
  await run.finished;
}

async function generate() {
  await stopRun();
  showError('');
  const settings = readSettings();
  try {
    run.generator.start({
      seed: settings.seed, batch: settings.batch, sampler: settings.sampler, steps: settings.steps, clip: settings.clip,
      variance: settings.variance, spacing: settings.spacing,
    });
  } catch (error) {
    showError(tr('ui.cannotStart', { error: errorText(error) }));
    return;
  }
  history.replaceState(null, '', encodeShare(settings, run.generator.weightsHash, teachingParams()));
  run.settings = settings;
  run.active = true;
  run.paused = false;
  run.stopRequested = false;
  run.stepMillis = [];
  updateDownloadChoices(settings.batch);
  setControls();
  setPageState('running');
  run.finished = loop(settings);
  await run.finished;
}

async function loop(settings) {
  const every = Number(ui.every.value) || 1;
  try {
    const start = await run.generator.preview(true);
    draw(start);
    runStarted(settings, start);
    await nextFrame();
    for (let step = 1; step <= settings.steps; step += 1) {
      if (run.stopRequested) break;
      if (run.paused) {
        setPageState('paused');
        await new Promise((resolve) => { run.resume = resolve; });
        run.resume = null;
        if (run.stopRequested) break;
        setPageState('running');
      }
      const shouldDraw = step % every === 0 || step === settings.steps;
      const started = performance.now();
      const wanted = stepRequest(shouldDraw);
      const frame = await run.generator.step({
        draw: shouldDraw, x0: shouldDraw && ui.showX0.checked, raw: wanted.raw, focus: wanted.focus,
      });
      run.stepMillis.push(performance.now() - started);
      if (shouldDraw) {
        draw(frame);
        runStepped(frame, settings);
      }
      updateTiming(frame);
      // Give the browser a frame to paint and handle input between steps.
      await nextFrame();
    }
    setPageState(run.stopRequested ? 'stopped' : 'done');
    if (run.stopRequested) setStatus(tr('ui.stopped'));
  } catch (error) {
    showError(tr('ui.failed', { error: errorText(error) }));
    setPageState('error');
  } finally {
    run.active = false;
    setControls();
  }
}

function togglePause() {
  if (!run.active) return;
  run.paused = !run.paused;
  if (!run.paused && run.resume) run.resume();
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
  ui.switchDdim.addEventListener('click', () => {
    ui.sampler.value = 'ddim';
    ui.steps.value = '50';
    updateStepsVisibility();
    ui.cpuHint.hidden = true;
    generate();
  });
  ui.showX0.addEventListener('change', () => { if (run.lastFrame && !run.active) draw(run.lastFrame); });
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
  window.addEventListener('hashchange', () => restoreFromHash(true));
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
  if (run.lastFrame) draw(run.lastFrame);
  else if (run.generator) setStatus(tr('ui.ready'));
  if (run.settings) updateDownloadChoices(run.settings.batch);
  setControls();
}

async function main() {
  setPageState('loading');
  initLanguage();
  mountLanguageToggle($('lang-toggle'));
  window.addEventListener(LANGUAGE_EVENT, retranslate);
  wireControls();
  updateStepsVisibility();
  try {
    await init();
  } catch (error) {
    showError(tr('ui.wasmFailed', { error: errorText(error) }));
    setPageState('error');
    return;
  }
  mountTeaching($('teach'));
  const { useWebgpu, software } = await chooseBackend();
  run.softwareAdapter = software;
  const requested = new URLSearchParams(location.search).get('weights');
  const candidates = requested ? [requested, DEFAULT_WEIGHTS] : [DEFAULT_WEIGHTS];
  for (const url of candidates) {
    try {
      run.generator = await loadGenerator(url, useWebgpu);
      describeWeights(run.generator, url);
      break;
    } catch (error) {
      const fallback = url === requested ? tr('ui.fallback') : '';
      const unpublished = url === DEFAULT_WEIGHTS && /answered 404/.test(errorText(error))
        ? tr('ui.unpublished')
        : '';
      showError(tr('ui.weightsFailed', { url, error: errorText(error) }) + fallback + unpublished);
    }
  }
  if (!run.generator) {
    setStatus(tr('ui.noWeights'));
    setPageState('error');
    restoreTeaching(location.hash);
    return;
  }
  setGenerator(run.generator, readSettings);
  ui.progress.value = 0;
  setStatus(tr('ui.ready'));
  setControls();
  setPageState('ready');
  // null: the file has no fingerprint; '': this device computes what the trainer computed.
  const mismatch = await run.generator.checkFingerprint().catch(errorText);
  document.body.dataset.fingerprint = mismatch === null ? 'none' : mismatch === '' ? 'ok' : 'mismatch';
  if (mismatch) showNotice(tr('ui.fingerprint', { mismatch }));
  restoreFromHash(true);
}

main();

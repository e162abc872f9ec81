// Teaching mode: the "two-pixel world", the toy example of the DDPM tutorials. An image of
// just two gray pixels is a point (x, y) in [-1, 1]²; the data distribution is a mixture of
// a few isotropic Gaussian blobs, which the user can drag, add and remove.
//
// Everything is computed in closed form, no network involved:
//  - Forward jump (Ho et al. 2020, eq. 4): q(x_t | x_0) = N(√ᾱ_t x_0, (1−ᾱ_t) I), i.e.
//    x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε. Pushed through it, blob k, N(μ_k, s_k² I), becomes
//    N(√ᾱ_t μ_k, (ᾱ_t s_k² + 1 − ᾱ_t) I): the marginal p(x_t) is again a Gaussian mixture.
//  - Reverse step (Ho et al. 2020, Algorithm 2):
//    x_{t-1} = 1/√α_t (x_t − β_t/√(1−ᾱ_t) ε̂(x_t, t)) + σ_t z, σ_t² = β̃_t (the posterior
//    variance), z = 0 at the last step, with the EXACT noise predictor of the mixture,
//    ε̂ = (x_t − √ᾱ_t E[x_0 | x_t]) / √(1−ᾱ_t).
//
// Schedule tables use 0-based t = 0..T-1 (t = 0 is the first noising step).

import { fitCanvas } from './canvas.js';
import { el } from './dom.js';
import { fill } from './i18n.js';

/** Visible text of this module; every key exists in both languages. */
export const STRINGS = {
  en: {
    'twopixel.title': 'The two-pixel world',
    'twopixel.caption.data':
      'Each dot is a tiny “image” of just two gray pixels: the brightness of pixel 1 is x, that of pixel 2 is y (from −1 to 1). The blobs on the left are the data distribution: drag them, add or remove some.',
    'twopixel.caption.forward':
      'The forward process shrinks every point a little towards the centre and adds a little Gaussian noise, step after step. After T = 1000 steps the data have melted into one round Gaussian blob, N(0, I).',
    'twopixel.caption.reverse':
      'The reverse process starts from that blob and flows back onto the data. It is built from many small Gaussian steps, each one guided by the noise prediction ε̂(x_t, t), computed exactly here, so no neural network is needed.',
    'twopixel.dataTitle': 'Data p(x₀): drag the blobs',
    'twopixel.mainTitle': 'p(x_t) (shading) and 2000 samples (dots)',
    'twopixel.axisX': 'pixel 1 →',
    'twopixel.axisY': 'pixel 2 ↑',
    'twopixel.forward': 'Forward (add noise)',
    'twopixel.reverse': 'Reverse (remove noise)',
    'twopixel.stop': 'Stop',
    'twopixel.addBlob': 'Add a blob',
    'twopixel.removeBlob': 'Remove a blob',
    'twopixel.slider': 'Step t',
    'twopixel.readout': 't = {t}, ᾱ_t = {abar}, √ᾱ_t = {sab}, √(1−ᾱ_t) = {snab}',
    'twopixel.dots.forward': 'Dots: x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε, with one fixed ε per dot.',
    'twopixel.dots.reverse': 'Dots: the reverse process, started from pure noise x_T ~ N(0, I).',
  },
  zh: {
    'twopixel.title': '两像素世界',
    'twopixel.caption.data':
      '每个点都是一张只有两个灰度像素的“图像”：像素 1 的亮度是横坐标 x，像素 2 的亮度是纵坐标 y（取值 −1 到 1）。左边的几团高斯分布就是数据分布，可以拖动，也可以增减。',
    'twopixel.caption.forward':
      '前向过程每一步都把点朝中心收缩一点，再加上一点高斯噪声。走完 T = 1000 步后，数据就融成了一团圆圆的高斯分布 N(0, I)。',
    'twopixel.caption.reverse':
      '反向过程从这团噪声出发，一步步流回数据分布。它由许多小的高斯步骤组成，每一步都由噪声预测 ε̂(x_t, t) 引导；这里的预测是精确算出来的，不需要神经网络。',
    'twopixel.dataTitle': '数据分布 p(x₀)：可拖动各个高斯团',
    'twopixel.mainTitle': 'p(x_t)（底色）与 2000 个样本（圆点）',
    'twopixel.axisX': '像素 1 →',
    'twopixel.axisY': '像素 2 ↑',
    'twopixel.forward': '前向（加噪）',
    'twopixel.reverse': '反向（去噪）',
    'twopixel.stop': '停止',
    'twopixel.addBlob': '增加一团',
    'twopixel.removeBlob': '减少一团',
    'twopixel.slider': '时间步 t',
    'twopixel.readout': 't = {t}，ᾱ_t = {abar}，√ᾱ_t = {sab}，√(1−ᾱ_t) = {snab}',
    'twopixel.dots.forward': '圆点：x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε，每个点的 ε 固定不变。',
    'twopixel.dots.reverse': '圆点：反向过程的样本，从纯噪声 x_T ~ N(0, I) 出发。',
  },
};

const N_POINTS = 2000;
const GRID = 96; // heat-map cells per side
const MAIN_VIEW = 2.5; // main canvas shows [-2.5, 2.5]²
const DATA_VIEW = 1.3; // data canvas shows [-1.3, 1.3]²
const BLOB_STD = 0.1;
const MIN_BLOBS = 1;
const MAX_BLOBS = 5;
const DEFAULT_BLOBS = [[-0.55, -0.45], [0.6, -0.35], [0.05, 0.6]];
const POINT_SEED = 20200619; // fixed: the same x_0 and ε every time
const REVERSE_SEED = 1234; // fixed: the same reverse run every time (for the same blobs)
const STEPS_PER_SECOND = 200; // 1000 steps take 5 s
const MAX_STEPS_PER_FRAME = 60;
const LOG_2PI = Math.log(2 * Math.PI);
// Dark colour ramp for densities (low → high) and the dot colour that stands out on it.
const RAMP_STOPS = ['#0b1026', '#1d2b5c', '#235f8c', '#3c9aa6', '#9fd7c1', '#f2f7e1'];
const DOT_COLOUR = '#ff7a45';

// ---------- random numbers ----------

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let r = Math.imul(a ^ (a >>> 15), 1 | a);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fills `out` with standard normal samples (Box-Muller, two per pair of uniforms). */
function fillGaussian(out, rand) {
  for (let i = 0; i < out.length; i += 2) {
    const radius = Math.sqrt(-2 * Math.log(1 - rand())); // 1 − u ∈ (0, 1]: no log(0)
    const angle = 2 * Math.PI * rand();
    out[i] = radius * Math.cos(angle);
    if (i + 1 < out.length) out[i + 1] = radius * Math.sin(angle);
  }
  return out;
}

/** Per-dot randomness, fixed once: blob choice u, blob offset ζ, forward noise ε. */
function makeDotNoise(n, seed) {
  const rand = mulberry32(seed);
  const u = new Float64Array(n).map(() => rand());
  return { u, zeta: fillGaussian(new Float64Array(2 * n), rand), eps: fillGaussian(new Float64Array(2 * n), rand) };
}

// ---------- the mixture, in closed form ----------

/**
 * Components of the forward marginal p(x_t) for ᾱ = ᾱ_t (Ho et al. 2020, eq. 4 applied to
 * each blob): N(√ᾱ μ_k, (ᾱ s_k² + 1 − ᾱ) I), equal weights. With ᾱ = 1 this is p(x_0).
 */
function marginalComponents(blobs, abar) {
  const sab = Math.sqrt(abar);
  const logWeight = -Math.log(blobs.length);
  return blobs.map(({ x, y, s }) => {
    const v = abar * s * s + 1 - abar;
    return { mx: sab * x, my: sab * y, v, logNorm: logWeight - LOG_2PI - Math.log(v), gain: (sab * s * s) / v, x, y };
  });
}

/** log p(x, y) of a 2-D isotropic Gaussian mixture, computed with log-sum-exp. */
function logDensity(components, x, y) {
  let max = -Infinity;
  const logs = components.map((c) => {
    const dx = x - c.mx;
    const dy = y - c.my;
    const l = c.logNorm - (dx * dx + dy * dy) / (2 * c.v);
    if (l > max) max = l;
    return l;
  });
  let sum = 0;
  for (const l of logs) sum += Math.exp(l - max);
  return max + Math.log(sum);
}

/**
 * E[x_0 | x_t] for the mixture: Σ_k r_k(x_t) (μ_k + √ᾱ s_k² / (ᾱ s_k² + 1 − ᾱ) (x_t − √ᾱ μ_k)),
 * r_k the posterior responsibilities (normalised in log space, so no underflow). Writes
 * the result into `out` ([x, y]).
 */
function posteriorMean(components, x, y, out) {
  let max = -Infinity;
  const logs = new Array(components.length);
  for (let k = 0; k < components.length; k++) {
    const c = components[k];
    const dx = x - c.mx;
    const dy = y - c.my;
    logs[k] = c.logNorm - (dx * dx + dy * dy) / (2 * c.v);
    if (logs[k] > max) max = logs[k];
  }
  let total = 0;
  let ex = 0;
  let ey = 0;
  for (let k = 0; k < components.length; k++) {
    const c = components[k];
    const r = Math.exp(logs[k] - max);
    total += r;
    ex += r * (c.x + c.gain * (x - c.mx));
    ey += r * (c.y + c.gain * (y - c.my));
  }
  out[0] = ex / total;
  out[1] = ey / total;
  return out;
}

/** Forward jump for every dot: x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε (Ho et al. 2020, eq. 4). */
function forwardDots(out, blobs, noise, abar) {
  const sab = Math.sqrt(abar);
  const snab = Math.sqrt(1 - abar);
  for (let i = 0; i < noise.u.length; i++) {
    const blob = blobs[Math.min(blobs.length - 1, Math.floor(noise.u[i] * blobs.length))];
    const x0 = blob.x + blob.s * noise.zeta[2 * i];
    const y0 = blob.y + blob.s * noise.zeta[2 * i + 1];
    out[2 * i] = sab * x0 + snab * noise.eps[2 * i];
    out[2 * i + 1] = sab * y0 + snab * noise.eps[2 * i + 1];
  }
  return out;
}

/**
 * One DDPM reverse step for every dot, from step t to t−1 (Ho et al. 2020, Algorithm 2):
 * x_{t-1} = 1/√α_t (x_t − β_t/√(1−ᾱ_t) ε̂) + σ_t z, σ_t² = posteriorVariance[t], z = 0 at
 * t = 0, with ε̂ = (x_t − √ᾱ_t E[x_0|x_t]) / √(1−ᾱ_t), the exact noise predictor.
 */
function reverseStep(dots, t, schedule, blobs, rand) {
  const abar = schedule.alphaBars[t];
  const sab = Math.sqrt(abar);
  const snab = Math.sqrt(1 - abar);
  const coef = schedule.betas[t] / snab;
  const invSqrtAlpha = 1 / Math.sqrt(schedule.alphas[t]);
  const sigma = t > 0 ? Math.sqrt(schedule.posteriorVariance[t]) : 0;
  const components = marginalComponents(blobs, abar);
  const mean = [0, 0];
  const z = [0, 0];
  for (let i = 0; i < dots.length; i += 2) {
    const x = dots[i];
    const y = dots[i + 1];
    posteriorMean(components, x, y, mean);
    const epsX = (x - sab * mean[0]) / snab;
    const epsY = (y - sab * mean[1]) / snab;
    if (sigma > 0) fillGaussian(z, rand);
    dots[i] = invSqrtAlpha * (x - coef * epsX) + sigma * z[0];
    dots[i + 1] = invSqrtAlpha * (y - coef * epsY) + sigma * z[1];
  }
}

// ---------- drawing ----------

/** 256-entry RGB lookup table interpolating RAMP_STOPS. */
function buildRamp() {
  const stops = RAMP_STOPS.map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const f = (i / 255) * (stops.length - 1);
    const j = Math.min(stops.length - 2, Math.floor(f));
    const w = f - j;
    for (let c = 0; c < 3; c++) lut[3 * i + c] = stops[j][c] * (1 - w) + stops[j + 1][c] * w;
  }
  return lut;
}
const RAMP = buildRamp();

/** Maps plane coordinates (y up) of a view [-half, half]² to canvas CSS pixels. */
function viewTransform(half, size) {
  return {
    px: (x) => ((x + half) / (2 * half)) * size,
    py: (y) => ((half - y) / (2 * half)) * size,
    toPlane: (cx, cy) => [(cx / size) * 2 * half - half, half - (cy / size) * 2 * half],
    scale: size / (2 * half),
  };
}

/**
 * Draws the mixture density on a GRID×GRID raster (normalised to its maximum, square-root
 * scaled so the tails show) stretched smoothly over the whole canvas.
 */
function drawHeat(ctx, size, components, half, raster) {
  const image = raster.image;
  const logs = new Float64Array(GRID * GRID);
  let max = -Infinity;
  for (let row = 0; row < GRID; row++) {
    const y = half - ((row + 0.5) / GRID) * 2 * half;
    for (let col = 0; col < GRID; col++) {
      const x = ((col + 0.5) / GRID) * 2 * half - half;
      const l = logDensity(components, x, y);
      logs[row * GRID + col] = l;
      if (l > max) max = l;
    }
  }
  for (let i = 0; i < logs.length; i++) {
    const level = Math.round(255 * Math.sqrt(Math.exp(logs[i] - max)));
    image.data[4 * i] = RAMP[3 * level];
    image.data[4 * i + 1] = RAMP[3 * level + 1];
    image.data[4 * i + 2] = RAMP[3 * level + 2];
    image.data[4 * i + 3] = 255;
  }
  raster.ctx.putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(raster.canvas, 0, 0, size, size);
}

/** Off-screen GRID×GRID canvas for the heat map. */
function makeRaster() {
  const canvas = document.createElement('canvas');
  canvas.width = GRID;
  canvas.height = GRID;
  const ctx = canvas.getContext('2d');
  return { canvas, ctx, image: ctx.createImageData(GRID, GRID) };
}

/** The [-1, 1]² square (where data live), the axes through 0, and their labels. */
function drawFrame(ctx, view, size, tr, font) {
  ctx.lineWidth = 1;
  ctx.strokeStyle = 'rgba(255,255,255,0.14)';
  ctx.beginPath();
  ctx.moveTo(view.px(0), 0);
  ctx.lineTo(view.px(0), size);
  ctx.moveTo(0, view.py(0));
  ctx.lineTo(size, view.py(0));
  ctx.stroke();
  ctx.strokeStyle = 'rgba(255,255,255,0.6)';
  ctx.setLineDash([4, 3]);
  ctx.strokeRect(view.px(-1), view.py(1), view.px(1) - view.px(-1), view.py(-1) - view.py(1));
  ctx.setLineDash([]);
  ctx.fillStyle = 'rgba(255,255,255,0.75)';
  ctx.font = font;
  ctx.textBaseline = 'top';
  ctx.textAlign = 'center';
  for (const v of [-1, 1]) ctx.fillText(v < 0 ? '−1' : '1', view.px(v), view.py(-1) + 3);
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const v of [-1, 1]) ctx.fillText(v < 0 ? '−1' : '1', view.px(-1) - 4, view.py(v));
  ctx.textAlign = 'right';
  ctx.textBaseline = 'bottom';
  ctx.fillText(tr('twopixel.axisX'), size - 6, size - 4);
  ctx.textAlign = 'left';
  ctx.textBaseline = 'top';
  ctx.fillText(tr('twopixel.axisY'), 6, 5);
}

/** The dots, as small squares in DOT_COLOUR. */
function drawDots(ctx, view, dots) {
  const r = Math.max(1.1, view.scale * 0.008);
  ctx.fillStyle = DOT_COLOUR;
  ctx.globalAlpha = 0.8;
  for (let i = 0; i < dots.length; i += 2) ctx.fillRect(view.px(dots[i]) - r, view.py(dots[i + 1]) - r, 2 * r, 2 * r);
  ctx.globalAlpha = 1;
}

/** Each blob: a dashed circle at 2 std and a draggable handle at its mean. */
function drawBlobHandles(ctx, view, blobs, active) {
  blobs.forEach((blob, k) => {
    const cx = view.px(blob.x);
    const cy = view.py(blob.y);
    ctx.strokeStyle = 'rgba(255,255,255,0.8)';
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.arc(cx, cy, 2 * blob.s * view.scale, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = DOT_COLOUR;
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = k === active ? 3 : 1.5;
    ctx.beginPath();
    ctx.arc(cx, cy, 5.5, 0, 2 * Math.PI);
    ctx.fill();
    ctx.stroke();
    ctx.lineWidth = 1;
  });
}

// ---------- small helpers ----------

const round2 = (v) => Math.round(v * 100) / 100;
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

/** Picks a spot for a new blob: the grid point farthest from the existing blobs. */
function freeSpot(blobs) {
  let best = [0, 0];
  let bestDistance = -1;
  for (const x of [-0.8, -0.4, 0, 0.4, 0.8]) {
    for (const y of [0.8, 0.4, 0, -0.4, -0.8]) {
      const d = Math.min(...blobs.map((b) => Math.hypot(b.x - x, b.y - y)));
      if (d > bestDistance + 1e-9) {
        best = [x, y];
        bestDistance = d;
      }
    }
  }
  return best;
}

/** Validated blob list from [[x, y], ...]; null if unusable. */
function parseBlobs(list) {
  if (!Array.isArray(list)) return null;
  const blobs = list
    .filter((p) => Array.isArray(p) && p.length >= 2 && Number.isFinite(+p[0]) && Number.isFinite(+p[1]))
    .slice(0, MAX_BLOBS)
    .map(([x, y]) => ({ x: round2(clamp(+x, -1, 1)), y: round2(clamp(+y, -1, 1)), s: BLOB_STD }));
  return blobs.length >= MIN_BLOBS ? blobs : null;
}

// ---------- the widget ----------

/**
 * Mounts the two-pixel world into `container`.
 *
 * @param {HTMLElement} container
 * @param {object} options
 * @param {object} options.schedule the linear schedule table from the wasm crate
 *   ({kind, timesteps, betas, alphas, alphaBars, posteriorVariance}, 0-based t).
 * @param {(key: string) => string} options.tr translation function for the `twopixel.*` keys.
 * @param {(state: {t: number, blobs: number[][]}) => void} [options.onChange] called when the
 *   user changes t (slider released / keyboard), finishes dragging a blob, adds or removes
 *   one, or when a forward/reverse animation ends. Not called by setState.
 * @returns {{getState(): {t: number, blobs: number[][]}, setState(state: object): void,
 *   setLanguage(tr?: (key: string) => string): void, getDots(): number[][],
 *   isAnimating(): boolean, destroy(): void, element: HTMLElement}}
 */
export function mountTwoPixel(container, { schedule, tr, onChange }) {
  let translate = tr;
  const T = schedule.timesteps;
  const noise = makeDotNoise(N_POINTS, POINT_SEED);
  const dots = new Float64Array(2 * N_POINTS);
  const raster = makeRaster();
  let blobs = parseBlobs(DEFAULT_BLOBS);
  let t = 0;
  let mode = 'forward'; // 'forward': dots = forward jump of fixed x_0, ε; 'reverse': reverse-run dots
  let animation = null; // { direction, frame, ... }
  let drag = null; // { index, pointerId }

  // DOM
  const root = el('div', { class: 'teach-toy teach-twopixel' });
  const caption = el('div', { class: 'teach-caption' });
  const panels = el('div', { class: 'teach-twopixel-panels' });
  const dataFigure = el('figure', { class: 'teach-twopixel-data' });
  const dataTitle = el('figcaption');
  const dataCanvas = el('canvas', { 'data-view-canvas': 'twopixel-data', role: 'img' });
  dataFigure.append(dataTitle, dataCanvas);
  const mainFigure = el('figure', { class: 'teach-twopixel-main' });
  const mainTitle = el('figcaption');
  const mainCanvas = el('canvas', { 'data-view-canvas': 'twopixel-main', role: 'img' });
  mainFigure.append(mainTitle, mainCanvas);
  panels.append(dataFigure, mainFigure);
  const buttons = el('div', { class: 'teach-buttons' });
  const forwardButton = el('button', { class: 'teach-primary', type: 'button', 'data-testid': 'twopixel-forward' });
  const reverseButton = el('button', { class: 'teach-primary', type: 'button', 'data-testid': 'twopixel-reverse' });
  const addButton = el('button', { type: 'button', 'data-testid': 'twopixel-add' });
  const removeButton = el('button', { type: 'button', 'data-testid': 'twopixel-remove' });
  buttons.append(forwardButton, reverseButton, addButton, removeButton);
  const sliderLabel = el('label', { class: 'teach-slider' });
  const sliderText = el('span');
  const slider = el('input', { type: 'range', min: '0', max: String(T - 1), step: '1', value: '0', 'data-testid': 'twopixel-t' });
  sliderLabel.append(sliderText, slider);
  const readout = el('div', { class: 'teach-readout', 'aria-live': 'off' });
  const dotsNote = el('p', { class: 'teach-hint' });
  root.append(caption, panels, buttons, sliderLabel, readout, dotsNote);
  container.append(root);

  const state = () => ({ t, blobs: blobs.map((b) => [round2(b.x), round2(b.y)]) });
  const notify = () => onChange?.(state());

  // ----- rendering -----

  function renderTexts() {
    caption.replaceChildren(
      ...['data', 'forward', 'reverse'].map((part) => {
        const paragraph = el('p');
        paragraph.textContent = translate(`twopixel.caption.${part}`);
        return paragraph;
      }),
    );
    dataTitle.textContent = translate('twopixel.dataTitle');
    mainTitle.textContent = translate('twopixel.mainTitle');
    dataCanvas.setAttribute('aria-label', dataTitle.textContent);
    mainCanvas.setAttribute('aria-label', mainTitle.textContent);
    addButton.textContent = translate('twopixel.addBlob');
    removeButton.textContent = translate('twopixel.removeBlob');
    sliderText.textContent = translate('twopixel.slider');
    renderControls();
  }

  function renderControls() {
    const running = animation?.direction;
    forwardButton.textContent = translate(running === 'forward' ? 'twopixel.stop' : 'twopixel.forward');
    reverseButton.textContent = translate(running === 'reverse' ? 'twopixel.stop' : 'twopixel.reverse');
    addButton.disabled = blobs.length >= MAX_BLOBS;
    removeButton.disabled = blobs.length <= MIN_BLOBS;
    slider.value = String(t);
    const abar = schedule.alphaBars[t];
    readout.textContent = fill(translate('twopixel.readout'), {
      t,
      abar: abar.toFixed(4),
      sab: Math.sqrt(abar).toFixed(4),
      snab: Math.sqrt(1 - abar).toFixed(4),
    });
    dotsNote.textContent = translate(`twopixel.dots.${mode}`);
  }

  function fontOf(node) {
    return `12px ${getComputedStyle(node).fontFamily || 'system-ui, sans-serif'}`;
  }

  function drawData() {
    const fit = fitCanvas(dataCanvas, 1);
    if (!fit) return;
    const { ctx, size } = fit;
    const view = viewTransform(DATA_VIEW, size);
    drawHeat(ctx, size, marginalComponents(blobs, 1), DATA_VIEW, raster);
    drawFrame(ctx, view, size, translate, fontOf(root));
    drawBlobHandles(ctx, view, blobs, drag?.index);
  }

  function drawMain() {
    const fit = fitCanvas(mainCanvas, 1);
    if (!fit) return;
    const { ctx, size } = fit;
    const view = viewTransform(MAIN_VIEW, size);
    if (mode === 'forward') forwardDots(dots, blobs, noise, schedule.alphaBars[t]);
    drawHeat(ctx, size, marginalComponents(blobs, schedule.alphaBars[t]), MAIN_VIEW, raster);
    drawFrame(ctx, view, size, translate, fontOf(root));
    drawDots(ctx, view, dots);
  }

  function redraw() {
    drawData();
    drawMain();
    renderControls();
  }

  // ----- animation -----

  function stopAnimation() {
    if (!animation) return false;
    cancelAnimationFrame(animation.frame);
    animation = null;
    renderControls();
    return true;
  }

  /** Animates t from 0 up to T−1, the dots following the forward jump. */
  function startForward() {
    mode = 'forward';
    t = 0;
    animation = { direction: 'forward', start: performance.now(), done: 0, total: T - 1 };
    animation.frame = requestAnimationFrame(tick);
    redraw();
  }

  /** Starts the reverse process at t = T−1 from x_T ~ N(0, I) and steps down to t = 0. */
  function startReverse() {
    mode = 'reverse';
    t = T - 1;
    const rand = mulberry32(REVERSE_SEED);
    fillGaussian(dots, rand);
    // `next` is the reverse step to apply next (T−1 … 0); after step s the dots are at s−1.
    animation = { direction: 'reverse', start: performance.now(), done: 0, total: T, next: T - 1, rand };
    animation.frame = requestAnimationFrame(tick);
    redraw();
  }

  function tick(now) {
    const a = animation;
    if (!a) return;
    const target = Math.min(a.total, Math.ceil(((now - a.start) / 1000) * STEPS_PER_SECOND), a.done + MAX_STEPS_PER_FRAME);
    while (a.done < target) {
      if (a.direction === 'forward') {
        t += 1;
      } else {
        reverseStep(dots, a.next, schedule, blobs, a.rand);
        t = Math.max(0, a.next - 1);
        a.next -= 1;
      }
      a.done += 1;
    }
    redraw();
    if (a.done >= a.total) {
      animation = null;
      renderControls();
      notify();
    } else {
      a.frame = requestAnimationFrame(tick);
    }
  }

  // ----- user input -----

  forwardButton.addEventListener('click', () => {
    const wasForward = animation?.direction === 'forward';
    stopAnimation();
    if (!wasForward) startForward();
    else notify();
  });
  reverseButton.addEventListener('click', () => {
    const wasReverse = animation?.direction === 'reverse';
    stopAnimation();
    if (!wasReverse) startReverse();
    else notify();
  });
  addButton.addEventListener('click', () => {
    if (blobs.length >= MAX_BLOBS) return;
    const [x, y] = freeSpot(blobs);
    blobs = [...blobs, { x, y, s: BLOB_STD }];
    userEdited();
  });
  removeButton.addEventListener('click', () => {
    if (blobs.length <= MIN_BLOBS) return;
    blobs = blobs.slice(0, -1);
    userEdited();
  });
  slider.addEventListener('input', () => {
    stopAnimation();
    mode = 'forward';
    t = clamp(Math.round(Number(slider.value)), 0, T - 1);
    redraw();
  });
  slider.addEventListener('change', notify);

  /** After an edit of the blobs: back to the forward view, redraw, tell the page. */
  function userEdited() {
    stopAnimation();
    mode = 'forward';
    redraw();
    notify();
  }

  /** Index of the blob handle under the pointer (within its 2-std circle, at least 14 px). */
  function blobAt(event) {
    const box = dataCanvas.getBoundingClientRect();
    const view = viewTransform(DATA_VIEW, box.width);
    const cx = event.clientX - box.left;
    const cy = event.clientY - box.top;
    let best = -1;
    let bestDistance = Infinity;
    blobs.forEach((b, k) => {
      const d = Math.hypot(view.px(b.x) - cx, view.py(b.y) - cy);
      if (d <= Math.max(14, 2 * b.s * view.scale) && d < bestDistance) {
        best = k;
        bestDistance = d;
      }
    });
    return best;
  }

  function moveBlobTo(event) {
    const box = dataCanvas.getBoundingClientRect();
    const view = viewTransform(DATA_VIEW, box.width);
    const [x, y] = view.toPlane(event.clientX - box.left - drag.offsetX, event.clientY - box.top - drag.offsetY);
    blobs = blobs.map((b, k) => (k === drag.index ? { ...b, x: round2(clamp(x, -1, 1)), y: round2(clamp(y, -1, 1)) } : b));
    redraw();
  }

  dataCanvas.addEventListener('pointerdown', (event) => {
    if (event.button !== 0) return;
    const index = blobAt(event);
    if (index < 0) return;
    event.preventDefault();
    stopAnimation();
    mode = 'forward';
    const box = dataCanvas.getBoundingClientRect();
    const view = viewTransform(DATA_VIEW, box.width);
    drag = {
      index,
      pointerId: event.pointerId,
      offsetX: event.clientX - box.left - view.px(blobs[index].x),
      offsetY: event.clientY - box.top - view.py(blobs[index].y),
    };
    dataCanvas.setPointerCapture(event.pointerId);
    redraw();
  });
  dataCanvas.addEventListener('pointermove', (event) => {
    if (drag && event.pointerId === drag.pointerId) moveBlobTo(event);
    else if (!drag) dataCanvas.style.cursor = blobAt(event) >= 0 ? 'grab' : '';
  });
  const endDrag = (event) => {
    if (!drag || event.pointerId !== drag.pointerId) return;
    drag = null;
    redraw();
    notify();
  };
  dataCanvas.addEventListener('pointerup', endDrag);
  dataCanvas.addEventListener('pointercancel', endDrag);

  const resizeObserver = new ResizeObserver(() => {
    drawData();
    drawMain();
  });
  resizeObserver.observe(panels);

  renderTexts();
  redraw();

  return {
    /** {t, blobs: [[x, y], ...]}, numbers rounded to 2 decimals (for the URL hash). */
    getState: state,
    /** Restores a state from getState (invalid parts are ignored); does not call onChange. */
    setState(next) {
      stopAnimation();
      const parsed = parseBlobs(next?.blobs);
      if (parsed) blobs = parsed;
      if (Number.isFinite(Number(next?.t))) t = clamp(Math.round(Number(next.t)), 0, T - 1);
      mode = 'forward';
      redraw();
    },
    /** Re-renders every text with `tr` (or with a new translation function, if given). */
    setLanguage(newTr) {
      if (typeof newTr === 'function') translate = newTr;
      renderTexts();
      redraw();
    },
    /** The dots now shown, as [[x, y], ...] (for tests). */
    getDots: () => Array.from({ length: N_POINTS }, (_, i) => [dots[2 * i], dots[2 * i + 1]]),
    /** The blobs' standard deviation (the same for all). */
    blobStd: BLOB_STD,
    isAnimating: () => animation !== null,
    /** Stops any animation and observers and removes the element. */
    destroy() {
      stopAnimation();
      resizeObserver.disconnect();
      root.remove();
    },
    element: root,
  };
}

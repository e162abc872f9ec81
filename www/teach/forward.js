// Forward-process explorer: a real image x_0 (a bundled avatar or the user's own, resized to
// the model's size in the browser), noised in one jump to any t with fixed noise (Ho et al.
// 2020, eq. 4: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps), and "denoise from here": the
// reverse process run from that x_t (an SDEdit-style variation, Meng et al. 2022).

import { initialNoise, rgbaToValues } from '../pkg/ddpm_avatars.js';
import { seedFrom, wholeNumberIn } from '../params.js';
import { renderTex } from './i18n.js';
import { drawFrame, drawValues, runToEnd, stats } from './pixels.js';

export const STRINGS = {
  en: {
    'forward.intro': 'Pick an image and drag t: the forward process jumps straight to x_t with the same noise ε '
      + 'every time. At t = 0 it is the image itself; near t = T almost nothing of it is left.',
    'forward.image': 'Image',
    'forward.sample': 'bundled avatar {n}',
    'forward.upload': 'or your own image:',
    'forward.noiseSeed': 'Noise seed',
    'forward.denoise': 'Denoise from here',
    'forward.denoiseHint': 'Runs the reverse process from this x_t with the main controls’ sampler: '
      + 'from a small t you get a variation of the image, from a large t a new avatar.',
    'forward.needsWeights': 'Denoising needs the model: no weights are loaded yet (or they failed to load: see the message above).',
    'forward.running': 'Denoising from t = {t}: step {step} of {total}',
    'forward.done': 'Denoised from t = {t} in {total} steps.',
    'forward.badImage': 'This file could not be read as an image: {error}',
    'forward.xt': 'x_t',
    'forward.result': 'denoised',
  },
  zh: {
    'forward.intro': '选一张图，拖动 t：前向过程每次都用同一份噪声 ε 直接跳到 x_t。'
      + 't = 0 时就是原图；接近 t = T 时原图几乎不剩什么。',
    'forward.image': '图像',
    'forward.sample': '内置头像 {n}',
    'forward.upload': '或上传你自己的图片：',
    'forward.noiseSeed': '噪声种子',
    'forward.denoise': '从这里去噪',
    'forward.denoiseHint': '用主控制区选定的采样器从当前 x_t 运行反向过程：'
      + 't 较小时得到原图的变体，t 较大时得到一个新头像。',
    'forward.needsWeights': '去噪需要模型：权重尚未加载（或加载失败：见上方的提示）。',
    'forward.running': '正在从 t = {t} 去噪：第 {step} / {total} 步',
    'forward.done': '已从 t = {t} 去噪，共 {total} 步。',
    'forward.badImage': '无法把这个文件读成图片：{error}',
    'forward.xt': 'x_t',
    'forward.result': '去噪结果',
  },
};

// Cells of www/img/training-avatars.png (12 x 2 avatars of 128 px, 8 px apart) offered as x_0.
const SHEET = { url: 'www/img/training-avatars.png', cell: 128, gap: 8, columns: 12 };
const SAMPLE_CELLS = [1, 3, 4, 9, 16, 22];

/**
 * Mounts the view. `context`: `{tr, table() (the schedule table in use), size() (model image
 * side, 64 before weights load), generator() (a twin Generator or null), settings() (main
 * controls), onChange()}`.
 */
export function mountForward(container, { tr, table, size, generator, settings, onChange }) {
  container.innerHTML = `
    <p data-i18n="forward.intro"></p>
    <div class="row">
      <label><span data-i18n="forward.image"></span> <select data-testid="forward-image"></select></label>
      <label><span data-i18n="forward.upload"></span> <input type="file" accept="image/*" data-testid="forward-upload"></label>
      <label><span data-i18n="forward.noiseSeed"></span> <input type="number" min="0" step="1" value="0" data-testid="forward-seed"></label>
    </div>
    <label class="wide">t = <output data-testid="forward-t-value">0</output>
      <input type="range" min="0" value="0" data-testid="forward-t"></label>
    <div class="anatomy-formula" data-testid="forward-formula"></div>
    <div class="pair">
      <figure><canvas data-view-canvas data-testid="forward-canvas"></canvas><figcaption data-i18n="forward.xt"></figcaption></figure>
      <figure><canvas data-view-canvas data-testid="forward-result"></canvas><figcaption data-i18n="forward.result"></figcaption></figure>
    </div>
    <p><button type="button" data-testid="forward-denoise" data-i18n="forward.denoise"></button>
      <span class="muted" data-testid="forward-status" data-i18n="forward.denoiseHint"></span></p>
    <p class="error" data-testid="forward-error" hidden></p>`;
  const $ = (id) => container.querySelector(`[data-testid=${id}]`);
  const ui = {
    image: $('forward-image'), upload: $('forward-upload'), seed: $('forward-seed'), t: $('forward-t'),
    tValue: $('forward-t-value'), formula: $('forward-formula'), canvas: $('forward-canvas'),
    result: $('forward-result'), denoise: $('forward-denoise'), status: $('forward-status'),
    error: $('forward-error'),
  };
  for (let i = 0; i < SAMPLE_CELLS.length; i += 1) {
    const option = new Option('', String(i));
    option.dataset.i18n = 'forward.sample';
    option.dataset.i18nParams = JSON.stringify({ n: i + 1 });
    option.textContent = tr('forward.sample', { n: i + 1 });
    ui.image.append(option);
  }
  const sheet = new Image();
  sheet.src = SHEET.url;
  const state = { x0: null, noise: null, noiseKey: '', uploaded: null, xt: null, running: false };

  /** x_0 from the chosen source, resized to the model's size (planar values in [-1, 1]). */
  async function loadX0() {
    const side = size();
    const canvas = document.createElement('canvas');
    canvas.width = side;
    canvas.height = side;
    const context = canvas.getContext('2d', { willReadFrequently: true });
    context.imageSmoothingQuality = 'high';
    if (state.uploaded) {
      const { width, height } = state.uploaded;
      const crop = Math.min(width, height); // centre square, like the trainer's data loader
      context.drawImage(state.uploaded, (width - crop) / 2, (height - crop) / 2, crop, crop, 0, 0, side, side);
    } else {
      await sheet.decode();
      const cell = SAMPLE_CELLS[Number(ui.image.value) || 0];
      const left = (cell % SHEET.columns) * (SHEET.cell + SHEET.gap);
      const top = Math.floor(cell / SHEET.columns) * (SHEET.cell + SHEET.gap);
      context.drawImage(sheet, left, top, SHEET.cell, SHEET.cell, 0, 0, side, side);
    }
    const pixels = context.getImageData(0, 0, side, side).data;
    state.x0 = rgbaToValues(new Uint8Array(pixels.buffer), side, side);
  }

  /** The fixed eps: exactly the x_T a run with this seed starts from. */
  function noise() {
    const key = `${ui.seed.value}/${state.x0.length}`;
    if (state.noiseKey !== key) {
      state.noise = initialNoise(seedFrom(ui.seed.value), 1, state.x0.length);
      state.noiseKey = key;
    }
    return state.noise;
  }

  function redraw() {
    const schedule = table();
    if (!schedule || !state.x0) return;
    const T = schedule.timesteps;
    ui.t.max = String(T);
    const t = Math.min(T, Math.max(0, Number(ui.t.value) || 0));
    ui.tValue.textContent = String(t);
    // The paper's t (1..T) is table index t - 1; t = 0 is x_0 itself.
    const alphaBar = t === 0 ? 1 : schedule.alphaBars[t - 1];
    const [signal, spread] = [Math.sqrt(alphaBar), Math.sqrt(1 - alphaBar)];
    const eps = noise();
    const xt = new Float32Array(state.x0.length);
    for (let i = 0; i < xt.length; i += 1) xt[i] = signal * state.x0[i] + spread * eps[i];
    state.xt = { values: xt, t };
    drawValues(ui.canvas, xt, { size: size() });
    ui.formula.dataset.tex = String.raw`x_{${t}} = \sqrt{\bar\alpha_{${t}}}\,x_0 + \sqrt{1-\bar\alpha_{${t}}}\,\epsilon = ${signal.toFixed(4)}\,x_0 + ${spread.toFixed(4)}\,\epsilon`;
    renderTex(container);
    const { mean, std } = stats(xt);
    ui.canvas.dataset.mean = mean.toFixed(4);
    ui.canvas.dataset.std = std.toFixed(4);
  }

  async function reload() {
    ui.error.hidden = true;
    try {
      await loadX0();
      redraw();
    } catch (error) {
      ui.error.textContent = tr('forward.badImage', { error: error?.message ?? String(error) });
      ui.error.hidden = false;
    }
  }

  async function denoise() {
    const twin = generator();
    if (!twin) {
      ui.status.textContent = tr('forward.needsWeights');
      return;
    }
    if (!state.xt || state.xt.t === 0 || state.running) return;
    const { values, t } = state.xt;
    const main = settings();
    // DDPM takes all t remaining steps; DDIM keeps the main run's spacing below t.
    state.running = true;
    ui.denoise.disabled = true;
    ui.status.removeAttribute('data-i18n');
    try {
      await twin.startFrom(values, t, {
        seed: main.seed, sampler: main.sampler, steps: main.steps, clip: main.clip,
        variance: main.variance, spacing: main.spacing,
      });
      const every = main.sampler === 'ddpm' ? 10 : 1;
      const last = await runToEnd(twin, {
        every,
        onFrame: (frame) => {
          drawFrame(ui.result, frame);
          ui.status.textContent = tr('forward.running', { t, step: frame.step, total: frame.total });
        },
      });
      ui.status.textContent = tr('forward.done', { t, total: last.total });
      ui.result.dataset.done = '1';
    } catch (error) {
      ui.error.textContent = String(error?.message ?? error);
      ui.error.hidden = false;
    } finally {
      state.running = false;
      ui.denoise.disabled = false;
    }
  }

  ui.image.addEventListener('change', () => {
    state.uploaded = null;
    ui.upload.value = '';
    reload();
    onChange();
  });
  ui.upload.addEventListener('change', async () => {
    const file = ui.upload.files?.[0];
    if (!file) return;
    try {
      state.uploaded = await createImageBitmap(file);
    } catch (error) {
      ui.error.textContent = tr('forward.badImage', { error: error?.message ?? String(error) });
      ui.error.hidden = false;
      return;
    }
    reload();
  });
  ui.seed.addEventListener('change', () => { redraw(); onChange(); });
  ui.t.addEventListener('input', redraw);
  ui.t.addEventListener('change', onChange);
  ui.denoise.addEventListener('click', denoise);

  return {
    /** Called when the view opens and when the weights (model size, schedule) change. */
    refresh: reload,
    getState: () => ({ t: ui.t.value, image: ui.image.value, seed: ui.seed.value }),
    setState(saved) {
      const last = SAMPLE_CELLS.length - 1;
      const image = wholeNumberIn(saved.image, { min: 0, max: last, fallback: Number(ui.image.value) });
      ui.image.value = String(image);
      if (saved.seed !== undefined) ui.seed.value = String(seedFrom(saved.seed));
      if (saved.t !== undefined) {
        const T = table()?.timesteps ?? 1000;
        ui.t.max = String(T);
        ui.t.value = String(wholeNumberIn(saved.t, { min: 0, max: T, fallback: 0 }));
      }
    },
    setLanguage: redraw,
  };
}

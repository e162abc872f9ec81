// Step anatomy: for one avatar of the running grid, the four parts of the reverse step the
// sampler just took (x_t, eps_theta, predicted x_0, fresh noise sigma_t z) and its result,
// with the step's formula and the schedule's numbers for this t filled in.

import { gridLayout } from '../grid.js';
import { MAX_BATCH, wholeNumberIn } from '../params.js';
import { renderTex } from './i18n.js';
import { drawFrame, drawValues, stats } from './pixels.js';

export const STRINGS = {
  en: {
    'anatomy.intro': 'Each drawn step of the main run is taken apart here, for one avatar of the grid. '
      + 'Press Generate (a short DDIM run is enough) and watch the parts change with t.',
    'anatomy.avatar': 'Avatar',
    'anatomy.pickHint': 'or click one in the grid',
    'anatomy.xt': 'x_t: the input',
    'anatomy.eps': 'ε_θ(x_t, t): predicted noise (×⅓)',
    'anatomy.x0': 'x̂₀: predicted clean image',
    'anatomy.noise': 'σ_t z: fresh noise (shown as z, ×⅓)',
    'anatomy.next': 'x_{t−1}: the result',
    'anatomy.waiting': 'Waiting for a step of the main run: press Generate.',
    'anatomy.stat': 'mean {mean} · std {std}',
    'anatomy.noNoise': 'no fresh noise at this step',
    'anatomy.clipNote': 'Clipping is on: ε̂ is the noise consistent with the clipped x̂₀, so the formula holds exactly.',
    'anatomy.ddimNote': 'DDIM (Song et al. 2021, eq. 12) jumps from t to the next timestep of its subsequence.',
  },
  zh: {
    'anatomy.intro': '主生成过程中每个被绘制的步骤都在这里拆开展示（针对网格中的一个头像）。'
      + '点击“Generate”（较短的 DDIM 运行即可），观察各部分如何随 t 变化。',
    'anatomy.avatar': '头像',
    'anatomy.pickHint': '或在网格中点选一个',
    'anatomy.xt': 'x_t：输入',
    'anatomy.eps': 'ε_θ(x_t, t)：预测的噪声（×⅓）',
    'anatomy.x0': 'x̂₀：预测的干净图像',
    'anatomy.noise': 'σ_t z：新加入的噪声（显示 z，×⅓）',
    'anatomy.next': 'x_{t−1}：结果',
    'anatomy.waiting': '等待主生成过程的下一步：请点击“Generate”。',
    'anatomy.stat': '均值 {mean} · 标准差 {std}',
    'anatomy.noNoise': '这一步不加新噪声',
    'anatomy.clipNote': '已开启裁剪：ε̂ 是与裁剪后的 x̂₀ 一致的噪声，因此公式严格成立。',
    'anatomy.ddimNote': 'DDIM（Song 等 2021，式 12）从 t 直接跳到其子序列中的下一个时间步。',
  },
};

const PANELS = [
  { key: 'xt', label: 'anatomy.xt', scale: () => 1 },
  { key: 'eps', label: 'anatomy.eps', scale: () => 1 / 3 },
  { key: 'x0', label: 'anatomy.x0', scale: () => 1 },
  // sigma_t z divided by sigma_t is z ~ N(0, I): shown like the predicted noise.
  { key: 'noise', label: 'anatomy.noise', scale: (sigma) => (sigma > 0 ? 1 / (3 * sigma) : 1) },
  { key: 'next', label: 'anatomy.next', scale: () => 1 },
];

/**
 * Mounts the view. `context`: `{tr, table()}` (the weights' schedule table, or null before
 * they load), `onChange()` (the hash should be saved). Returns the view's handle; the page
 * calls `focusIndex()` before a drawn step and `show(frame, settings)` after it.
 */
export function mountAnatomy(container, { tr, table, onChange }) {
  container.innerHTML = `
    <p data-i18n="anatomy.intro"></p>
    <div class="anatomy-pick">
      <canvas data-view-canvas data-testid="anatomy-grid" title=""></canvas>
      <label><span data-i18n="anatomy.avatar"></span>
        <select data-testid="anatomy-avatar"></select></label>
      <span class="muted" data-i18n="anatomy.pickHint"></span>
    </div>
    <p class="muted" data-testid="anatomy-status" data-i18n="anatomy.waiting"></p>
    <div class="anatomy-panels"></div>
    <div class="anatomy-formula" data-testid="anatomy-formula"></div>
    <div class="anatomy-formula" data-testid="anatomy-numbers"></div>
    <p class="muted anatomy-note"></p>`;
  const select = container.querySelector('select');
  const gridCanvas = container.querySelector('[data-testid=anatomy-grid]');
  const status = container.querySelector('[data-testid=anatomy-status]');
  const note = container.querySelector('.anatomy-note');
  const [formula, numbers] = container.querySelectorAll('.anatomy-formula');
  const panels = PANELS.map((panel) => {
    const figure = document.createElement('figure');
    figure.innerHTML = `<canvas data-view-canvas width="64" height="64"></canvas>
      <figcaption><span data-i18n="${panel.label}"></span><br><span class="muted"></span></figcaption>`;
    container.querySelector('.anatomy-panels').append(figure);
    return { ...panel, canvas: figure.querySelector('canvas'), stat: figure.querySelector('.muted') };
  });
  let last = null;

  function setBatch(batch) {
    const chosen = Math.min(Number(select.value) || 0, batch - 1);
    select.replaceChildren(...Array.from({ length: batch }, (_, i) => new Option(String(i + 1), String(i))));
    select.value = String(chosen);
  }
  setBatch(1);
  select.addEventListener('change', () => onChange());
  // A click on the small copy of the running grid picks that avatar.
  gridCanvas.addEventListener('click', (event) => {
    if (!last) return;
    const box = gridCanvas.getBoundingClientRect();
    const x = ((event.clientX - box.left) / box.width) * gridCanvas.width;
    const y = ((event.clientY - box.top) / box.height) * gridCanvas.height;
    const index = gridLayout(last.settings.batch, last.size).indexAt(x, y);
    if (index >= 0) {
      select.value = String(index);
      drawGrid(last.frame, last.settings, last.size);
      onChange();
    }
  });

  /** The running grid (as the main canvas shows it) with the chosen avatar outlined. */
  function drawGrid(frame, settings, size) {
    if (!frame.rgba) return;
    drawFrame(gridCanvas, frame);
    const index = Number(select.value) || 0;
    const context = gridCanvas.getContext('2d');
    context.strokeStyle = '#ffd400';
    context.lineWidth = Math.max(1, size / 32);
    const [left, top] = gridLayout(settings.batch, size).origin(index);
    context.strokeRect(left + 0.5, top + 0.5, size - 1, size - 1);
  }

  function show(frame, settings, size) {
    const focus = frame.focus;
    if (!focus) return;
    last = { frame, settings, size };
    drawGrid(frame, settings, size);
    const schedule = table();
    const t = frame.t; // the paper's t of the step's input x_t; the tables are 0-based
    const k = t - 1;
    const variances = settings.variance === 'beta' ? schedule?.betas : schedule?.posteriorVariance;
    const sigma = variances && settings.sampler === 'ddpm' && k > 0 ? Math.sqrt(variances[k]) : 0;
    const measuredSigma = stats(focus.noise).std;
    for (const panel of panels) {
      const values = focus[panel.key];
      const scale = panel.key === 'noise' ? panel.scale(sigma || measuredSigma) : panel.scale();
      drawValues(panel.canvas, values, { size, scale });
      const { mean, std } = stats(values);
      panel.stat.textContent = panel.key === 'noise' && std === 0
        ? tr('anatomy.noNoise')
        : tr('anatomy.stat', { mean: mean.toFixed(3), std: std.toFixed(3) });
    }
    status.removeAttribute('data-i18n');
    status.textContent = `t = ${t} → ${frame.level} · ${frame.step} / ${frame.total}`;
    renderFormula(schedule, settings, t, sigma || measuredSigma);
  }

  function renderFormula(schedule, settings, t, sigma) {
    const k = t - 1;
    if (settings.sampler === 'ddpm') {
      formula.dataset.tex = String.raw`x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\hat\epsilon\Big) + \sigma_t z`;
      if (schedule) {
        const a = 1 / Math.sqrt(schedule.alphas[k]);
        const b = schedule.betas[k] / Math.sqrt(1 - schedule.alphaBars[k]);
        numbers.dataset.tex = String.raw`x_{${t - 1}} = ${a.toFixed(5)}\,\big(x_{${t}} - ${b.toFixed(5)}\,\hat\epsilon\big) + ${sigma.toFixed(5)}\,z`
          + String.raw`\qquad \beta_{${t}} = ${schedule.betas[k].toFixed(5)},\ \bar\alpha_{${t}} = ${schedule.alphaBars[k].toFixed(5)}`;
      }
      note.textContent = settings.clip ? tr('anatomy.clipNote') : '';
    } else {
      formula.dataset.tex = String.raw`x_{\text{prev}} = \sqrt{\bar\alpha_{\text{prev}}}\,\hat x_0 + \sqrt{1-\bar\alpha_{\text{prev}}-\sigma^2}\,\hat\epsilon + \sigma z`;
      if (schedule) {
        numbers.dataset.tex = String.raw`t = ${t},\ \bar\alpha_{${t}} = ${schedule.alphaBars[k].toFixed(5)},\ \sigma = ${sigma.toFixed(5)}`;
      }
      note.textContent = tr('anatomy.ddimNote');
    }
    renderTex(container);
  }

  return {
    /** Index of the avatar to take apart (clamped to the batch by the page). */
    focusIndex: () => Number(select.value) || 0,
    /** A new run started with `batch` images. */
    reset(batch) {
      setBatch(batch);
    },
    show,
    getState: () => ({ avatar: select.value }),
    setState(state) {
      if (state.avatar === undefined) return;
      // At most the largest batch: a link asking for avatar 1e9 must not build 1e9 options.
      const index = wholeNumberIn(state.avatar, { min: 0, max: MAX_BATCH - 1, fallback: 0 });
      if (index >= select.options.length) setBatch(index + 1);
      select.value = String(index);
    },
    /** Re-renders the texts of the last step in the new language. */
    setLanguage() {
      if (last) show(last.frame, last.settings, last.size);
    },
  };
}

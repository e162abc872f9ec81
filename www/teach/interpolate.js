// Seed interpolation: the x_T of two seeds, points on the great circle between them (spherical
// interpolation keeps them plausible Gaussian noise), each denoised with deterministic DDIM, so
// the row shows one avatar turning into another.

import { slerpNoise } from '../pkg/ddpm_avatars.js';
import { drawRow, nextFrame, runFromButton } from './pixels.js';

export const STRINGS = {
  en: {
    'interpolate.intro': 'Every avatar is a point in a space of 3·64·64 = 12288 numbers, and so is its '
      + 'starting noise x_T. Walk along the great circle from the x_T of seed A to that of seed B and '
      + 'denoise each point with deterministic DDIM (η = 0): the avatars blend into each other.',
    'interpolate.seedA': 'Seed A',
    'interpolate.seedB': 'Seed B',
    'interpolate.count': 'Avatars',
    'interpolate.steps': 'DDIM steps',
    'interpolate.run': 'Interpolate',
    'interpolate.needsWeights': 'Interpolation needs the model: no weights are loaded yet (or they failed to load: see the message above).',
    'interpolate.running': 'DDIM step {step} of {total}',
    'interpolate.done': 'Seed {a} → seed {b}: {count} avatars, {steps} DDIM steps.',
  },
  zh: {
    'interpolate.intro': '每个头像都是 3·64·64 = 12288 维空间中的一个点，它的起始噪声 x_T 也是。'
      + '沿着大圆从种子 A 的 x_T 走到种子 B 的 x_T，并用确定性的 DDIM（η = 0）对每个点去噪：'
      + '头像会逐渐融合成另一个。',
    'interpolate.seedA': '种子 A',
    'interpolate.seedB': '种子 B',
    'interpolate.count': '头像数',
    'interpolate.steps': 'DDIM 步数',
    'interpolate.run': '插值',
    'interpolate.needsWeights': '插值需要模型：权重尚未加载（或加载失败：见上方的提示）。',
    'interpolate.running': 'DDIM 第 {step} / {total} 步',
    'interpolate.done': '种子 {a} → 种子 {b}：{count} 个头像，{steps} 步 DDIM。',
  },
};

const wholeNumber = (value, fallback) => {
  const number = Math.floor(Number(value));
  return Number.isSafeInteger(number) && number >= 0 ? number : fallback;
};

/** Mounts the view. `context`: `{tr, size(), generator() (a twin, or null), settings(), onChange()}`. */
export function mountInterpolate(container, { tr, size, generator, settings, onChange }) {
  container.innerHTML = `
    <p data-i18n="interpolate.intro"></p>
    <div class="row">
      <label><span data-i18n="interpolate.seedA"></span> <input type="number" min="0" step="1" value="0" data-testid="interp-a"></label>
      <label><span data-i18n="interpolate.seedB"></span> <input type="number" min="0" step="1" value="1" data-testid="interp-b"></label>
      <label><span data-i18n="interpolate.count"></span>
        <select data-testid="interp-count"><option>5</option><option selected>8</option><option>12</option></select></label>
      <label><span data-i18n="interpolate.steps"></span> <input type="number" min="1" max="1000" step="1" value="50" data-testid="interp-steps"></label>
      <button type="button" data-testid="interp-run" data-i18n="interpolate.run"></button>
    </div>
    <canvas data-view-canvas class="strip" data-testid="interp-canvas"></canvas>
    <p class="muted" data-testid="interp-status"></p>`;
  const $ = (id) => container.querySelector(`[data-testid=${id}]`);
  const ui = {
    a: $('interp-a'), b: $('interp-b'), count: $('interp-count'), steps: $('interp-steps'),
    run: $('interp-run'), canvas: $('interp-canvas'), status: $('interp-status'),
  };
  async function interpolate() {
    const twin = generator();
    if (!twin) {
      ui.status.textContent = tr('interpolate.needsWeights');
      return;
    }
    const side = size();
    const [a, b] = [wholeNumber(ui.a.value, 0), wholeNumber(ui.b.value, 1)];
    const count = Number(ui.count.value);
    const steps = Math.min(twin.timesteps, Math.max(1, wholeNumber(ui.steps.value, 50)));
    const noise = slerpNoise(a, b, count, 3 * side * side);
    twin.startFrom(noise, twin.timesteps, 0, 'ddim', steps, settings().clip, 0);
    drawRow(ui.canvas, noise, count, side);
    for (let step = 1; step <= steps; step += 1) {
      const frame = await twin.step(false, false, true, undefined);
      drawRow(ui.canvas, frame.x, count, side);
      ui.status.textContent = tr('interpolate.running', { step, total: steps });
      await nextFrame();
    }
    ui.status.textContent = tr('interpolate.done', { a, b, count, steps });
    ui.canvas.dataset.done = `${a}-${b}-${count}`;
  }

  const start = () => runFromButton(ui.run, ui.status, interpolate);
  ui.run.addEventListener('click', () => {
    onChange();
    start();
  });

  return {
    run: start,
    getState: () => ({ a: ui.a.value, b: ui.b.value, n: ui.count.value, steps: ui.steps.value }),
    setState(saved) {
      if (saved.a !== undefined) ui.a.value = String(wholeNumber(saved.a, 0));
      if (saved.b !== undefined) ui.b.value = String(wholeNumber(saved.b, 1));
      if (['5', '8', '12'].includes(saved.n)) ui.count.value = saved.n;
      if (saved.steps !== undefined) ui.steps.value = String(Math.max(1, wholeNumber(saved.steps, 50)));
    },
    setLanguage() {},
  };
}

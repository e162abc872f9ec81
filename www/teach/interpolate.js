// Seed interpolation: the x_T of two seeds, points on the great circle between them (spherical
// interpolation keeps them plausible Gaussian noise), each denoised with deterministic DDIM, so
// the row shows one avatar turning into another.

import { oneOf, seedFrom, wholeNumberIn } from '../params.js';
import { slerpNoise } from '../pkg/ddpm_avatars.js';
import { drawRow, runFromButton } from './pixels.js';

export const STRINGS = {
  en: {
    'interpolate.intro': 'Every avatar is a point in a space of 3·64·64 = 12288 numbers, and so is its '
      + 'starting noise x_T. Walk along the great circle from the x_T of seed A to that of seed B and '
      + 'denoise each point with deterministic DDIM (η = 0): the avatars blend into each other. '
      + 'The two ends are exactly the avatars that seeds A and B give with as many DDIM steps.',
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
      + '头像会逐渐融合成另一个。两端正是种子 A 和 B 用同样多的 DDIM 步数生成的头像。',
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

const COUNTS = ['5', '8', '12'];

/**
 * The noise level a plain run with `options` gives x_T: T, or less when DDIM's spacing starts
 * lower (leading spacing treats x_T as x_750 in a run of 4 of 1000 steps). Starting the row
 * there makes it take exactly the plain run's steps, so its ends are seed A's and B's avatars.
 */
async function startingLevel(twin, options) {
  await twin.start(options);
  return (await twin.preview(false)).level;
}

/**
 * Mounts the view. `context`: `{tr, size(), table() (the schedule table in use), generator()
 * (a twin, or null), settings(), onChange()}`.
 */
export function mountInterpolate(container, { tr, size, table, generator, settings, onChange }) {
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
    const [a, b] = [seedFrom(ui.a.value, 0), seedFrom(ui.b.value, 1)];
    const count = Number(oneOf(ui.count.value, COUNTS, '8'));
    const steps = wholeNumberIn(ui.steps.value, { min: 1, max: twin.timesteps, fallback: 50 });
    const { clip, spacing } = settings(); // the main run's, so the ends are its avatars
    const options = { seed: a, sampler: 'ddim', steps, clip, spacing };
    const noise = slerpNoise(a, b, count, 3 * side * side);
    await twin.startFrom(noise, await startingLevel(twin, options), options);
    drawRow(ui.canvas, noise, count, side);
    let frame;
    do {
      frame = await twin.step({ raw: true });
      drawRow(ui.canvas, frame.x, count, side);
      ui.status.textContent = tr('interpolate.running', { step: frame.step, total: frame.total });
    } while (!frame.done);
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
      if (saved.a !== undefined) ui.a.value = String(seedFrom(saved.a, 0));
      if (saved.b !== undefined) ui.b.value = String(seedFrom(saved.b, 1));
      ui.count.value = oneOf(saved.n, COUNTS, ui.count.value);
      const max = table()?.timesteps ?? 1000;
      if (saved.steps !== undefined) ui.steps.value = String(wholeNumberIn(saved.steps, { min: 1, max, fallback: 50 }));
    },
    setLanguage() {},
  };
}

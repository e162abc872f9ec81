// Why clipping: the same seed and sampler run twice side by side, once clipping the predicted
// x_0 to [-1, 1] (as the paper's official code does) and once with the seeds' plain formula.

import { oneOf, seedFrom } from '../params.js';
import { drawFrame, runFromButton, stats } from './pixels.js';

export const STRINGS = {
  en: {
    'clipping.intro': 'At large t the model’s guess of the clean image, x̂₀ = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t, '
      + 'divides by a tiny √ᾱ_t and lands far outside the pixel range. Clipping x̂₀ to [−1, 1] before '
      + 'taking the step keeps colours sane; without it, errors of the early steps survive as '
      + 'saturated blotches. Same seed, same sampler, only this switch differs:',
    'clipping.seed': 'Seed',
    'clipping.sampler': 'Sampler',
    'clipping.ddim': 'DDIM 50 steps',
    'clipping.ddpm': 'DDPM 1000 steps',
    'clipping.run': 'Run both',
    'clipping.on': 'clip x̂₀ on',
    'clipping.off': 'clip x̂₀ off',
    'clipping.needsWeights': 'This comparison needs the model: no weights are loaded yet (or they failed to load: see the message above).',
    'clipping.running': 'step {step} of {total}',
    'clipping.range': 'x range [{min}, {max}]',
  },
  zh: {
    'clipping.intro': '在 t 较大时，模型对干净图像的猜测 x̂₀ = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t 要除以一个很小的 √ᾱ_t，'
      + '会远远超出像素范围。先把 x̂₀ 裁剪到 [−1, 1] 再走这一步，颜色就保持正常；不裁剪时，'
      + '早期步骤的误差会残留成过饱和的色块。同一个种子、同一个采样器，只有这个开关不同：',
    'clipping.seed': '种子',
    'clipping.sampler': '采样器',
    'clipping.ddim': 'DDIM 50 步',
    'clipping.ddpm': 'DDPM 1000 步',
    'clipping.run': '同时运行',
    'clipping.on': '裁剪 x̂₀：开',
    'clipping.off': '裁剪 x̂₀：关',
    'clipping.needsWeights': '这个对比需要模型：权重尚未加载（或加载失败：见上方的提示）。',
    'clipping.running': '第 {step} / {total} 步',
    'clipping.range': 'x 的范围 [{min}, {max}]',
  },
};

/** Mounts the view. `context`: `{tr, makeTwin() (a new twin Generator, or null), onChange()}`. */
export function mountClipping(container, { tr, makeTwin, onChange }) {
  container.innerHTML = `
    <p data-i18n="clipping.intro"></p>
    <div class="row">
      <label><span data-i18n="clipping.seed"></span> <input type="number" min="0" step="1" value="0" data-testid="clip-seed"></label>
      <label><span data-i18n="clipping.sampler"></span> <select data-testid="clip-sampler">
        <option value="ddim" data-i18n="clipping.ddim"></option><option value="ddpm" data-i18n="clipping.ddpm"></option></select></label>
      <button type="button" data-testid="clip-run" data-i18n="clipping.run"></button>
    </div>
    <div class="pair">
      <figure><canvas data-view-canvas data-testid="clip-on"></canvas><figcaption><span data-i18n="clipping.on"></span><br><span class="muted"></span></figcaption></figure>
      <figure><canvas data-view-canvas data-testid="clip-off"></canvas><figcaption><span data-i18n="clipping.off"></span><br><span class="muted"></span></figcaption></figure>
    </div>
    <p class="muted" data-testid="clip-status"></p>`;
  const $ = (id) => container.querySelector(`[data-testid=${id}]`);
  const ui = {
    seed: $('clip-seed'), sampler: $('clip-sampler'), run: $('clip-run'), on: $('clip-on'),
    off: $('clip-off'), status: $('clip-status'),
  };
  let twins = null;

  async function compare() {
    twins ??= [makeTwin(), makeTwin()];
    if (!twins[0] || !twins[1]) {
      twins = null;
      ui.status.textContent = tr('clipping.needsWeights');
      return;
    }
    const seed = seedFrom(ui.seed.value);
    const ddpm = ui.sampler.value === 'ddpm';
    const steps = ddpm ? twins[0].timesteps : Math.min(50, twins[0].timesteps);
    const sides = [[twins[0], ui.on, true], [twins[1], ui.off, false]];
    for (const [twin, , clip] of sides) await twin.start({ seed, sampler: ddpm ? 'ddpm' : 'ddim', steps, clip });
    const every = ddpm ? 10 : 1;
    for (let step = 1; step <= steps; step += 1) {
      const draw = step % every === 0 || step === steps;
      for (const [twin, canvas] of sides) {
        const frame = await twin.step({ draw, raw: draw });
        if (!draw) continue;
        drawFrame(canvas, frame);
        const { min, max } = stats(frame.x);
        canvas.nextElementSibling.querySelector('.muted').textContent = tr('clipping.range', { min: min.toFixed(2), max: max.toFixed(2) });
      }
      if (draw) ui.status.textContent = tr('clipping.running', { step, total: steps });
    }
    ui.on.dataset.done = String(seed);
  }

  ui.run.addEventListener('click', () => {
    onChange();
    runFromButton(ui.run, ui.status, compare);
  });

  return {
    /** New weights: the twins must be made again. */
    forget() {
      twins = null;
    },
    getState: () => ({ seed: ui.seed.value, sampler: ui.sampler.value }),
    setState(saved) {
      if (saved.seed !== undefined) ui.seed.value = String(seedFrom(saved.seed));
      ui.sampler.value = oneOf(saved.sampler, ['ddim', 'ddpm'], ui.sampler.value);
    },
    setLanguage() {},
  };
}

// Scrub and branch: the frames of the main run are kept (8-bit, within a memory budget), a
// slider scrubs through them, and "branch from here" continues from the chosen x_t with
// another seed. Branching late changes only details; branching early gives another avatar.

import { MAX_TIMESTEPS, seedFrom, wholeNumberIn } from '../params.js';
import { dequantize, drawFrame, drawValues, pixelDifference, quantize, runToEnd } from './pixels.js';

export const STRINGS = {
  en: {
    'timeline.intro': 'Every drawn frame of the main run is kept. Scrub back and forth, then branch: '
      + 'the reverse process continues from that x_t with another seed. From a late step only details '
      + 'change; from an early step the avatar itself does.',
    'timeline.etaNote': 'A DDIM branch adds fresh noise (η = 1) at every step, even when the main run is deterministic (η = 0): '
      + 'without fresh noise a DDIM run has no use for a seed, and every branch would end exactly where the main run did.',
    'timeline.empty': 'No frames yet: press Generate.',
    'timeline.frame': 'Frame {index} of {count}: step {step} of {total}, x_t at t = {t}',
    'timeline.kept': '{count} frames kept ({megabytes} MB, 8-bit); {skipped}',
    'timeline.keptAll': 'every drawn step is kept.',
    'timeline.keptEvery': 'one drawn step in {every} is kept to stay within {budget} MB.',
    'timeline.seed': 'Branch seed',
    'timeline.branch': 'Branch from here',
    'timeline.branchClean': 'This frame is already the clean image: pick an earlier one.',
    'timeline.running': 'Branch: step {step} of {total}',
    'timeline.result': 'Branched from t = {t} with seed {seed}: differs from the original ending by {diff} / 255 on average.',
    'timeline.original': 'the main run’s ending',
    'timeline.branched': 'the branch’s ending',
    'timeline.scrubbed': 'the frame at the slider',
  },
  zh: {
    'timeline.intro': '主生成过程中每个被绘制的帧都会被保留。来回拖动时间轴，然后“分支”：'
      + '反向过程会用另一个种子从该 x_t 继续。从较晚的步骤分支只改变细节；从较早的步骤分支会改变头像本身。',
    'timeline.etaNote': 'DDIM 分支在每一步都会加入新的噪声（η = 1），即使主生成过程是确定性的（η = 0）：'
      + '没有新噪声时，DDIM 运行根本用不到种子，每个分支都会恰好停在主生成过程的结果上。',
    'timeline.empty': '还没有帧：请点击“Generate”。',
    'timeline.frame': '第 {index} / {count} 帧：第 {step} / {total} 步，t = {t} 时的 x_t',
    'timeline.kept': '已保留 {count} 帧（{megabytes} MB，8 位）；{skipped}',
    'timeline.keptAll': '每个绘制的步骤都已保留。',
    'timeline.keptEvery': '为不超过 {budget} MB，每 {every} 个绘制步骤保留一个。',
    'timeline.seed': '分支种子',
    'timeline.branch': '从这里分支',
    'timeline.branchClean': '这一帧已经是干净图像：请选择更早的一帧。',
    'timeline.running': '分支：第 {step} / {total} 步',
    'timeline.result': '从 t = {t} 用种子 {seed} 分支：与原始结果的平均差异为 {diff} / 255。',
    'timeline.original': '主生成过程的结果',
    'timeline.branched': '分支的结果',
    'timeline.scrubbed': '时间轴所在的帧',
  },
};

/** Memory the kept frames may use. */
const BUDGET_BYTES = 64 * 1024 * 1024;

/**
 * DDIM's eta for a branch when the main run used none: eta = 0 adds no fresh noise, so the
 * branch seed would change nothing; eta = 1 adds the noise of DDPM's posterior (Song et al.
 * 2021, eq. 16).
 */
const BRANCH_ETA = 1;

/** How a branch of the main run `run` continues with `seed`. */
function branchOptions(run, seed) {
  const options = {
    seed, sampler: run.sampler, steps: run.steps, clip: run.clip, variance: run.variance, spacing: run.spacing,
  };
  if (run.sampler === 'ddim') options.eta = run.eta > 0 ? run.eta : BRANCH_ETA;
  return options;
}

/**
 * The frames of one run, 8-bit. When the next frame would pass the budget, every other frame
 * is dropped and from then on only every `stride`-th frame offered is kept.
 */
export class FrameStore {
  constructor(budget = BUDGET_BYTES) {
    this.budget = budget;
    this.clear();
  }

  clear() {
    this.frames = [];
    this.stride = 1;
    this.offered = 0;
  }

  get bytes() {
    return this.frames.reduce((sum, frame) => sum + frame.x.bytes.length, 0);
  }

  /** Offers a frame `{step, total, level, x: Float32Array}`; keeps it unless thinned out. */
  offer({ step, total, level, x }) {
    const last = step === total;
    this.offered += 1;
    if ((this.offered - 1) % this.stride !== 0 && !last) return;
    if (this.bytes + x.length > this.budget) {
      this.frames = this.frames.filter((_, i) => i % 2 === 0);
      this.stride *= 2;
    }
    this.frames.push({ step, total, level, x: quantize(x) });
  }
}

/**
 * Mounts the view. `context`: `{tr, size(), generator() (a twin, or null), onChange()}`. The
 * page feeds `record(frame, settings)` with each drawn frame of the main run (raw values).
 */
export function mountTimeline(container, { tr, size, generator, onChange }) {
  container.innerHTML = `
    <p data-i18n="timeline.intro"></p>
    <p class="muted" data-i18n="timeline.etaNote"></p>
    <input type="range" min="0" max="0" value="0" class="wide" data-testid="timeline-slider" disabled>
    <p data-testid="timeline-label" class="muted" data-i18n="timeline.empty"></p>
    <div class="pair">
      <figure><canvas data-view-canvas data-testid="timeline-canvas"></canvas><figcaption data-i18n="timeline.scrubbed"></figcaption></figure>
      <figure><canvas data-view-canvas data-testid="timeline-original"></canvas><figcaption data-i18n="timeline.original"></figcaption></figure>
      <figure><canvas data-view-canvas data-testid="timeline-branch"></canvas><figcaption data-i18n="timeline.branched"></figcaption></figure>
    </div>
    <p class="row"><label><span data-i18n="timeline.seed"></span>
      <input type="number" min="0" step="1" value="1" data-testid="timeline-seed"></label>
      <button type="button" data-testid="timeline-branch-button" data-i18n="timeline.branch" disabled></button></p>
    <p data-testid="timeline-status" class="muted"></p>
    <p class="muted" data-testid="timeline-memory"></p>`;
  const $ = (id) => container.querySelector(`[data-testid=${id}]`);
  const ui = {
    slider: $('timeline-slider'), label: $('timeline-label'), canvas: $('timeline-canvas'),
    original: $('timeline-original'), branch: $('timeline-branch'), seed: $('timeline-seed'),
    button: $('timeline-branch-button'), status: $('timeline-status'), memory: $('timeline-memory'),
  };
  const store = new FrameStore();
  let run = null; // the main run's settings
  let branching = false;
  let pendingIndex = null;

  function batchOf(frame) {
    const side = size();
    return frame.x.bytes.length / (3 * side * side);
  }

  function showFrame() {
    const count = store.frames.length;
    if (!count) return;
    const index = Math.min(count - 1, Number(ui.slider.value) || 0);
    const frame = store.frames[index];
    drawValues(ui.canvas, dequantize(frame.x), { batch: batchOf(frame), size: size() });
    ui.label.removeAttribute('data-i18n');
    ui.label.textContent = tr('timeline.frame', {
      index: index + 1, count, step: frame.step, total: frame.total, t: frame.level,
    });
    ui.button.disabled = branching || frame.level === 0;
    const megabytes = (store.bytes / 1048576).toFixed(1);
    const skipped = store.stride === 1
      ? tr('timeline.keptAll')
      : tr('timeline.keptEvery', { every: store.stride, budget: BUDGET_BYTES / 1048576 });
    ui.memory.textContent = tr('timeline.kept', { count, megabytes, skipped });
  }

  async function branch() {
    const twin = generator();
    const frame = store.frames[Number(ui.slider.value) || 0];
    if (!twin || !frame || !run || branching) return;
    if (frame.level === 0) {
      ui.status.textContent = tr('timeline.branchClean');
      return;
    }
    const seed = seedFrom(ui.seed.value);
    branching = true;
    ui.button.disabled = true;
    try {
      await twin.startFrom(dequantize(frame.x), frame.level, branchOptions(run, seed));
      const last = await runToEnd(twin, {
        every: run.sampler === 'ddpm' ? 10 : 1,
        onFrame: (step) => {
          drawFrame(ui.branch, step);
          ui.status.textContent = tr('timeline.running', { step: step.step, total: step.total });
        },
      });
      const ending = store.frames.at(-1);
      drawValues(ui.original, dequantize(ending.x), { batch: batchOf(ending), size: size() });
      const original = ui.original.getContext('2d').getImageData(0, 0, ui.original.width, ui.original.height).data;
      const { mean, max } = pixelDifference(original, last.rgba);
      ui.status.textContent = tr('timeline.result', { t: frame.level, seed, diff: mean.toFixed(1) });
      ui.branch.dataset.diff = mean.toFixed(3);
      ui.branch.dataset.maxDiff = String(max);
    } finally {
      branching = false;
      showFrame();
    }
  }

  ui.slider.addEventListener('input', showFrame);
  ui.slider.addEventListener('change', onChange);
  ui.seed.addEventListener('change', onChange);
  ui.button.addEventListener('click', () => branch().catch((error) => {
    ui.status.textContent = String(error?.message ?? error);
  }));

  return {
    /** A new main run: forget the old frames. */
    reset(settings) {
      store.clear();
      run = settings;
      ui.slider.disabled = true;
      ui.seed.value = String(settings.seed + 1);
    },
    /** A drawn frame of the main run, with its raw values. */
    record(frame) {
      if (!frame.x) return;
      const following = Number(ui.slider.value) >= store.frames.length - 1;
      store.offer(frame);
      ui.slider.max = String(store.frames.length - 1);
      ui.slider.disabled = false;
      if (pendingIndex !== null && frame.step === frame.total) {
        ui.slider.value = String(Math.min(pendingIndex, store.frames.length - 1));
        pendingIndex = null;
      } else if (following) {
        ui.slider.value = ui.slider.max;
      }
      showFrame();
      if (frame.step === frame.total) {
        drawValues(ui.original, frame.x, { batch: frame.x.length / (3 * size() * size()), size: size() });
      }
    },
    getState: () => ({ frame: ui.slider.value, seed: ui.seed.value }),
    setState(saved) {
      // A run keeps at most T + 1 frames; the index is clamped to those kept once it ends.
      if (saved.frame !== undefined) pendingIndex = wholeNumberIn(saved.frame, { min: 0, max: MAX_TIMESTEPS, fallback: 0 });
      if (saved.seed !== undefined) ui.seed.value = String(seedFrom(saved.seed));
    },
    setLanguage: showFrame,
  };
}

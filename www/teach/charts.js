// Teaching mode: the noise schedules drawn as four small charts (β_t, ᾱ_t, the signal and
// noise weights √ᾱ_t and √(1−ᾱ_t), and the signal-to-noise ratio), the linear schedule of
// Ho et al. 2020 next to the cosine schedule of Nichol & Dhariwal 2021. A marker follows
// the current timestep t; a slider, or a click/drag on any chart, moves it.
//
// The schedule tables come from the wasm crate (0-based t = 0..T-1):
//   betas[t] = β_t, alphas[t] = α_t = 1 − β_t, alphaBars[t] = ᾱ_t = Π_{s≤t} α_s.
// x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε (Ho et al. 2020, eq. 4), so √ᾱ_t weighs the signal,
// √(1−ᾱ_t) the noise, and SNR(t) = ᾱ_t / (1−ᾱ_t) is the ratio of their variances.

import { fitCanvas } from './canvas.js';
import { el } from './dom.js';
import { fill } from './i18n.js';

/** Visible text of this module; every key exists in both languages. */
export const STRINGS = {
  en: {
    'charts.title': 'Noise schedules',
    'charts.linear': 'linear',
    'charts.cosine': 'cosine',
    'charts.beta.title': 'Noise added per step, β_t',
    'charts.alphaBar.title': 'Signal kept so far, ᾱ_t = α₁·α₂·…·α_t',
    'charts.weights.title': 'Signal weight √ᾱ_t (solid) and noise weight √(1−ᾱ_t) (dashed)',
    'charts.snr.title': 'Signal-to-noise ratio ᾱ_t / (1−ᾱ_t), log scale',
    'charts.beta.offScale': '{name} β_t: off the chart at the end, up to {v} ↗',
    'charts.axis.t': 't',
    'charts.slider': 'Timestep t',
    'charts.readout': '{name} · t = {t}: β = {beta}, ᾱ = {abar}, √ᾱ = {sab}, √(1−ᾱ) = {snab}, SNR = {snr}',
    'charts.hint': 'Click or drag on a chart to move t.',
  },
  zh: {
    'charts.title': '噪声调度',
    'charts.linear': '线性',
    'charts.cosine': '余弦',
    'charts.beta.title': '每一步加入的噪声 β_t',
    'charts.alphaBar.title': '累计保留的信号 ᾱ_t = α₁·α₂·…·α_t',
    'charts.weights.title': '信号权重 √ᾱ_t（实线）与噪声权重 √(1−ᾱ_t)（虚线）',
    'charts.snr.title': '信噪比 ᾱ_t / (1−ᾱ_t)（对数坐标）',
    'charts.beta.offScale': '{name} β_t：末尾冲出图表，最高 {v} ↗',
    'charts.axis.t': 't',
    'charts.slider': '时间步 t',
    'charts.readout': '{name}｜t = {t}：β = {beta}，ᾱ = {abar}，√ᾱ = {sab}，√(1−ᾱ) = {snab}，SNR = {snr}',
    'charts.hint': '在图上点击或拖动即可改变 t。',
  },
};

const SCHEDULES = ['linear', 'cosine'];
const MARGIN = { left: 46, right: 10, top: 10, bottom: 22 };
const ASPECT = 0.62; // chart height / width
const SNR_FLOOR_LOG10 = -10; // the cosine ᾱ_t reaches ~0 at the very end

/** Short, readable number: fixed decimals, or scientific notation when tiny/huge. */
function fmt(value, digits = 4) {
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  if (value !== 0 && (magnitude < 1e-3 || magnitude >= 1e5)) return value.toExponential(2);
  return value.toFixed(digits);
}

const SUPERSCRIPT = { '-': '⁻', 0: '⁰', 1: '¹', 2: '²', 3: '³', 4: '⁴', 5: '⁵', 6: '⁶', 7: '⁷', 8: '⁸', 9: '⁹' };
const powerOfTen = (k) => `10${String(k).replace(/./g, (c) => SUPERSCRIPT[c] ?? c)}`;

/** A "nice" step (1, 2, 2.5 or 5 × 10^k) giving about `count` intervals over [lo, hi]. */
function niceStep(lo, hi, count = 4) {
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
}

/** "Nice" tick values covering [lo, hi] (about `count` of them). */
function niceTicks(lo, hi, count = 4) {
  const step = niceStep(lo, hi, count);
  const ticks = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) ticks.push(+v.toPrecision(12));
  return ticks;
}

/** Rounds up to a value with one or two significant digits (for axis maxima). */
function niceCeil(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((m) => m * power).find((v) => v >= value * (1 - 1e-12));
}

const snrLog10 = (abar) => Math.max(SNR_FLOOR_LOG10, Math.log10(abar / (1 - abar)));

/**
 * The four charts: each has curves (value of a table at t; dashed or not), a y range
 * computed from the tables, and whether the axis is log10.
 */
function chartSpecs(tables) {
  const T = tables.linear.timesteps;
  // β: the cosine β_t shoots up to 0.999 in the last few steps, which would flatten every
  // other curve; scale the axis to the first 93% of the steps and mark the rest off-scale.
  let betaMax = 0;
  for (const name of SCHEDULES) {
    const betas = tables[name].betas;
    for (let t = 0; t < Math.floor(0.93 * T); t++) betaMax = Math.max(betaMax, betas[t]);
  }
  let snrMin = Infinity;
  let snrMax = -Infinity;
  for (const name of SCHEDULES) {
    for (const abar of tables[name].alphaBars) {
      const v = snrLog10(abar);
      snrMin = Math.min(snrMin, v);
      snrMax = Math.max(snrMax, v);
    }
  }
  return [
    { id: 'beta', curves: [{ value: (tb, t) => tb.betas[t] }], y: [0, niceCeil(betaMax * 1.05)], offScale: true },
    { id: 'alphaBar', curves: [{ value: (tb, t) => tb.alphaBars[t] }], y: [0, 1] },
    {
      id: 'weights',
      curves: [
        { value: (tb, t) => Math.sqrt(tb.alphaBars[t]) },
        { value: (tb, t) => Math.sqrt(1 - tb.alphaBars[t]), dashed: true },
      ],
      y: [0, 1],
    },
    { id: 'snr', curves: [{ value: (tb, t) => snrLog10(tb.alphaBars[t]) }], y: logRange(snrMin, snrMax), log: true },
  ];
}

/** A log10 axis range whose ends are whole-number ticks (powers of ten). */
function logRange(lo, hi) {
  const step = Math.max(1, Math.round(niceStep(lo, hi, 4)));
  return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step];
}

/** Reads the theme colours from CSS variables (with fallbacks). */
function themeColours(element) {
  const style = getComputedStyle(element);
  const get = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
  return {
    fg: get('--fg', '#1d1d1f'),
    muted: get('--muted', '#777'),
    accent: get('--accent', '#3a5bd9'),
    linear: get('--teach-linear', '#d9622b'),
    cosine: get('--teach-cosine', '#1f8a70'),
    font: `11px ${style.fontFamily || 'system-ui, sans-serif'}`,
  };
}

/** Draws one chart (axes, both schedules' curves, the marker at t). */
function drawChart(canvas, spec, tables, t, colours, tr) {
  const fit = fitCanvas(canvas, ASPECT);
  if (!fit) return;
  const { ctx, width, height } = fit;
  const T = tables.linear.timesteps;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const [y0, y1] = spec.y;
  const px = (step) => MARGIN.left + (step / (T - 1)) * plotW;
  const py = (v) => MARGIN.top + (1 - (v - y0) / (y1 - y0)) * plotH;

  ctx.clearRect(0, 0, width, height);
  ctx.font = colours.font;
  ctx.lineWidth = 1;

  // Grid and tick labels.
  const yTicks = spec.log ? niceTicks(y0, y1, 4).filter(Number.isInteger) : niceTicks(y0, y1, 4);
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const v of yTicks) {
    ctx.strokeStyle = colours.muted;
    ctx.globalAlpha = 0.25;
    ctx.beginPath();
    ctx.moveTo(MARGIN.left, Math.round(py(v)) + 0.5);
    ctx.lineTo(MARGIN.left + plotW, Math.round(py(v)) + 0.5);
    ctx.stroke();
    ctx.globalAlpha = 1;
    ctx.fillStyle = colours.muted;
    ctx.fillText(spec.log ? powerOfTen(v) : String(v), MARGIN.left - 5, py(v));
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  const xTicks = niceTicks(0, T - 1, 4);
  for (const step of xTicks) ctx.fillText(String(step), px(step), MARGIN.top + plotH + 5);
  ctx.textAlign = 'right';
  ctx.fillText(tr('charts.axis.t'), MARGIN.left + plotW, MARGIN.top + plotH + 5);

  ctx.strokeStyle = colours.muted;
  ctx.beginPath();
  ctx.moveTo(MARGIN.left + 0.5, MARGIN.top);
  ctx.lineTo(MARGIN.left + 0.5, MARGIN.top + plotH + 0.5);
  ctx.lineTo(MARGIN.left + plotW, MARGIN.top + plotH + 0.5);
  ctx.stroke();

  // Curves, clipped to the plot area.
  ctx.save();
  ctx.beginPath();
  ctx.rect(MARGIN.left, MARGIN.top - 1, plotW, plotH + 2);
  ctx.clip();
  ctx.lineWidth = 1.8;
  for (const name of SCHEDULES) {
    for (const curve of spec.curves) {
      ctx.strokeStyle = colours[name];
      ctx.setLineDash(curve.dashed ? [5, 4] : []);
      ctx.beginPath();
      for (let step = 0; step < T; step++) {
        const x = px(step);
        const y = py(curve.value(tables[name], step));
        if (step === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      }
      ctx.stroke();
    }
  }
  ctx.restore();
  ctx.setLineDash([]);

  if (spec.offScale) drawOffScaleNote(ctx, spec, tables, colours, tr, px(0) + 8, MARGIN.top, 0.8 * plotW);

  // Marker at t, with a dot where it crosses each curve.
  ctx.strokeStyle = colours.fg;
  ctx.globalAlpha = 0.6;
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(Math.round(px(t)) + 0.5, MARGIN.top);
  ctx.lineTo(Math.round(px(t)) + 0.5, MARGIN.top + plotH);
  ctx.stroke();
  ctx.globalAlpha = 1;
  for (const name of SCHEDULES) {
    for (const curve of spec.curves) {
      const v = curve.value(tables[name], t);
      if (v < y0 || v > y1) continue;
      ctx.fillStyle = colours[name];
      ctx.beginPath();
      ctx.arc(px(t), py(v), 3.2, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
}

/**
 * On the β chart: says which schedule leaves the axis range, and how high it goes. Drawn
 * at the top left, which stays empty because every β_t starts small.
 */
function drawOffScaleNote(ctx, spec, tables, colours, tr, left, top, maxWidth) {
  let row = 0;
  for (const name of SCHEDULES) {
    const max = Math.max(...tables[name].betas);
    if (max <= spec.y[1]) continue;
    ctx.fillStyle = colours[name];
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    const text = fill(tr('charts.beta.offScale'), { name: tr(`charts.${name}`), v: fmt(max, 3) });
    ctx.save();
    // Shrink the note on narrow charts so it stays clear of the steep end of the curve.
    const scale = Math.min(1, maxWidth / ctx.measureText(text).width);
    ctx.translate(left, top + 2 + 14 * row);
    ctx.scale(scale, scale);
    ctx.fillText(text, 0, 0);
    ctx.restore();
    row += 1;
  }
}

/**
 * Mounts the schedule charts into `container`.
 *
 * @param {HTMLElement} container
 * @param {object} options
 * @param {{linear: object, cosine: object}} options.tables schedule tables from the wasm crate
 *   ({kind, timesteps, betas, alphas, alphaBars, posteriorVariance}).
 * @param {(key: string) => string} options.tr translation function for the `charts.*` keys.
 * @param {(t: number) => void} [options.onTimestep] called when the user moves t
 *   (slider input, click or drag on a chart); not called by setTimestep.
 * @returns {{setTimestep(t: number): void, getTimestep(): number,
 *   setLanguage(tr?: (key: string) => string): void, destroy(): void, element: HTMLElement}}
 */
export function mountScheduleCharts(container, { tables, tr, onTimestep }) {
  let translate = tr;
  const T = tables.linear.timesteps;
  const specs = chartSpecs(tables);
  let t = Math.floor(T / 2);

  const root = el('div', { class: 'teach-toy teach-charts' });
  const legend = el('div', { class: 'teach-legend' });
  const grid = el('div', { class: 'teach-charts-grid' });
  const figures = specs.map((spec) => {
    const figure = el('figure', { class: 'teach-chart' });
    const caption = el('figcaption');
    const canvas = el('canvas', { 'data-view-canvas': spec.id, role: 'img' });
    figure.append(caption, canvas);
    grid.append(figure);
    attachPointer(canvas);
    return { spec, caption, canvas };
  });
  const sliderLabel = el('label', { class: 'teach-slider' });
  const sliderText = el('span');
  const slider = el('input', { type: 'range', min: '0', max: String(T - 1), step: '1', 'data-testid': 'charts-t' });
  sliderLabel.append(sliderText, slider);
  const readout = el('div', { class: 'teach-readout', 'aria-live': 'polite' });
  const hint = el('p', { class: 'teach-hint' });
  root.append(legend, grid, sliderLabel, readout, hint);
  container.append(root);

  slider.addEventListener('input', () => userSetTimestep(Number(slider.value)));

  /** Click or drag on a chart moves t to the step under the pointer. */
  function attachPointer(canvas) {
    const stepAt = (event) => {
      const box = canvas.getBoundingClientRect();
      const plotW = box.width - MARGIN.left - MARGIN.right;
      return Math.round(((event.clientX - box.left - MARGIN.left) / plotW) * (T - 1));
    };
    canvas.addEventListener('pointerdown', (event) => {
      if (event.button !== 0) return;
      canvas.setPointerCapture(event.pointerId);
      userSetTimestep(stepAt(event));
    });
    canvas.addEventListener('pointermove', (event) => {
      if (canvas.hasPointerCapture(event.pointerId)) userSetTimestep(stepAt(event));
    });
  }

  function userSetTimestep(step) {
    const before = t;
    setTimestep(step);
    if (t !== before && onTimestep) onTimestep(t);
  }

  function renderTexts() {
    legend.replaceChildren(
      ...SCHEDULES.map((name) => {
        const item = el('span', { class: `teach-legend-item teach-${name}` });
        item.append(el('span', { class: 'teach-swatch' }), document.createTextNode(translate(`charts.${name}`)));
        return item;
      }),
    );
    for (const { spec, caption, canvas } of figures) {
      caption.textContent = translate(`charts.${spec.id}.title`);
      canvas.setAttribute('aria-label', caption.textContent);
    }
    sliderText.textContent = translate('charts.slider');
    hint.textContent = translate('charts.hint');
    renderReadout();
  }

  function renderReadout() {
    readout.replaceChildren(
      ...SCHEDULES.map((name) => {
        const tb = tables[name];
        const abar = tb.alphaBars[t];
        const line = el('div', { class: `teach-readout-line teach-${name}` });
        line.append(el('span', { class: 'teach-swatch' }));
        line.append(
          fill(translate('charts.readout'), {
            name: translate(`charts.${name}`),
            t: t + 1, // the paper's numbering (1..T), as in the rest of the page
            beta: fmt(tb.betas[t]),
            abar: fmt(abar),
            sab: fmt(Math.sqrt(abar)),
            snab: fmt(Math.sqrt(1 - abar)),
            snr: fmt(abar / (1 - abar), 4),
          }),
        );
        return line;
      }),
    );
  }

  function draw() {
    const colours = themeColours(root);
    for (const { spec, canvas } of figures) drawChart(canvas, spec, tables, t, colours, translate);
  }

  /** Moves the marker to step `step` (clamped to 0..T-1); does not call onTimestep. */
  function setTimestep(step) {
    const next = Math.min(T - 1, Math.max(0, Math.round(Number(step) || 0)));
    t = next;
    slider.value = String(t);
    renderReadout();
    draw();
  }

  const resizeObserver = new ResizeObserver(() => draw());
  resizeObserver.observe(grid);
  const darkQuery = window.matchMedia?.('(prefers-color-scheme: dark)');
  darkQuery?.addEventListener?.('change', draw);

  renderTexts();
  setTimestep(t);

  return {
    setTimestep,
    getTimestep: () => t,
    /** Re-renders every text with `tr` (or with a new translation function, if given). */
    setLanguage(newTr) {
      if (typeof newTr === 'function') translate = newTr;
      renderTexts();
      draw();
    },
    /** Stops observing size/theme changes and removes the element. */
    destroy() {
      resizeObserver.disconnect();
      darkQuery?.removeEventListener?.('change', draw);
      root.remove();
    },
    element: root,
  };
}

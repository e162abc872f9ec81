// Teaching mode: the lesson (English / Chinese) and the live views it links to, each driven by
// the real model and schedule. Which view is open, and its parameters, live in the URL hash
// next to the run's share parameters (`view=forward&forward.t=500`), so a link restores them.

import { wholeNumberIn } from '../params.js';
import { scheduleTable } from '../pkg/ddpm_avatars.js';
import { mountAnatomy, STRINGS as ANATOMY } from './anatomy.js';
import { mountScheduleCharts, STRINGS as CHARTS } from './charts.js';
import { mountClipping, STRINGS as CLIPPING } from './clipping.js';
import { mountForward, STRINGS as FORWARD } from './forward.js';
import { LANGUAGE_EVENT, applyTranslations, registerStrings, tr } from './i18n.js';
import { mountInterpolate, STRINGS as INTERPOLATE } from './interpolate.js';
import { renderLesson, STRINGS as LESSON, VIEWS } from './lesson.js';
import { mountTimeline, STRINGS as TIMELINE } from './timeline.js';
import { mountTwoPixel, STRINGS as TWO_PIXEL } from './twopixel.js';

for (const strings of [ANATOMY, CHARTS, CLIPPING, FORWARD, INTERPOLATE, LESSON, TIMELINE, TWO_PIXEL]) {
  registerStrings(strings);
}

const teach = {
  generator: null, // the page's Generator (null until weights load)
  settings: () => null, // the main controls' settings
  views: {}, // mounted view handles by name
  twins: {}, // one twin Generator per view
  open: null,
  panels: {},
  tabs: {},
  tables: null,
};

/** The twin Generator a view drives (same weights, its own run), made on first use. */
function twinFor(view) {
  if (!teach.generator) return null;
  teach.twins[view] ??= teach.generator.twin();
  return teach.twins[view];
}

function scheduleInUse() {
  return teach.generator ? teach.generator.scheduleTable() : teach.tables.linear;
}

function modelSize() {
  return teach.generator ? teach.generator.imageSize : 64;
}

/** Builds each view on first open. */
function mountView(name) {
  if (teach.views[name]) return teach.views[name];
  const container = teach.panels[name].querySelector('.teach-body');
  const onChange = () => saveHash();
  const context = {
    tr, onChange, size: modelSize, table: scheduleInUse, settings: () => teach.settings(),
    generator: () => twinFor(name),
  };
  const mounts = {
    anatomy: () => mountAnatomy(container, context),
    schedule: () => {
      const charts = mountScheduleCharts(container, { tables: teach.tables, tr, onTimestep: onChange });
      const last = teach.tables.linear.timesteps - 1;
      return {
        getState: () => ({ t: charts.getTimestep() }),
        setState: (state) => charts.setTimestep(wholeNumberIn(state.t, { min: 0, max: last, fallback: charts.getTimestep() })),
        setLanguage: () => charts.setLanguage(),
      };
    },
    forward: () => mountForward(container, context),
    scrub: () => mountTimeline(container, context),
    interpolate: () => mountInterpolate(container, context),
    twopixel: () => {
      const world = mountTwoPixel(container, { schedule: teach.tables.linear, tr, onChange });
      const last = teach.tables.linear.timesteps - 1;
      return {
        getState: () => world.getState(),
        setState: (state) => world.setState({ ...state, t: wholeNumberIn(state.t, { min: 0, max: last, fallback: undefined }) }),
        setLanguage: () => world.setLanguage(),
      };
    },
    clipping: () => mountClipping(container, { tr, onChange, makeTwin: () => teach.generator?.twin() ?? null }),
  };
  // The charts and the two-pixel world draw smooth pictures; the other views draw pixels.
  if (name === 'schedule' || name === 'twopixel') container.classList.add('teach-toy');
  teach.views[name] = mounts[name]();
  applyTranslations(container);
  return teach.views[name];
}

/** Opens a view (closing the others); `save` records it in the hash. */
export function openView(name, { save = true, scroll = true } = {}) {
  if (!VIEWS.includes(name)) return;
  teach.open = name;
  for (const view of VIEWS) {
    teach.panels[view].hidden = view !== name;
    teach.tabs[view].setAttribute('aria-selected', String(view === name));
    teach.tabs[view].tabIndex = view === name ? 0 : -1;
  }
  const handle = mountView(name);
  handle.refresh?.();
  document.body.dataset.teachView = name;
  if (save) saveHash();
  if (scroll) teach.panels[name].scrollIntoView({ block: 'nearest' });
}

/** Every hash parameter teaching mode owns: `view` and `<view>.<key>` of the open view. */
export function teachingParams() {
  const params = {};
  if (!teach.open) return params;
  params.view = teach.open;
  const state = teach.views[teach.open]?.getState() ?? {};
  for (const [key, value] of Object.entries(state)) {
    params[`${teach.open}.${key}`] = Array.isArray(value) ? value.map((p) => p.join(',')).join(';') : String(value);
  }
  return params;
}

function isTeachingKey(key) {
  return key === 'view' || VIEWS.some((view) => key.startsWith(`${view}.`));
}

/** Writes the teaching parameters into the hash, keeping the run's share parameters. */
function saveHash() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  for (const key of [...params.keys()]) if (isTeachingKey(key)) params.delete(key);
  for (const [key, value] of Object.entries(teachingParams())) params.set(key, value);
  history.replaceState(null, '', `#${params}`);
}

/** Opens the view named in the hash and restores its parameters. */
export function restoreTeaching(hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const view = params.get('view');
  if (!VIEWS.includes(view)) return false;
  const state = {};
  for (const [key, value] of params) {
    if (!key.startsWith(`${view}.`)) continue;
    const name = key.slice(view.length + 1);
    state[name] = name === 'blobs'
      ? value.split(';').map((pair) => pair.split(',').map(Number))
      : value;
  }
  mountView(view).setState(state);
  openView(view, { save: false, scroll: true });
  return true;
}

// ---------- hooks for the main run (main.js) ----------

/** What the main loop should read back at a step: raw values for the timeline, a focus image. */
export function stepRequest(draw) {
  if (!draw) return { raw: false, focus: undefined };
  const anatomy = teach.open === 'anatomy' ? teach.views.anatomy : null;
  return { raw: Boolean(teach.views.scrub), focus: anatomy ? anatomy.focusIndex() : undefined };
}

/** A main run started with `settings`; `preview` is its x_T frame (with raw values). */
export function runStarted(settings, preview) {
  teach.views.anatomy?.reset(settings.batch);
  teach.views.scrub?.reset(settings);
  teach.views.scrub?.record(preview);
}

/** A drawn frame of the main run. */
export function runStepped(frame, settings) {
  if (frame.focus) teach.views.anatomy?.show(frame, settings, modelSize());
  teach.views.scrub?.record(frame);
}

/** The page's Generator is ready (or replaced). */
export function setGenerator(generator, settings) {
  teach.generator = generator;
  teach.settings = settings;
  teach.twins = {};
  teach.views.clipping?.forget();
  if (teach.open) teach.views[teach.open]?.refresh?.();
}

/**
 * Builds the teaching section inside `root`: the lesson, the tabs and
 * the view panels. Views that need no weights (schedule charts, two-pixel world, the forward
 * jump) work at once.
 */
export function mountTeaching(root) {
  teach.tables = { linear: scheduleTable('linear', 1000), cosine: scheduleTable('cosine', 1000) };
  const tabs = root.querySelector('[role=tablist]');
  const panels = root.querySelector('.teach-panels');
  for (const view of VIEWS) {
    const tab = document.createElement('button');
    Object.assign(tab, { type: 'button', id: `tab-${view}` });
    tab.setAttribute('role', 'tab');
    tab.dataset.view = view;
    tab.dataset.i18n = `teach.view.${view}`;
    tab.setAttribute('aria-controls', `panel-${view}`);
    tab.addEventListener('click', () => openView(view));
    tabs.append(tab);
    teach.tabs[view] = tab;
    const panel = document.createElement('section');
    Object.assign(panel, { id: `panel-${view}`, hidden: true });
    panel.setAttribute('role', 'tabpanel');
    panel.setAttribute('aria-labelledby', `tab-${view}`);
    panel.dataset.viewPanel = view;
    panel.innerHTML = `<h3 data-i18n="teach.view.${view}"></h3><div class="teach-body"></div>`;
    panels.append(panel);
    teach.panels[view] = panel;
  }
  tabs.addEventListener('keydown', (event) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    const next = VIEWS[(VIEWS.indexOf(teach.open ?? VIEWS[0]) + step + VIEWS.length) % VIEWS.length];
    openView(next);
    teach.tabs[next].focus();
  });
  renderLesson(root.querySelector('.lesson-container'), { tr, onOpenView: (view) => openView(view) });
  window.addEventListener(LANGUAGE_EVENT, () => {
    for (const handle of Object.values(teach.views)) handle.setLanguage?.();
  });
  applyTranslations(root);
}

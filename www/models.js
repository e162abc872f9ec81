// The published weights files and which one the page loads: the small, CPU-sized model
// (`UNetConfig::small()`, trained on a CPU and committed) and the full-size one (trained on a
// GPU; it may not exist). A file the server does not have is not offered. A share link names
// the file it used (`model=small|full` in the hash), so opening it later loads the same one.

import { tr } from './teach/i18n.js';

/**
 * The published weights files, smallest first: on the CPU the page loads the first one the
 * server has, on WebGPU the last. `label` is the key of the select's text (www/strings.js).
 */
export const MODELS = Object.freeze([
  Object.freeze({ id: 'small', url: 'www/weights/avatars-64-small.safetensors', label: 'ui.modelSmall' }),
  Object.freeze({ id: 'full', url: 'www/weights/avatars-64.safetensors', label: 'ui.modelFull' }),
]);

/** The hash parameter of a share link that names the model. */
const PARAM = 'model';

/** The model whose file is at `url` (as MODELS spells it), or undefined. */
export function modelAt(url) {
  return MODELS.find((model) => model.url === url);
}

/**
 * The models whose files the server has, in MODELS order: one HEAD request each, all at once.
 * Only a definite "not there" (404, 410) leaves a model out. A network failure (offline) or a
 * server that refuses HEAD keeps it: the Cache API may still hold the file, and otherwise
 * loading it says what is wrong, in the words the page uses for every weights file.
 */
export async function availableModels() {
  const present = await Promise.all(MODELS.map(async (model) => {
    try {
      const head = await fetch(new URL(model.url, document.baseURI), { method: 'HEAD', cache: 'no-cache' });
      return head.status !== 404 && head.status !== 410;
    } catch {
      return true;
    }
  }));
  return MODELS.filter((_, index) => present[index]);
}

/** The model id a share link names (`#…&model=full`), or '' when it names none we know. */
export function modelFromHash(hash) {
  const id = new URLSearchParams(hash.replace(/^#/, '')).get(PARAM);
  return MODELS.some((model) => model.id === id) ? id : '';
}

/**
 * Which of `available` to load: the one the share link in `hash` names, when the server has
 * it; else on WebGPU the largest, on the CPU the smallest (its steps are ~7x cheaper).
 * undefined when `available` is empty.
 */
export function chooseModel(available, { hash, webgpu }) {
  const named = available.find((model) => model.id === modelFromHash(hash));
  if (named) return named;
  return webgpu ? available.at(-1) : available[0];
}

/** The share-link parameters that name `model`; {} for a file given by `?weights=URL`. */
export function modelParams(model) {
  return model ? { [PARAM]: model.id } : {};
}

/**
 * The page's address after picking `model`: `?weights=` dropped, the hash naming the model and
 * keeping `extra` (the open teaching view), but not the run: a run restored from the hash would
 * start at once on the other weights and warn that its link was made with different ones.
 */
export function addressForModel(model, extra = {}) {
  const search = new URLSearchParams(location.search);
  search.delete('weights');
  const query = search.toString();
  const hash = new URLSearchParams({ ...extra, ...modelParams(model) });
  return `${location.pathname}${query ? `?${query}` : ''}#${hash}`;
}

/**
 * Fills `select` with the `available` models and selects `current`; shows `row` only when
 * there is a choice: two files or more, and one of them is loaded (not a `?weights=` file).
 * Each option carries `data-i18n`, so a language switch retranslates it.
 */
export function showModelChoice(select, row, available, current) {
  select.replaceChildren(...available.map((model) => {
    const option = new Option(tr(model.label), model.id, false, model === current);
    option.dataset.i18n = model.label;
    return option;
  }));
  row.hidden = !current || available.length < 2;
}

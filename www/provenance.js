// How a weights file was made, in words, from the `training` part of its metadata
// (src/weights.rs `TrainingInfo`): "12,000 steps, 384K images, 3.4 CPU-hours, 2 parent files
// (0011aabbccdd → ab12cd34ef56)". The file is data from outside: every field is checked, and
// one that is missing or not what it should be is left out, never shown as "undefined".

import { currentLanguage, tr } from './teach/i18n.js';

/** Parent hashes shown in full; a longer lineage shows its first and last only. */
const MAX_PARENTS_SHOWN = 4;

const LOCALES = { en: 'en', zh: 'zh-CN' };

/** `value` when it is a finite number >= 0, else null. */
function count(value) {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : null;
}

/**
 * The files this one descends from, oldest first: `parents` (the whole lineage, newer files),
 * else the one `parent` (older files); only short hex hashes.
 */
export function lineage(training) {
  const isHash = (value) => typeof value === 'string' && /^[0-9a-f]{1,64}$/.test(value);
  const parents = Array.isArray(training?.parents) ? training.parents.filter(isHash) : [];
  if (parents.length) return parents;
  return isHash(training?.parent) ? [training.parent] : [];
}

/** "a → b → c", or "a → … → z" when the lineage is longer than MAX_PARENTS_SHOWN. */
function chain(hashes) {
  const shown = hashes.length > MAX_PARENTS_SHOWN ? [hashes[0], '…', hashes.at(-1)] : hashes;
  return shown.join(' → ');
}

/**
 * The training metadata in words, in the page's language: steps, images seen (compact: 384K,
 * or 38万 in Chinese), CPU-hours (left out when 0 or absent: GPU runs and older files) and
 * the parent files. '' when the metadata holds none of them.
 */
export function trainingSummary(training) {
  const locale = LOCALES[currentLanguage()] ?? 'en';
  const whole = new Intl.NumberFormat(locale);
  const compact = new Intl.NumberFormat(locale, { notation: 'compact', maximumFractionDigits: 1 });
  const parts = [];
  const steps = count(training?.steps);
  if (steps !== null) parts.push(tr('ui.provSteps', { steps: whole.format(steps) }));
  const images = count(training?.images_seen);
  if (images) parts.push(tr('ui.provImages', { images: compact.format(images) }));
  const hours = count(training?.cpu_hours);
  if (hours) parts.push(tr('ui.provCpuHours', { hours: formatHours(hours, locale) }));
  const parents = lineage(training);
  if (parents.length) {
    const key = parents.length === 1 ? 'ui.provParent' : 'ui.provParents';
    parts.push(tr(key, { n: parents.length, chain: chain(parents) }));
  }
  return parts.join(tr('ui.provSeparator'));
}

/** Hours with one decimal at most ("3.4", "12"); "< 0.1" for a few minutes. */
function formatHours(hours, locale) {
  if (hours < 0.05) return '< 0.1';
  return new Intl.NumberFormat(locale, { maximumFractionDigits: 1 }).format(hours);
}

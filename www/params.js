// Reading numbers and choices that come from outside (the URL hash of a share link, an input
// box): every value is brought into its valid range, and junk falls back to a default, so no
// link can make the page build a billion elements or hand the model a seed it refuses.

/** Largest seed: JavaScript numbers are whole and exact up to 2^53 - 1 (src/web.rs agrees). */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

/** The batch sizes the page offers (square grids). */
export const BATCH_CHOICES = [1, 4, 9, 16];

/** Largest batch, so largest avatar index + 1. */
export const MAX_BATCH = Math.max(...BATCH_CHOICES);

/** Upper bound on T that any weights file may declare (src/schedule.rs `validate`). */
export const MAX_TIMESTEPS = 100_000;

/** `value` as a finite number, or NaN for junk (empty text, words, Infinity). */
function finiteNumber(value) {
  if (typeof value === 'string' && value.trim() === '') return NaN;
  const number = typeof value === 'number' || typeof value === 'string' ? Number(value) : NaN;
  return Number.isFinite(number) ? number : NaN;
}

/**
 * A whole number from `value`, rounded down and clamped to `[min, max]`; `fallback` when
 * `value` is no finite number at all.
 */
export function wholeNumberIn(value, { min, max, fallback }) {
  const number = finiteNumber(value);
  if (Number.isNaN(number)) return fallback;
  return Math.min(max, Math.max(min, Math.floor(number)));
}

/** A seed (0 ..= 2^53 - 1) from `value`; `fallback` for junk. */
export function seedFrom(value, fallback = 0) {
  return wholeNumberIn(value, { min: 0, max: MAX_SEED, fallback });
}

/** `value` when it is one of `choices` (compared as text), else `fallback`. */
export function oneOf(value, choices, fallback) {
  const found = choices.find((choice) => String(choice) === String(value));
  return found === undefined ? fallback : found;
}

/** DDPM's two choices of sigma_t^2 (src/sampler.rs `DdpmVariance`), the default first. */
export const VARIANCES = ['posterior', 'beta'];

/** DDIM's two timestep spacings (src/sampler.rs `TimestepSpacing`), the default first. */
export const SPACINGS = ['leading', 'trailing'];

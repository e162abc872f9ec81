// The share link: the URL hash carries everything that determines the avatars.

import { BATCH_CHOICES, SPACINGS, VARIANCES, oneOf, seedFrom, wholeNumberIn } from './params.js';

/**
 * Settings -> `#seed=..&batch=..&sampler=..&steps=..&clip=..&variance|spacing=..&w=..`,
 * then the `extra` parameters: which published weights file (`model=small|full`, see
 * www/models.js; a `?weights=URL` file is named by the query instead), the open teaching view
 * and its state.
 */
export function encodeShare(settings, weightsHash, extra = {}) {
  const params = new URLSearchParams({
    seed: String(settings.seed),
    batch: String(settings.batch),
    sampler: settings.sampler,
    steps: String(settings.steps),
    clip: settings.clip ? '1' : '0',
    // Only the sampler's own option, so links to DDPM stay as short as before.
    ...(settings.sampler === 'ddpm' ? { variance: settings.variance } : { spacing: settings.spacing }),
    w: weightsHash,
    ...extra,
  });
  return `#${params}`;
}

/**
 * The hash -> settings, or null when it holds no run. Every value is brought into its range
 * (steps into 1 ..= `maxSteps`, the weights' T); junk gives the control's default.
 */
export function decodeShare(hash, { maxSteps = 1000 } = {}) {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  if (!params.has('seed')) return null;
  const weightsHash = params.get('w') ?? '';
  return {
    seed: seedFrom(params.get('seed')),
    batch: oneOf(params.get('batch'), BATCH_CHOICES, 4),
    sampler: oneOf(params.get('sampler'), ['ddpm', 'ddim'], 'ddpm'),
    steps: wholeNumberIn(params.get('steps'), { min: 1, max: maxSteps, fallback: 50 }),
    clip: params.get('clip') !== '0',
    variance: oneOf(params.get('variance'), VARIANCES, VARIANCES[0]),
    spacing: oneOf(params.get('spacing'), SPACINGS, SPACINGS[0]),
    // The short SHA-256 the page shows (12 hex digits); anything else is no hash.
    weightsHash: /^[0-9a-f]{1,64}$/.test(weightsHash) ? weightsHash : '',
  };
}

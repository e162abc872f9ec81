// The share link: the URL hash carries everything that determines the avatars.

/**
 * Settings -> `#seed=..&batch=..&sampler=..&steps=..&clip=..&w=..`, then the `extra`
 * parameters (the open teaching view and its state).
 */
export function encodeShare(settings, weightsHash, extra = {}) {
  const params = new URLSearchParams({
    seed: String(settings.seed),
    batch: String(settings.batch),
    sampler: settings.sampler,
    steps: String(settings.steps),
    clip: settings.clip ? '1' : '0',
    w: weightsHash,
    ...extra,
  });
  return `#${params}`;
}

/** The hash -> settings, or null when it holds no run. Invalid values are dropped. */
export function decodeShare(hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  if (!params.has('seed')) return null;
  const seed = Number(params.get('seed'));
  const batch = Number(params.get('batch'));
  const steps = Number(params.get('steps'));
  const sampler = params.get('sampler');
  return {
    seed: Number.isSafeInteger(seed) && seed >= 0 ? seed : 0,
    batch: [1, 4, 9, 16].includes(batch) ? batch : 4,
    sampler: sampler === 'ddim' ? 'ddim' : 'ddpm',
    steps: Number.isInteger(steps) && steps >= 1 && steps <= 1000 ? steps : 50,
    clip: params.get('clip') !== '0',
    weightsHash: params.get('w') || '',
  };
}

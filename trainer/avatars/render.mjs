// Renders the built-in avatar training set: `node render.mjs --count N --out DIR`.
//
// Image n (n = 0..N-1) is the DiceBear style STYLES[n % STYLES.length] with the seed string
// String(n) and a solid background picked by DiceBear's seeded PRNG from PASTEL_BACKGROUNDS,
// rasterized by resvg straight to 64x64 and written to DIR/avatar-<n, 6 digits>.png.
// The same N, script and package versions give byte-identical files.
//
// DIR/LICENSE.md is generated from each style's `meta` (creator, source, licence) and
// DIR/manifest.json is written last: when it matches this run (count, styles, versions, the
// sha256 of this script) and every file exists, the run is skipped. Progress goes to stderr; the
// last stdout line is a JSON summary {"count", "styles" (those used), "skipped"} read by `trainer data avatars`,
// which runs `npm ci` in this folder first when node_modules is missing or older than the lockfile.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import * as collection from '@dicebear/collection';
import { createAvatar, license } from '@dicebear/core';
import { Resvg } from '@resvg/resvg-js';

/** Styles in the order image n cycles through them: [file-system name, @dicebear/collection export]. */
const STYLES = [
  ['lorelei', 'lorelei'],
  ['adventurer', 'adventurer'],
  ['notionists', 'notionists'],
  ['big-smile', 'bigSmile'],
  ['micah', 'micah'],
  ['personas', 'personas'],
];

/** Solid pastel backgrounds (hex without '#', as DiceBear's `backgroundColor` option wants). */
const PASTEL_BACKGROUNDS = [
  'b6e3f4', 'c0aede', 'd1d4f9', 'ffd5dc', 'ffdfbf', 'fde2a7',
  'c7f0d8', 'bde0c2', 'f9d6ec', 'e2ece9', 'fff1c1', 'cde7f0',
];

/** Output side length in pixels. */
const SIZE = 64;

/** Licences the training set may contain; anything else stops the run. */
const ALLOWED_LICENSES = ['CC0 1.0', 'CC BY 4.0'];

/** Packages whose exact versions determine the pixels (recorded in the manifest). */
const PINNED_PACKAGES = ['@dicebear/core', '@dicebear/collection', '@resvg/resvg-js'];

const PROGRESS_EVERY = 1000;

function fail(message) {
  process.stderr.write(`render.mjs: ${message}\n`);
  process.exit(1);
}

function parseCommandLine() {
  let values;
  try {
    ({ values } = parseArgs({
      options: { count: { type: 'string' }, out: { type: 'string' } },
      strict: true,
    }));
  } catch (error) {
    fail(`${error.message}\nusage: node render.mjs --count N --out DIR`);
  }
  if (values.count === undefined || values.out === undefined) {
    fail('usage: node render.mjs --count N --out DIR');
  }
  if (!/^[0-9]+$/.test(values.count) || Number(values.count) < 1) {
    fail(`--count must be a positive integer, got "${values.count}"`);
  }
  const count = Number(values.count);
  if (!Number.isSafeInteger(count)) fail(`--count is too large: ${values.count}`);
  return { count, out: path.resolve(values.out) };
}

function installedVersion(name) {
  const file = new URL(`./node_modules/${name}/package.json`, import.meta.url);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')).version;
  } catch (error) {
    fail(`cannot read the version of ${name} (${error.message}); run \`npm ci\` in this folder`);
  }
}

function styleOf(exportName) {
  const style = collection[exportName];
  if (!style || typeof style.create !== 'function') {
    fail(`@dicebear/collection has no style export "${exportName}"`);
  }
  const meta = style.meta ?? {};
  if (!meta.creator || !meta.license?.name) {
    fail(`style "${exportName}" has no creator or licence in its meta`);
  }
  if (!ALLOWED_LICENSES.includes(meta.license.name)) {
    fail(`style "${exportName}" is licensed "${meta.license.name}", not one of ${ALLOWED_LICENSES.join(', ')}`);
  }
  return style;
}

function fileName(n) {
  return `avatar-${String(n).padStart(6, '0')}.png`;
}

/** Writes through a temporary file and a rename, so a killed run never leaves a torn file. */
function writeAtomically(file, bytes) {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  fs.writeFileSync(temporary, bytes);
  fs.renameSync(temporary, file);
}

function renderPng(style, n) {
  const svg = createAvatar(style, {
    seed: String(n),
    backgroundColor: PASTEL_BACKGROUNDS,
    backgroundType: ['solid'],
  }).toString();
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'width', value: SIZE },
    font: { loadSystemFonts: false },
  });
  return resvg.render().asPng();
}

function licenseMarkdown(styles, versions) {
  const lines = [
    '# Licence of the built-in avatar dataset',
    '',
    // One summary line first: the trainer copies it into the weights' metadata.
    `Licence: ${styles.map(([name, style]) => `${name} ${style.meta.license.name} by ${style.meta.creator}`).join('; ')}.`,
    '',
    `These ${SIZE}x${SIZE} images were rendered by \`trainer data avatars\` (trainer/avatars/render.mjs)`,
    `with DiceBear (@dicebear/core ${versions['@dicebear/core']}, @dicebear/collection`,
    `${versions['@dicebear/collection']}, MIT licence) and resvg (@resvg/resvg-js`,
    `${versions['@resvg/resvg-js']}, MPL-2.0). The artwork belongs to the creators of each style:`,
    '',
  ];
  for (const [name, style] of styles) {
    const { title, creator, source, homepage, license: styleLicense } = style.meta;
    lines.push(`## ${name}`, '');
    lines.push(`- Design: ${title ?? name}${source ? ` (${source})` : ''}`);
    lines.push(`- Creator: ${creator}${homepage ? ` (${homepage})` : ''}`);
    lines.push(`- Licence: ${styleLicense.name}${styleLicense.url ? ` (${styleLicense.url})` : ''}`);
    lines.push(`- Attribution: ${license.text(style)}`);
    lines.push('');
  }
  return lines.join('\n');
}

/** Removes avatar files this run does not produce (left over from a larger count). */
function removeStaleFiles(out, count) {
  for (const entry of fs.readdirSync(out)) {
    const match = /^\.?avatar-([0-9]+)\.png(\.tmp)?$/.exec(entry);
    if (match && (match[2] || Number(match[1]) >= count || entry !== fileName(Number(match[1])))) {
      fs.rmSync(path.join(out, entry), { force: true });
    }
  }
}

function main() {
  const { count, out } = parseCommandLine();
  const styles = STYLES.map(([name, exportName]) => [name, styleOf(exportName)]);
  const versions = Object.fromEntries(PINNED_PACKAGES.map((name) => [name, installedVersion(name)]));
  const scriptSha256 = createHash('sha256')
    .update(fs.readFileSync(new URL(import.meta.url)))
    .digest('hex');
  const manifest = {
    count,
    size: SIZE,
    files: 'avatar-<n padded to 6 digits>.png, n = 0..count-1',
    styles: STYLES.map(([name]) => name),
    style_of_image: 'styles[n % styles.length], seed String(n)',
    backgrounds: PASTEL_BACKGROUNDS,
    versions,
    script_sha256: scriptSha256,
  };
  const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
  const manifestFile = path.join(out, 'manifest.json');

  fs.mkdirSync(out, { recursive: true });
  let previous = null;
  try {
    previous = fs.readFileSync(manifestFile, 'utf8');
  } catch {
    // No manifest: a fresh or interrupted run.
  }
  const complete = previous === manifestText
    && fs.existsSync(path.join(out, 'LICENSE.md'))
    && Array.from({ length: count }, (_, n) => n).every((n) => fs.existsSync(path.join(out, fileName(n))));
  const stylesUsed = manifest.styles.slice(0, Math.min(count, manifest.styles.length));
  const summary = (skipped) => `${JSON.stringify({ count, styles: stylesUsed, skipped })}\n`;
  if (complete) {
    process.stderr.write(`${out} already holds these ${count} avatars (manifest.json matches); skipping\n`);
    process.stdout.write(summary(true));
    return;
  }

  // The manifest goes first out and last in, so it only ever describes a complete set.
  fs.rmSync(manifestFile, { force: true });
  removeStaleFiles(out, count);
  const started = process.hrtime.bigint();
  for (let n = 0; n < count; n += 1) {
    const [, style] = styles[n % styles.length];
    writeAtomically(path.join(out, fileName(n)), renderPng(style, n));
    if ((n + 1) % PROGRESS_EVERY === 0 || n + 1 === count) {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      process.stderr.write(`rendered ${n + 1}/${count} avatars (${seconds.toFixed(1)} s)\n`);
    }
  }
  writeAtomically(path.join(out, 'LICENSE.md'), licenseMarkdown(styles, versions));
  writeAtomically(manifestFile, manifestText);
  process.stdout.write(summary(false));
}

main();

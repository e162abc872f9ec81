// The page's language layer: English and Simplified Chinese.
//
// Modules export `STRINGS = { en: { key: text }, zh: { key: text } }` and register them with
// `registerStrings`. Markup names its text by key: `data-i18n` (textContent), `data-i18n-html`
// (innerHTML, only for strings this project writes), `data-i18n-title`, `data-i18n-aria-label`,
// `data-i18n-placeholder` (attributes), with optional `data-i18n-params='{"name": value}'` for
// `{name}` placeholders. `data-tex` elements are typeset once with KaTeX as MathML (no KaTeX CSS
// or fonts needed: the browser draws MathML itself); `data-display="block"` for display math.

import katex from '../node_modules/katex/dist/katex.mjs';

/** The languages the page speaks. */
export const LANGUAGES = Object.freeze(['en', 'zh']);

/** localStorage key of the chosen language. */
export const STORAGE_KEY = 'ddpm-avatars-lang';

/** Window event dispatched by `setLanguage`, `detail: { lang }`. */
export const LANGUAGE_EVENT = 'ddpm:language';

const HTML_LANG = { en: 'en', zh: 'zh-CN' };

/** Strings of this module (the toggle's tooltip). */
export const STRINGS = {
  en: {
    'i18n.toggle.title': 'Show this page in Chinese',
  },
  zh: {
    'i18n.toggle.title': '用英文显示本页',
  },
};

const table = { en: {}, zh: {} };
const missing = new Set();
let chosen = null; // set by setLanguage / initLanguage; wins over detection afterwards

registerStrings(STRINGS);

function normalize(lang) {
  if (typeof lang !== 'string') return null;
  const l = lang.trim().toLowerCase();
  if (l === 'zh' || l.startsWith('zh-') || l.startsWith('zh_')) return 'zh';
  if (l === 'en' || l.startsWith('en-') || l.startsWith('en_')) return 'en';
  return null;
}

function storage() {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null; // e.g. storage disabled for file:// or by privacy settings
  }
}

function urlLanguage() {
  if (typeof location === 'undefined') return null;
  try {
    return normalize(new URLSearchParams(location.search).get('lang'));
  } catch {
    return null;
  }
}

/**
 * The page's language, 'en' or 'zh'. Once `setLanguage` (or `initLanguage`) ran, the language
 * it set; before that: `?lang=zh|en` in the URL, then localStorage `ddpm-avatars-lang`, then
 * `navigator.language` (zh… → 'zh'), else 'en'.
 */
export function currentLanguage() {
  if (chosen) return chosen;
  const fromUrl = urlLanguage();
  if (fromUrl) return fromUrl;
  const stored = normalize(storage()?.getItem(STORAGE_KEY) ?? null);
  if (stored) return stored;
  const nav = typeof navigator === 'undefined' ? '' : String(navigator.language || '');
  return nav.toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

/**
 * Applies the detected language without storing it: sets `<html lang>` and translates the
 * document. Call once at start-up after registering every module's STRINGS. Returns the language.
 */
export function initLanguage() {
  chosen = currentLanguage();
  if (typeof document !== 'undefined') {
    document.documentElement.lang = HTML_LANG[chosen];
    applyTranslations(document);
  }
  return chosen;
}

/**
 * Switches the page to `lang` ('en' or 'zh'): stores it, sets `<html lang>`, re-translates the
 * document and dispatches `ddpm:language` on window. A `?lang=` already in the URL is updated
 * (history.replaceState; the hash, which holds the share link, is kept) so a reload agrees.
 */
export function setLanguage(lang) {
  const next = normalize(lang);
  if (!next) throw new Error(`unsupported language: ${lang}`);
  chosen = next;
  try {
    storage()?.setItem(STORAGE_KEY, next);
  } catch {
    // quota or privacy mode: the choice still holds for this page view
  }
  if (typeof location !== 'undefined' && typeof history !== 'undefined') {
    try {
      const url = new URL(location.href);
      if (url.searchParams.has('lang') && url.searchParams.get('lang') !== next) {
        url.searchParams.set('lang', next);
        history.replaceState(history.state, '', url);
      }
    } catch {
      // not a history-capable context
    }
  }
  if (typeof document !== 'undefined') {
    document.documentElement.lang = HTML_LANG[next];
    applyTranslations(document);
  }
  if (typeof window !== 'undefined' && typeof CustomEvent !== 'undefined') {
    window.dispatchEvent(new CustomEvent(LANGUAGE_EVENT, { detail: { lang: next } }));
  }
  return next;
}

/** Merges a `{ en: {...}, zh: {...} }` table into the known strings (later wins per key). */
export function registerStrings(strings) {
  for (const lang of LANGUAGES) {
    const part = strings?.[lang];
    if (part) Object.assign(table[lang], part);
  }
}

/**
 * `text` with its `{name}` placeholders replaced by `params[name]` (HTML-escaped with
 * `escape`); unknown names stay as they are.
 */
export function fill(text, params, escape = false) {
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => {
    if (!Object.prototype.hasOwnProperty.call(params, name)) return whole;
    const value = String(params[name]);
    return escape ? escapeHtml(value) : value;
  });
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function lookup(key, lang) {
  const text = table[lang][key];
  if (typeof text === 'string') return text;
  missing.add(key);
  return null;
}

/**
 * The string `key` in the current language with `{name}` placeholders filled from `params`.
 * A key the current language lacks comes back as the key itself and is recorded (missingKeys).
 */
export function tr(key, params) {
  const text = lookup(key, currentLanguage());
  return text === null ? key : fill(text, params, false);
}

/** Keys `tr` / `applyTranslations` asked for but could not find, in first-seen order. */
export function missingKeys() {
  return [...missing];
}

/** Forgets the recorded missing keys (for tests). */
export function clearMissingKeys() {
  missing.clear();
}

/** Keys present in one language but not in the other (sorted); [] when the tables agree. */
export function checkStrings() {
  const out = new Set();
  for (const [a, b] of [['en', 'zh'], ['zh', 'en']]) {
    for (const key of Object.keys(table[a])) if (!(key in table[b])) out.add(key);
  }
  return [...out].sort();
}

/** Every registered key of one language (for tests). */
export function registeredKeys(lang = 'en') {
  return Object.keys(table[normalize(lang) ?? 'en']);
}

function paramsOf(el) {
  const raw = el.getAttribute('data-i18n-params');
  if (!raw) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

function each(root, selector, fn) {
  if (root.nodeType === 1 && root.matches(selector)) fn(root);
  for (const el of root.querySelectorAll(selector)) fn(el);
}

const ATTRIBUTES = [
  ['data-i18n-title', 'title'],
  ['data-i18n-aria-label', 'aria-label'],
  ['data-i18n-placeholder', 'placeholder'],
];

/**
 * Translates `root` (an element or the document) and its descendants, then typesets any
 * `data-tex` elements not yet typeset (including ones that translated HTML just created).
 */
export function applyTranslations(root = document) {
  if (!root) return;
  const lang = currentLanguage();
  each(root, '[data-i18n]', (el) => {
    const text = lookup(el.getAttribute('data-i18n'), lang);
    el.textContent = text === null ? el.getAttribute('data-i18n') : fill(text, paramsOf(el), false);
  });
  each(root, '[data-i18n-html]', (el) => {
    const key = el.getAttribute('data-i18n-html');
    const text = lookup(key, lang);
    if (text === null) el.textContent = key;
    else el.innerHTML = fill(text, paramsOf(el), true);
  });
  for (const [data, attr] of ATTRIBUTES) {
    each(root, `[${data}]`, (el) => {
      const key = el.getAttribute(data);
      const text = lookup(key, lang);
      el.setAttribute(attr, text === null ? key : fill(text, paramsOf(el), false));
    });
  }
  renderTex(root);
}

/**
 * Typesets every `data-tex` element under `root` with KaTeX (MathML output), once per TeX
 * source: the element is marked `data-tex-rendered` and skipped until its `data-tex` changes.
 */
export function renderTex(root = document) {
  each(root, '[data-tex]', (el) => {
    const tex = el.getAttribute('data-tex');
    if (el.getAttribute('data-tex-rendered') === tex) return;
    katex.render(tex, el, {
      output: 'mathml',
      throwOnError: false,
      displayMode: el.dataset.display === 'block',
    });
    applyMathVariants(el);
    el.setAttribute('data-tex-rendered', tex);
  });
}

// Chromium implements MathML Core, which ignores `mathvariant` (except "normal"), so KaTeX's
// `\mathbb{R}`, `\mathcal{N}`, `\mathbf{I}` would come out as plain italic letters. MathML Core's
// answer is to write the styled letters themselves (Unicode Mathematical Alphanumeric Symbols):
// this does that for the variants below, so every browser shows ℝ, 𝒩, 𝐈.
const LETTER_HOLES = {
  // Letters whose styled form lives in the Letterlike Symbols block instead.
  'double-struck': { C: 0x2102, H: 0x210d, N: 0x2115, P: 0x2119, Q: 0x211a, R: 0x211d, Z: 0x2124 },
  script: {
    B: 0x212c, E: 0x2130, F: 0x2131, H: 0x210b, I: 0x2110, L: 0x2112, M: 0x2133, R: 0x211b,
    e: 0x212f, g: 0x210a, o: 0x2134,
  },
  fraktur: { C: 0x212d, H: 0x210c, I: 0x2111, R: 0x211c, Z: 0x2128 },
  italic: { h: 0x210e },
};
const VARIANT_BASE = {
  // [A, a, 0] code points of each variant (0 where the variant has no digits).
  bold: [0x1d400, 0x1d41a, 0x1d7ce],
  italic: [0x1d434, 0x1d44e, 0],
  'bold-italic': [0x1d468, 0x1d482, 0],
  script: [0x1d49c, 0x1d4b6, 0],
  'bold-script': [0x1d4d0, 0x1d4ea, 0],
  fraktur: [0x1d504, 0x1d51e, 0],
  'double-struck': [0x1d538, 0x1d552, 0x1d7d8],
  'bold-fraktur': [0x1d56c, 0x1d586, 0],
  'sans-serif': [0x1d5a0, 0x1d5ba, 0x1d7e2],
  monospace: [0x1d670, 0x1d68a, 0x1d7f6],
};

function styledChar(ch, variant) {
  const hole = LETTER_HOLES[variant]?.[ch];
  if (hole) return String.fromCodePoint(hole);
  const [upper, lower, digit] = VARIANT_BASE[variant];
  if (ch >= 'A' && ch <= 'Z') return String.fromCodePoint(upper + ch.charCodeAt(0) - 65);
  if (ch >= 'a' && ch <= 'z') return String.fromCodePoint(lower + ch.charCodeAt(0) - 97);
  if (digit && ch >= '0' && ch <= '9') return String.fromCodePoint(digit + ch.charCodeAt(0) - 48);
  return null;
}

function applyMathVariants(root) {
  for (const node of root.querySelectorAll('mi[mathvariant], mn[mathvariant]')) {
    const variant = node.getAttribute('mathvariant');
    if (!VARIANT_BASE[variant] || node.children.length) continue;
    const chars = [...node.textContent].map((ch) => styledChar(ch, variant));
    if (chars.some((c) => c === null)) continue; // e.g. bold Greek: leave to the browser
    node.textContent = chars.join('');
    // A single-letter <mi> is italic by default; the styled letter must be drawn as is.
    node.setAttribute('mathvariant', 'normal');
  }
}

const TOGGLE_LABEL = { en: '中文', zh: 'English' }; // names the language a click switches to

/**
 * Makes `button` the en⇄zh switch: its label names the other language ("中文" / "English"),
 * `data-testid="lang-toggle"`, and it follows changes made elsewhere. Returns the button.
 */
export function mountLanguageToggle(button) {
  const other = () => (currentLanguage() === 'zh' ? 'en' : 'zh');
  const label = () => {
    const target = other();
    button.textContent = TOGGLE_LABEL[currentLanguage()];
    button.lang = HTML_LANG[target];
    button.title = tr('i18n.toggle.title');
  };
  button.dataset.testid = 'lang-toggle';
  if (button.tagName === 'BUTTON' && !button.getAttribute('type')) button.type = 'button';
  button.addEventListener('click', () => setLanguage(other()));
  window.addEventListener(LANGUAGE_EVENT, label);
  label();
  return button;
}

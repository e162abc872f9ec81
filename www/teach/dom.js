// Building DOM nodes in the teaching views.

/**
 * A new `tag` element with attributes (`class` included) and children (nodes or text), e.g.
 * `el('p', { class: 'hint', 'data-i18n': 'x.y' }, ['text'])`.
 */
export function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

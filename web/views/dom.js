// Building DOM nodes safely: every string becomes a text node or a property, never markup.

/**
 * @typedef {{[key: string]: string | number | boolean | ((e: any) => void) | undefined | null}} Attrs
 */

/**
 * Creates an element. Strings among the children become text nodes; attributes named
 * `onXxx` become event listeners; `text` sets textContent; others are set as attributes.
 * @param {string} tag
 * @param {Attrs} [attrs]
 * @param {...(Node | string | null | undefined | false)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'text') {
      el.textContent = String(value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return el;
}

/**
 * Replaces the contents of `parent`.
 * @param {Element} parent
 * @param {...Node} nodes
 */
export function replace(parent, ...nodes) {
  parent.replaceChildren(...nodes);
}

/**
 * A labelled input.
 * @param {string} label
 * @param {Attrs} attrs
 * @returns {HTMLLabelElement}
 */
export function field(label, attrs) {
  return /** @type {HTMLLabelElement} */ (h('label', { class: 'field' }, h('span', { text: label }), h('input', attrs)));
}

/**
 * The value of a named input of a form.
 * @param {HTMLFormElement} form
 * @param {string} name
 */
export function value(form, name) {
  const el = form.elements.namedItem(name);
  return el instanceof HTMLInputElement ? el.value : '';
}

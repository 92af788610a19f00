// Keyboard behaviour the views share: menus (the WAI-ARIA menu button pattern), Escape to close
// a panel, and keeping the focus where it was when a list re-renders. Real <button>s already
// answer Enter and Space; this is what they do not do by themselves.

import { replace } from './dom.js';

/**
 * A selector that finds "the same" element after a re-render: its id, else its first `data-*`
 * attribute (the lists mark their entries with `data-room-id`, `data-user-id`, …).
 * @param {Element} el
 * @returns {string | null}
 */
function sameElementSelector(el) {
  if (el.id) return `#${CSS.escape(el.id)}`;
  for (const attr of el.attributes) {
    if (attr.name.startsWith('data-')) return `${el.localName}[${attr.name}="${CSS.escape(attr.value)}"]`;
  }
  return null;
}

/**
 * Replaces the contents of `parent` like `replace()`, and if the focus was inside, puts it back
 * on the same entry: a list that re-renders on every event must not throw a keyboard user out.
 * @param {Element} parent
 * @param {...Node} nodes
 */
export function replaceKeepingFocus(parent, ...nodes) {
  const focused = document.activeElement;
  const selector = focused && parent.contains(focused) ? sameElementSelector(focused) : null;
  replace(parent, ...nodes);
  if (selector) /** @type {HTMLElement | null} */ (parent.querySelector(selector))?.focus();
}

/**
 * Moves the focus to the first control inside `container` that can take it, if there is one
 * (a panel that just opened: the keyboard continues there instead of at the top of the page).
 * @param {HTMLElement} container
 */
export function focusFirst(container) {
  const controls = container.querySelectorAll('input, select, textarea, button, a[href], [tabindex]:not([tabindex="-1"])');
  for (const el of /** @type {NodeListOf<HTMLElement>} */ (controls)) {
    if (!el.matches(':disabled') && el.checkVisibility()) {
      el.focus();
      return;
    }
  }
}

/**
 * Calls `close` when Escape is pressed inside `container` (and nothing inside handled it).
 * @param {HTMLElement} container
 * @param {() => void} close
 */
export function closeOnEscape(container, close) {
  container.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || e.defaultPrevented) return;
    e.preventDefault();
    close();
  });
}

/**
 * A menu button and its menu: opening moves the focus to the first entry; ArrowDown, ArrowUp,
 * Home and End move between entries; Escape closes and gives the focus back to the button;
 * Tab closes and lets the focus move on. Entries are the `[role=menuitem]` inside `menu`.
 * @param {HTMLElement} button
 * @param {HTMLElement} menu
 * @param {() => void} render fills the menu before it opens
 */
export function menuButton(button, menu, render) {
  const entries = () => /** @type {HTMLElement[]} */ ([...menu.querySelectorAll('[role="menuitem"]')]);

  /** @param {boolean} open */
  function set(open) {
    menu.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
  }

  const control = {
    open() {
      render();
      set(true);
      entries()[0]?.focus();
    },
    /** @param {boolean} refocus give the focus back to the button */
    close(refocus) {
      if (menu.hidden) return;
      set(false);
      if (refocus) button.focus();
    },
    toggle() {
      if (menu.hidden) control.open();
      else control.close(true);
    },
  };

  button.addEventListener('click', () => control.toggle());
  button.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' && menu.hidden) {
      e.preventDefault();
      control.open();
    }
  });
  menu.addEventListener('keydown', (e) => {
    const list = entries();
    const at = list.indexOf(/** @type {HTMLElement} */ (document.activeElement));
    /** @type {HTMLElement | undefined} */
    let next;
    if (e.key === 'ArrowDown') next = list[(at + 1) % list.length];
    else if (e.key === 'ArrowUp') next = list[(at - 1 + list.length) % list.length];
    else if (e.key === 'Home') next = list[0];
    else if (e.key === 'End') next = list[list.length - 1];
    else if (e.key === 'Escape') {
      e.preventDefault();
      control.close(true);
      return;
    } else if (e.key === 'Tab') {
      control.close(false);
      return;
    }
    if (next) {
      e.preventDefault();
      next.focus();
    }
  });
  return control;
}

// The user directory: starting a conversation. A name opens the 1:1 DM at once; ticking
// several people starts a multi-user DM with them, and giving a name makes it a named private
// group (the creator owns it). "Encrypted" makes it an end-to-end encrypted room; it starts as
// the server's default for that kind of room (`e2e.encrypt_new_dms`, `e2e.encrypt_new_groups`)
// until the user ticks or unticks it. Rows are kept across re-renders (presence changes often), so a
// tick, the typed name and the keyboard focus survive them.

import * as api from '../api.js';
import { h } from './dom.js';

/** @typedef {import('../state.js').ChatState} ChatState */
/** @typedef {import('../api.js').Room} Room */
/** @typedef {import('../api.js').UserWithPresence} UserWithPresence */

/**
 * One person's row: the tick box (selects for a group conversation) and the name button
 * (opens the 1:1 DM).
 * @typedef {{row: HTMLElement, dot: HTMLElement, name: HTMLElement, tick: HTMLInputElement, label: HTMLElement}} PersonRow
 */

/**
 * @param {ChatState} state
 * @param {(room: Room) => Promise<void>} opened called with the conversation created or found
 * @returns {{element: HTMLElement, render: () => void}}
 */
export function peoplePicker(state, opened) {
  /** @type {Set<number>} ids of the ticked people */
  const selected = new Set();
  /** @type {Map<number, PersonRow>} */
  const rows = new Map();
  const list = h('ul', { class: 'people', id: 'people' });
  const nameInput = /** @type {HTMLInputElement} */ (
    h('input', { id: 'group-name', name: 'group-name', maxlength: 80, autocomplete: 'off', 'aria-describedby': 'selection-summary' })
  );
  const summary = h('p', { class: 'hint', id: 'selection-summary', 'aria-live': 'polite' });
  const encrypted = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', id: 'start-encrypted', name: 'encrypted' }));
  const encryptedField = h(
    'label',
    { class: 'check', id: 'start-encrypted-field' },
    encrypted,
    h('span', { text: 'Encrypted (end-to-end: only the members can read it, and the server cannot search it)' }),
  );
  /** Whether the user chose; until then the box follows the server's default. */
  let encryptedChosen = false;
  encrypted.addEventListener('change', () => {
    encryptedChosen = true;
  });
  const start = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', id: 'start-conversation', text: 'Start conversation' }));
  const error = h('p', { class: 'error', role: 'alert', id: 'people-error' });
  const form = /** @type {HTMLFormElement} */ (
    h(
      'form',
      { class: 'start-form', id: 'start-form' },
      summary,
      h('label', { class: 'field' }, h('span', { text: 'Group name (optional)' }), nameInput),
      encryptedField,
      start,
      error,
    )
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void startSelected();
  });
  nameInput.addEventListener('input', describeSelection);
  const element = h(
    'div',
    { class: 'people-picker' },
    h('h2', { text: 'Start a conversation' }),
    h('p', { class: 'hint', text: 'Choose a name for a direct message, or tick several people.' }),
    list,
    form,
  );

  /**
   * Runs `create` (opening or creating a room) and hands its room on; shows the server's
   * error if it refuses.
   * @param {() => Promise<Room>} create
   */
  async function run(create) {
    error.textContent = '';
    start.disabled = true;
    try {
      const room = await create();
      selected.clear();
      nameInput.value = '';
      encryptedChosen = false;
      for (const r of rows.values()) r.tick.checked = false;
      describeSelection();
      await opened(room);
    } catch (err) {
      error.textContent = err instanceof Error ? err.message : String(err);
    } finally {
      start.disabled = false;
    }
  }

  /** The ticked people in the order shown. */
  function selectedIds() {
    return people()
      .map((u) => u.id)
      .filter((id) => selected.has(id));
  }

  /**
   * The box's answer when the user chose; undefined (the server's default decides, which the
   * box showed) otherwise, and where E2E is turned off.
   */
  function wantsEncrypted() {
    return encryptedField.hidden || !encryptedChosen ? undefined : encrypted.checked;
  }

  async function startSelected() {
    const ids = selectedIds();
    const name = nameInput.value.trim();
    const e2e = wantsEncrypted();
    if (name) {
      await run(() => api.createGroup(name, ids, e2e));
    } else if (ids.length === 0) {
      error.textContent = 'Tick at least one person, or give the group a name.';
    } else if (ids.length === 1) {
      await run(() => api.openDm(ids[0], e2e));
    } else {
      await run(() => api.openMultiDm(ids, e2e));
    }
  }

  /** Says what the Start button will do, and names it so. */
  function describeSelection() {
    const ids = selectedIds();
    const names = ids.map((id) => state.users.get(id)?.username ?? `user ${id}`);
    const name = nameInput.value.trim();
    summary.textContent = names.length ? `Selected: ${names.join(', ')}` : 'Nobody selected.';
    if (name) start.textContent = 'Create group';
    else if (ids.length > 1) start.textContent = 'Start group message';
    else if (ids.length === 1) start.textContent = 'Start direct message';
    else start.textContent = 'Start conversation';
    encryptedField.hidden = state.settings['e2e.enabled'] === false;
    if (!encryptedChosen) encrypted.checked = state.settings[name ? 'e2e.encrypt_new_groups' : 'e2e.encrypt_new_dms'] === true;
  }

  /** Everyone but me, active accounts only, by name. @returns {UserWithPresence[]} */
  function people() {
    return [...state.users.values()]
      .filter((u) => u.id !== state.me.id && !u.deactivated)
      .sort((a, b) => a.username.localeCompare(b.username));
  }

  /** @param {UserWithPresence} u @returns {PersonRow} */
  function createRow(u) {
    const tick = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', class: 'pick', 'data-user-id': u.id }));
    tick.addEventListener('change', () => {
      if (tick.checked) selected.add(u.id);
      else selected.delete(u.id);
      describeSelection();
    });
    const label = h('span', { class: 'visually-hidden' });
    const dot = h('span', { class: 'dot', role: 'img' });
    const name = h('span', { class: 'person-name' });
    const button = h('button', { type: 'button', class: 'person', 'data-user-id': u.id }, dot, name);
    button.addEventListener('click', () => void run(() => api.openDm(u.id, wantsEncrypted())));
    // The name comes first: Tab from "New conversation" reaches the quickest path, a DM.
    const row = h('li', { class: 'person-row' }, button, h('label', { class: 'pick-label' }, tick, label));
    return { row, dot, name, tick, label };
  }

  function render() {
    const shown = people();
    const ids = new Set(shown.map((u) => u.id));
    for (const [id] of rows) {
      if (!ids.has(id)) {
        rows.delete(id);
        selected.delete(id);
      }
    }
    const order = shown.map((u) => {
      let r = rows.get(u.id);
      if (!r) {
        r = createRow(u);
        rows.set(u.id, r);
      }
      r.dot.className = `dot ${u.presence}`;
      r.dot.setAttribute('aria-label', u.presence);
      r.dot.title = u.presence;
      r.name.textContent = u.username;
      r.label.textContent = `Select ${u.username}`;
      return r.row;
    });
    // Moving a row that holds the focus would drop the focus: touch the list only when
    // somebody came, went or changed place.
    const current = [...list.children];
    if (current.length !== order.length || current.some((el, i) => el !== order[i])) {
      list.replaceChildren(...order);
    }
    if (!shown.length) list.replaceChildren(h('li', { class: 'empty', text: 'Nobody else is here yet.' }));
    describeSelection();
  }

  return { element, render };
}

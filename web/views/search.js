// Message search: a search box and its results as text (room, author, time, a snippet with
// the matched words marked); choosing a result opens its room. The server never sees the
// messages of encrypted rooms: it names the rooms it did not search, and those are searched
// here, in what this tab has decrypted.

import * as api from '../api.js';
import { h, replace } from './dom.js';

/** @typedef {import('../state.js').ChatState} ChatState */
/** @typedef {import('../api.js').Message} Message */
/** @typedef {import('../rooms.js').E2eRooms} E2eRooms */

/** Characters of context shown before the first matched word. */
const SNIPPET_LEAD = 40;
/** Longest snippet, in characters. */
const SNIPPET_LENGTH = 160;

/**
 * @param {ChatState} state
 * @param {E2eRooms} rooms
 * @param {(roomId: number) => void} openRoom
 * @returns {{element: HTMLElement}}
 */
export function searchBox(state, rooms, openRoom) {
  const input = /** @type {HTMLInputElement} */ (
    h('input', { type: 'search', id: 'search-input', name: 'q', autocomplete: 'off', placeholder: 'Words to find' })
  );
  const error = h('p', { class: 'error', role: 'alert', id: 'search-error' });
  const results = h('ol', { class: 'search-results', id: 'search-results', 'aria-label': 'Search results', hidden: true });
  const status = h('p', { class: 'hint', id: 'search-status', role: 'status' });
  const more = h('button', { type: 'button', id: 'search-more', class: 'secondary', text: 'More results', hidden: true });
  const clear = h('button', { type: 'button', id: 'search-clear', class: 'secondary', text: 'Clear', hidden: true });
  // The encrypted rooms the server did not search, and the hits in what this tab decrypted.
  const unsearched = h('p', { class: 'hint', id: 'search-unsearched', role: 'status', hidden: true });
  const localResults = h('ol', { class: 'search-results', id: 'search-local-results', 'aria-label': 'Results in decrypted messages', hidden: true });
  const form = /** @type {HTMLFormElement} */ (
    h(
      'form',
      { class: 'search', id: 'search-form', role: 'search' },
      h('label', { class: 'field' }, h('span', { text: 'Search messages' }), input),
      h('button', { type: 'submit', id: 'search-submit', text: 'Search' }),
    )
  );
  const element = h('section', { class: 'search-box', 'aria-label': 'Search' }, form, error, status, results, more, unsearched, localResults, clear);

  /** The query the shown results answer. */
  let query = '';
  /** Where the next page starts, if there is one. @type {number | null} */
  let nextOffset = null;

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    query = input.value.trim();
    replace(results);
    hideLocal();
    if (!query) {
      error.textContent = 'Type a word to search for.';
      return;
    }
    void fetchPage(0);
  });
  more.addEventListener('click', () => {
    if (nextOffset !== null) void fetchPage(nextOffset);
  });
  clear.addEventListener('click', () => {
    query = '';
    input.value = '';
    error.textContent = '';
    status.textContent = '';
    replace(results);
    results.hidden = true;
    hideLocal();
    more.hidden = true;
    clear.hidden = true;
    input.focus();
  });

  /** @param {number} offset */
  async function fetchPage(offset) {
    error.textContent = '';
    status.textContent = 'Searching…';
    const asked = query;
    try {
      const page = await api.search(asked, offset);
      if (asked !== query) return; // a newer search replaced this one
      results.append(...page.hits.map((m) => hit(m, asked)));
      if (offset === 0) searchLocally(asked, page.unsearched_rooms ?? []);
      nextOffset = page.next_offset;
      const count = results.children.length;
      const where = unsearched.hidden ? '' : ' on the server';
      status.textContent = count ? `${count} result${count === 1 ? '' : 's'}${where}${nextOffset === null ? '' : ' so far'}` : `Nothing found${where}.`;
    } catch (err) {
      if (asked !== query) return;
      status.textContent = '';
      nextOffset = null;
      error.textContent = err instanceof Error ? err.message : String(err);
    }
    results.hidden = results.children.length === 0;
    more.hidden = nextOffset === null;
    clear.hidden = false;
  }

  function hideLocal() {
    unsearched.hidden = true;
    unsearched.textContent = '';
    replace(localResults);
    localResults.hidden = true;
  }

  /**
   * Says which rooms the server did not search (encrypted ones), and searches them in the
   * messages this tab has decrypted.
   * @param {string} asked
   * @param {number[]} roomIds
   */
  function searchLocally(asked, roomIds) {
    if (!roomIds.length) return;
    const names = roomIds.map((id) => {
      const room = state.rooms.get(id);
      return room ? state.roomTitle(room) : `room ${id}`;
    });
    const found = rooms.searchLocal(asked, roomIds);
    unsearched.hidden = false;
    unsearched.textContent =
      `Encrypted rooms are not searched on the server (${names.join(', ')}). ` +
      (found.length
        ? `Found in the messages this tab has decrypted: ${found.length}.`
        : 'Nothing found in the messages this tab has decrypted (open the room and scroll back to search further).');
    replace(localResults, ...found.map((f) => hit(f.msg, asked, f.text)));
    localResults.hidden = found.length === 0;
  }

  /**
   * One result: where, who, when, and the words around the match.
   * @param {Message} msg
   * @param {string} asked
   * @param {string} [decrypted] the text of an encrypted message, decrypted in this tab
   */
  function hit(msg, asked, decrypted) {
    const room = state.rooms.get(msg.room_id);
    const roomName = room ? state.roomTitle(room) : `room ${msg.room_id}`;
    const author = msg.author_id === state.me.id ? state.me.username : (state.users.get(msg.author_id)?.username ?? `user ${msg.author_id}`);
    const when = new Date(msg.created_at); // the server's milliseconds
    const text = decrypted ?? (msg.body.type === 'text' ? msg.body.text : '');
    const button = h(
      'button',
      { type: 'button', class: decrypted === undefined ? 'search-hit' : 'search-hit local-hit', 'data-room-id': msg.room_id, 'data-message-id': msg.id },
      h('span', { class: 'hit-room', text: roomName }),
      h('span', { class: 'hit-author', text: author }),
      h('time', { datetime: when.toISOString(), text: when.toLocaleString() }),
      h('span', { class: 'hit-snippet' }, ...marked(snippet(text, asked), asked)),
    );
    button.addEventListener('click', () => openRoom(msg.room_id));
    return h('li', {}, button);
  }

  return { element };
}

/** @param {string} query @returns {string[]} the words searched for, lower-cased */
function words(query) {
  return query
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w.length > 0);
}

/**
 * The part of `text` around the first word of `query` it contains, with ellipses where cut.
 * @param {string} text
 * @param {string} query
 */
export function snippet(text, query) {
  const lower = text.toLowerCase();
  const found = words(query)
    .map((w) => lower.indexOf(w))
    .filter((i) => i >= 0);
  const first = found.length ? Math.min(...found) : 0;
  const start = Math.max(0, first - SNIPPET_LEAD);
  const end = Math.min(text.length, start + SNIPPET_LENGTH);
  return `${start > 0 ? '…' : ''}${text.slice(start, end)}${end < text.length ? '…' : ''}`;
}

/**
 * The snippet as text nodes, with every occurrence of a searched word in a `<mark>` (built
 * as elements holding text, never as markup).
 * @param {string} text
 * @param {string} query
 * @returns {(Node | string)[]}
 */
function marked(text, query) {
  const ws = words(query);
  const lower = text.toLowerCase();
  // Lower-casing can change the length of some characters; then positions would not line
  // up, and the snippet goes unmarked rather than marked wrongly.
  if (lower.length !== text.length) return [text];
  /** @type {(Node | string)[]} */
  const parts = [];
  let at = 0;
  while (at < text.length) {
    let next = -1;
    let len = 0;
    for (const w of ws) {
      const i = lower.indexOf(w, at);
      if (i >= 0 && (next < 0 || i < next || (i === next && w.length > len))) {
        next = i;
        len = w.length;
      }
    }
    if (next < 0) break;
    if (next > at) parts.push(text.slice(at, next));
    parts.push(h('mark', { text: text.slice(next, next + len) }));
    at = next + len;
  }
  if (at < text.length) parts.push(text.slice(at));
  return parts;
}

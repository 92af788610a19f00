// Views of encrypted rooms: the thin outline key that marks end-to-end encrypted messages and
// rooms (distinct from OTR's bold key), and the room's E2E status line (locked: "Unlock your
// E2E key to read this room" with the way to do it; keys loading; why the room has no key;
// refused shares; a member's changed key to acknowledge).

import { h } from './dom.js';

/** @typedef {import('../rooms.js').E2eRooms} E2eRooms */

const SVG = 'http://www.w3.org/2000/svg';

/**
 * The thin outline key of end-to-end encrypted messages and rooms. Its title names the room
 * key a message used, when known.
 * @param {string | null} keyId
 */
export function e2eKeyIcon(keyId) {
  const label = 'End-to-end encrypted';
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'e2e-key');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  const title = document.createElementNS(SVG, 'title');
  title.textContent = keyId ? `${label} (room key ${keyId})` : label;
  const ring = document.createElementNS(SVG, 'circle');
  ring.setAttribute('cx', '7');
  ring.setAttribute('cy', '12');
  ring.setAttribute('r', '3.5');
  const shaft = document.createElementNS(SVG, 'path');
  shaft.setAttribute('d', 'M10.5 12h10.5M17.5 12v3M20.5 12v2.5');
  svg.append(title, ring, shaft);
  return svg;
}

/**
 * The status line of an encrypted room (empty for an ordinary one).
 * @param {E2eRooms} rooms
 * @param {number} roomId
 * @param {() => void} openKeyPanel opens the E2E key panel (to unlock)
 * @returns {HTMLElement[]}
 */
export function roomStatus(rooms, roomId, openKeyPanel) {
  if (!rooms.isEncrypted(roomId)) return [];
  const info = rooms.info(roomId);
  /** @type {HTMLElement[]} */
  const parts = [];
  if (!info || info.status === 'loading') {
    parts.push(h('p', { class: 'hint', 'data-status': 'loading', text: 'End-to-end encrypted. Loading the room keys…' }));
  } else if (info.status === 'locked') {
    const unlock = h('button', { type: 'button', id: 'e2e-room-unlock', text: 'Enter E2E key' });
    unlock.addEventListener('click', openKeyPanel);
    parts.push(h('p', { class: 'warning', 'data-status': 'locked', text: 'Unlock your E2E key to read this room.' }), unlock);
  } else if (info.status === 'error') {
    parts.push(h('p', { class: 'error', role: 'alert', 'data-status': 'error', text: `Cannot write in this room: ${info.error ?? 'it has no key.'}` }));
  } else {
    parts.push(h('p', { class: 'hint', 'data-status': 'ready', text: `End-to-end encrypted. Messages use room key ${info.keyId ?? ''}.` }));
  }
  for (const refused of info?.refused ?? []) parts.push(h('p', { class: 'warning', text: refused }));
  if (info?.unexplained.length) {
    const names = info.unexplained.map((id) => rooms.nameOf(id)).join(', ');
    parts.push(
      h('p', {
        class: 'warning e2e-unexplained',
        role: 'alert',
        text: `The server lists ${names} as a member, but no membership change shows them joining. No new room key is shared with them.`,
      }),
    );
  }
  for (const change of rooms.changedKeys.values()) {
    if (!info?.members.includes(change.userId)) continue;
    const name = rooms.nameOf(change.userId);
    const ack = h('button', { type: 'button', class: 'e2e-acknowledge', 'data-user-id': change.userId, text: 'Acknowledge' });
    const error = h('span', { class: 'error', role: 'alert' });
    ack.addEventListener('click', () => {
      rooms.acknowledge(change.userId).catch((err) => {
        error.textContent = err instanceof Error ? err.message : String(err);
      });
    });
    parts.push(
      h(
        'p',
        { class: 'warning e2e-key-changed', role: 'alert' },
        h('span', { text: `${name}'s E2E key changed (the safety number with them is new). Their messages are not trusted and no room key goes to them until you acknowledge it. ` }),
        ack,
        error,
      ),
    );
  }
  return parts;
}

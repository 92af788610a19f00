// Off-the-record views: the "OTR" entry of a DM's menu, the OTR side panel (Start OTR,
// Refresh Keys, End OTR), the invitation (Accept / Decline) and the bold key icon of OTR
// messages. The labels are the user guide's.

import { h } from './dom.js';

/** @typedef {import('../otr.js').OtrConversations} OtrConversations */
/** @typedef {import('../otr.js').OtrMessage} OtrMessage */

const SVG = 'http://www.w3.org/2000/svg';

/** The bold key icon that marks OTR messages (heavier than any other icon). */
export function boldKeyIcon() {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'otr-key');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'Off the record');
  const title = document.createElementNS(SVG, 'title');
  title.textContent = 'Off the record';
  const ring = document.createElementNS(SVG, 'circle');
  ring.setAttribute('cx', '7');
  ring.setAttribute('cy', '12');
  ring.setAttribute('r', '4');
  const shaft = document.createElementNS(SVG, 'path');
  shaft.setAttribute('d', 'M11 12h11M18 12v4M21 12v3');
  svg.append(title, ring, shaft);
  return svg;
}

const STATE_TEXT = /** @type {Record<string, string>} */ ({
  not_started: 'Off the record is off.',
  offered: 'Waiting for the other person to accept…',
  invited: 'You are invited to go off the record.',
  establishing: 'Establishing the encrypted channel…',
  established: 'Off the record: messages are end-to-end encrypted and not stored.',
  ended: 'OTR ended. Messages are stored again.',
  declined: 'The invitation was declined.',
  timed_out: 'The invitation timed out.',
  failed: 'The OTR session was lost. Use Refresh Keys to start again.',
});

/**
 * What the panel says about the conversation's state.
 * @param {string} state
 * @param {string | null} reason
 * @param {string} peerName
 */
function stateText(state, reason, peerName) {
  if (state === 'failed' && reason === 'peer_disconnected') {
    return `${peerName} left OTR (reloaded or closed the page). Use Refresh Keys to start again.`;
  }
  if (reason === 'ended_by_server') return 'The server ended OTR (an admin turned it off or an account was deactivated).';
  if (state === 'ended' && reason === 'ended_by_peer') return `${peerName} ended OTR. Messages are stored again.`;
  return STATE_TEXT[state] ?? state;
}

/**
 * Why the relay refused, in words, naming the missing condition.
 * @param {string} code
 * @param {string} peerName
 */
function refusalText(code, peerName) {
  switch (code) {
    case 'otr_disabled':
      return 'OTR is disabled on this server.';
    case 'otr_no_keys':
      return 'Enter your E2E key first.';
    case 'otr_peer_no_keys':
      return `${peerName} has not set up an E2E key yet.`;
    case 'otr_peer_offline':
      return `${peerName} is offline. OTR needs both of you online.`;
    case 'otr_peer_locked':
      return `${peerName} is online but has not entered their E2E key.`;
    case 'rate_limited':
      return 'Too many attempts; wait a moment and try again.';
    default:
      return `The server refused: ${code}.`;
  }
}

/**
 * The OTR side panel of a DM.
 * @param {OtrConversations} otr
 * @param {number} roomId
 * @param {number} peerId
 * @param {string} peerName
 * @param {boolean} unlocked whether this tab has the E2E key unlocked
 * @param {boolean} allowed whether the admin has OTR enabled
 */
export function otrPanel(otr, roomId, peerId, peerName, unlocked, allowed) {
  const r = otr.room(roomId);
  /**
   * @param {string} id
   * @param {string} label
   * @param {() => unknown} action
   */
  const button = (id, label, action) => {
    const b = h('button', { type: 'button', id, text: label });
    b.addEventListener('click', () => void action());
    return b;
  };
  const children = [
    h('h2', { text: 'OTR' }),
    h('p', {
      text: `Off-the-record messages with ${peerName} are end-to-end encrypted, pass through the server without being stored, and disappear when either of you reloads the page.`,
    }),
    h('p', { id: 'otr-state', 'data-state': r.state, text: stateText(r.state, r.reason, peerName) }),
  ];
  if (!allowed) {
    children.push(h('p', { class: 'error', text: 'OTR is disabled on this server.' }));
  } else if (!unlocked) {
    children.push(h('p', { class: 'error', text: 'Enter your E2E key first (E2E key, at the top).' }));
  } else if (r.state === 'established') {
    children.push(button('otr-refresh', 'Refresh Keys', () => otr.refresh(roomId)));
    children.push(button('otr-end', 'End OTR', () => otr.end(roomId)));
  } else if (r.state === 'invited') {
    children.push(button('otr-accept', 'Accept', () => otr.accept(roomId)));
    children.push(button('otr-decline', 'Decline', () => otr.decline(roomId)));
  } else if (r.state === 'failed') {
    children.push(button('otr-refresh', 'Refresh Keys', () => otr.start(roomId, peerId)));
  } else if (r.state !== 'offered' && r.state !== 'establishing') {
    children.push(button('otr-start', 'Start OTR', () => otr.start(roomId, peerId)));
  }
  const safety = otr.safetyNumber(roomId);
  if (safety) {
    children.push(
      h(
        'p',
        { class: 'safety' },
        h('span', { text: `Safety number with ${peerName} (compare it with theirs): ` }),
        h('code', { id: 'otr-safety-number', text: safety }),
      ),
    );
  }
  if (r.refusal) {
    children.push(h('p', { class: 'error', role: 'alert', id: 'otr-refusal', text: refusalText(r.refusal, peerName) }));
  }
  if (r.error) children.push(h('p', { class: 'error', role: 'alert', id: 'otr-error', text: r.error }));
  return h('aside', { id: 'otr-panel', class: 'otr-panel', 'aria-label': 'Off the record' }, ...children);
}

/**
 * The invitation banner: who wants to go off the record, with Accept and Decline.
 * @param {OtrConversations} otr
 * @param {number} roomId
 * @param {string} fromName
 */
export function invitation(otr, roomId, fromName) {
  const accept = h('button', { type: 'button', class: 'otr-invite-accept', text: 'Accept' });
  accept.addEventListener('click', () => void otr.accept(roomId));
  const decline = h('button', { type: 'button', class: 'otr-invite-decline', text: 'Decline' });
  decline.addEventListener('click', () => void otr.decline(roomId));
  return h(
    'div',
    { class: 'otr-invitation', role: 'alert', 'data-room-id': roomId },
    h('span', { text: `${fromName} wants to start OTR.` }),
    accept,
    decline,
  );
}

/**
 * An OTR message in the message list, marked with the bold key icon.
 * @param {OtrMessage} m
 * @param {string} author
 */
export function otrMessage(m, author) {
  return h(
    'li',
    { class: 'message otr', 'data-otr-id': m.id },
    boldKeyIcon(),
    h('span', { class: 'author', text: author }),
    h('p', { class: 'text', text: m.text }),
    m.mine ? h('span', { class: 'delivery', text: m.delivered ? 'delivered' : 'sent' }) : null,
  );
}

// Off-the-record views: the "OTR" entry of a DM's menu, the OTR side panel (Start OTR,
// Cancel, Refresh Keys, End OTR, the safety number with "Mark as verified", a changed key to
// acknowledge), the invitation (Accept / Decline) with its notification in a background tab,
// and the bold key icon of OTR messages and files. The labels are the user guide's.

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
  if (state === 'ended' && reason === 'cancelled_here') return 'You cancelled the invitation.';
  if (state === 'ended' && reason === 'cancelled_by_peer') return `${peerName} withdrew the invitation.`;
  if (state === 'failed' && reason === 'peer_key_changed') return `The safety number with ${peerName} changed. Acknowledge it, then use Refresh Keys.`;
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
    case 'payload_too_large':
      return 'The server refused a packet as too large (otr.max_frame_bytes).';
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
  if (r.keyChange) children.push(keyChangeWarning(otr, roomId, peerName, r.keyChange));
  const blocked = r.keyChange !== null;
  /** The buttons of the current state, on one row. @type {HTMLElement[]} */
  const actions = [];
  /** @type {HTMLElement | null} */
  let fileLimit = null;
  if (!allowed) {
    children.push(h('p', { class: 'error', text: 'OTR is disabled on this server.' }));
  } else if (!unlocked) {
    children.push(h('p', { class: 'error', text: 'Enter your E2E key first (E2E key, at the top).' }));
  } else if (r.state === 'established') {
    actions.push(button('otr-refresh', 'Refresh Keys', () => otr.refresh(roomId)));
    actions.push(button('otr-end', 'End OTR', () => otr.end(roomId)));
    const limit = otr.fileLimit();
    fileLimit = h('p', {
      id: 'otr-file-limit',
      text: `Files you attach now go off the record too (never uploaded), up to ${limit >= 1024 * 1024 ? `${limit / 1024 / 1024} MiB` : `${limit} bytes`} each.`,
    });
  } else if (r.state === 'invited') {
    if (!blocked) actions.push(button('otr-accept', 'Accept', () => otr.accept(roomId)));
    actions.push(button('otr-decline', 'Decline', () => otr.decline(roomId)));
  } else if (r.state === 'offered') {
    actions.push(button('otr-cancel', 'Cancel', () => otr.cancel(roomId)));
  } else if (r.state === 'failed') {
    if (!blocked) actions.push(button('otr-refresh', 'Refresh Keys', () => otr.start(roomId, peerId)));
  } else if (r.state !== 'establishing' && !blocked) {
    actions.push(button('otr-start', 'Start OTR', () => otr.start(roomId, peerId)));
  }
  if (actions.length) children.push(h('div', { class: 'otr-actions' }, ...actions));
  if (fileLimit) children.push(fileLimit);
  // While a changed key waits for acknowledgement, only the new number (in the warning) counts.
  const safety = unlocked && !blocked ? otr.safetyNumber(roomId) : null;
  if (safety) {
    const verified = otr.isVerified(roomId);
    children.push(
      h(
        'div',
        { class: 'safety', id: 'otr-safety' },
        h('span', { text: `Safety number with ${peerName} (compare it with theirs, in person or on a call you trust):` }),
        h('code', { id: 'otr-safety-number', text: safety }),
        verified
          ? h('span', { id: 'otr-verified', class: 'verified', text: '✔ Verified' })
          : h('span', { id: 'otr-not-verified', text: 'Not verified' }),
        verified
          ? button('otr-unverify', 'Clear verification', () => otr.clearVerified(roomId))
          : button('otr-verify', 'Mark as verified', () => otr.markVerified(roomId)),
      ),
    );
  }
  if (notificationsAskable()) children.push(notificationButton(() => otr.changed()));
  if (r.refusal) {
    children.push(h('p', { class: 'error', role: 'alert', id: 'otr-refusal', text: refusalText(r.refusal, peerName) }));
  }
  if (r.error) children.push(h('p', { class: 'error', role: 'alert', id: 'otr-error', text: r.error }));
  return h('aside', { id: 'otr-panel', class: 'otr-panel', 'aria-label': 'Off the record' }, ...children);
}

/**
 * The warning of a changed peer key, with the new safety number; OTR with the peer waits
 * until the user acknowledges it.
 * @param {OtrConversations} otr
 * @param {number} roomId
 * @param {string} peerName
 * @param {import('../otr.js').KeyChange} change
 */
function keyChangeWarning(otr, roomId, peerName, change) {
  const acknowledge = h('button', { type: 'button', id: 'otr-acknowledge', text: 'Acknowledge' });
  acknowledge.addEventListener('click', () => void otr.acknowledgeChange(roomId));
  return h(
    'div',
    { id: 'otr-key-changed', class: 'warning', role: 'alert' },
    h('strong', { text: `The safety number with ${peerName} changed.` }),
    h('p', {
      text: change.wasVerified
        ? `You had verified ${peerName}. Their E2E key is different now: they may have reset it, or someone may be intercepting. Compare the new safety number with them before going off the record.`
        : `${peerName}'s E2E key is different now: they may have reset it, or someone may be intercepting. Compare the new safety number with them.`,
    }),
    h('code', { id: 'otr-new-safety-number', text: change.safetyNumber }),
    h('p', { text: 'OTR with this person is blocked until you acknowledge the change.' }),
    acknowledge,
  );
}

/** Whether the page may still ask for notification permission (only ever on a click). */
function notificationsAskable() {
  return typeof Notification !== 'undefined' && Notification.permission === 'default';
}

/**
 * "Enable notifications": asks for permission (a user gesture) so an invitation that arrives
 * in a background tab can show a notification.
 * @param {() => void} answered
 */
function notificationButton(answered) {
  const b = h('button', { type: 'button', id: 'otr-notifications', text: 'Enable notifications' });
  b.addEventListener('click', async () => {
    await Notification.requestPermission();
    answered();
  });
  return h('p', { class: 'notifications' }, h('span', { text: 'Be notified of OTR invitations while this tab is in the background: ' }), b);
}

/**
 * Shows a notification for an invitation when this tab is hidden and the user allowed it;
 * clicking it focuses the tab and calls `open`.
 * @param {number} roomId
 * @param {string} fromName
 * @param {() => void} open
 */
export function notifyInvitation(roomId, fromName, open) {
  if (document.visibilityState !== 'hidden') return;
  if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
  const n = new Notification('OTR invitation', { body: `${fromName} wants to start OTR.`, tag: `sotto-otr-${roomId}` });
  n.addEventListener('click', () => {
    window.focus();
    open();
    n.close();
  });
}

/**
 * The invitation banner: who wants to go off the record, with Accept and Decline.
 * @param {OtrConversations} otr
 * @param {number} roomId
 * @param {string} fromName
 */
export function invitation(otr, roomId, fromName) {
  const changed = otr.room(roomId).keyChange !== null;
  const accept = changed ? null : h('button', { type: 'button', class: 'otr-invite-accept', text: 'Accept' });
  accept?.addEventListener('click', () => void otr.accept(roomId));
  const decline = h('button', { type: 'button', class: 'otr-invite-decline', text: 'Decline' });
  decline.addEventListener('click', () => void otr.decline(roomId));
  return h(
    'div',
    { class: 'otr-invitation', role: 'alert', 'data-room-id': roomId },
    h('span', { text: `${fromName} wants to start OTR.` }),
    changed
      ? h('span', { class: 'otr-invite-blocked', text: `Their safety number changed: open the conversation's OTR panel to review it before accepting.` })
      : null,
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
    { class: m.file ? 'message otr otr-file' : 'message otr', 'data-otr-id': m.id },
    boldKeyIcon(),
    h('span', { class: 'author', text: author }),
    m.file ? otrFile(m.file) : h('p', { class: 'text', text: m.text }),
    m.mine ? h('span', { class: 'delivery', text: m.delivered ? 'delivered' : 'sent' }) : null,
  );
}

/**
 * A file of an OTR conversation: an image preview and a download link while its session
 * lasts; afterwards only its name (the bytes are gone from memory).
 * @param {import('../otr.js').OtrFile} file
 */
function otrFile(file) {
  const size = file.size < 1024 ? `${file.size} B` : `${Math.ceil(file.size / 1024)} KiB`;
  if (!file.url) {
    return h('p', { class: 'file gone' }, h('span', { class: 'file-name text', text: file.name }), ` (${size}, gone: OTR files last only as long as their session)`);
  }
  return h(
    'div',
    { class: 'file' },
    file.preview ? h('img', { class: 'file-preview', src: file.url, alt: file.name }) : null,
    h('p', {}, h('a', { class: 'file-name text', href: file.url, download: file.name, text: file.name }), ` (${size})`),
  );
}

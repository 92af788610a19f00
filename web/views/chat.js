// The chat screen: sidebar of rooms (unread badges, presence dots), the user directory to
// start a DM, and the open room with its history and composer. Renders from ChatState;
// every piece of user content goes in as text.

import * as api from '../api.js';
import * as e2e from '../e2e.js';
import { createAdminPage } from './admin.js';
import { h, replace } from './dom.js';
import { showE2ePanel } from './e2e.js';
import { e2eKeyIcon, roomStatus } from './e2e-rooms.js';
import { FileSender } from './files.js';
import { closeOnEscape, focusFirst, menuButton as roomMenuKeys, replaceKeepingFocus } from './keyboard.js';
import { MessageList } from './messages.js';
import { invitation, notifyInvitation, otrPanel } from './otr.js';
import { showSessionsPanel } from './account.js';
import { peoplePicker } from './people.js';
import { searchBox } from './search.js';

/** @typedef {import('../state.js').ChatState} ChatState */
/** @typedef {import('../api.js').Room} Room */
/** @typedef {import('../otr.js').OtrConversations} OtrConversations */
/** @typedef {import('../rooms.js').E2eRooms} E2eRooms */

/**
 * @param {HTMLElement} root
 * @param {ChatState} state
 * @param {OtrConversations} otr
 * @param {E2eRooms} rooms
 * @param {{logout: () => void, unlocked: () => void}} actions
 */
export function showChat(root, state, otr, rooms, actions) {
  const status = h('span', { id: 'connection', class: 'connection' });
  const roomList = h('ul', { id: 'rooms', class: 'rooms', 'aria-label': 'Rooms' });
  const people = peoplePicker(state, async (room) => {
    state.upsertRoom(room);
    directory.hidden = true;
    newDm.setAttribute('aria-expanded', 'false');
    await openRoom(room.id);
  });
  const directory = h('section', { id: 'directory', class: 'directory', hidden: true, 'aria-label': 'People' }, people.element);
  const roomView = h('section', { id: 'room', class: 'room', 'aria-label': 'Conversation' });
  const newDm = h('button', { type: 'button', id: 'new-dm', 'aria-expanded': 'false', 'aria-controls': 'directory', text: 'New conversation' });
  newDm.addEventListener('click', async () => {
    directory.hidden = !directory.hidden;
    newDm.setAttribute('aria-expanded', String(!directory.hidden));
    renderDirectory();
    if (!directory.hidden) state.setUsers(await api.users());
  });
  const search = searchBox(state, rooms, (roomId) => void openRoom(roomId));
  const sessionsPanel = h('section', { id: 'sessions-panel', class: 'sessions-panel', hidden: true, 'aria-label': 'Your sessions' });
  const sessionsButton = h('button', { type: 'button', id: 'sessions-button', text: 'Sessions' });
  sessionsButton.addEventListener('click', () => {
    if (sessionsPanel.hidden) void showSessionsPanel(sessionsPanel, () => sessionsButton.focus());
    else sessionsPanel.hidden = true;
  });
  const e2ePanel = h('section', { id: 'e2e-panel', class: 'e2e-panel', hidden: true, 'aria-label': 'E2E key' });
  const e2eButton = h('button', { type: 'button', id: 'e2e-button', text: 'E2E key' });
  /** Opens the E2E key panel (`notice`: why it opened by itself). @param {string} [notice] */
  const openE2ePanel = (notice) =>
    showE2ePanel(
      e2ePanel,
      state.me.id,
      () => {
        actions.unlocked();
        // Encrypted rooms opened while locked (the open one included) load their keys now.
        rooms.unlocked();
        state.changed();
      },
      { notice, otr },
    );
  e2eButton.addEventListener('click', () => {
    if (!e2ePanel.hidden) {
      e2ePanel.hidden = true;
      return;
    }
    void openE2ePanel().then(() => focusFirst(e2ePanel));
  });
  const invitations = h('div', { id: 'invitations', class: 'invitations' });
  /** Whether the OTR panel of the open room is shown. */
  let otrOpen = false;
  const menuButton = h('button', { type: 'button', id: 'room-menu', 'aria-haspopup': 'true', 'aria-expanded': 'false', 'aria-label': 'Room menu', text: '⋯' });
  const menu = h('ul', { id: 'room-menu-list', class: 'menu', role: 'menu', hidden: true });
  const roomMenu = roomMenuKeys(menuButton, menu, () => renderMenu());
  closeOnEscape(e2ePanel, () => {
    e2ePanel.hidden = true;
    e2eButton.focus();
  });
  closeOnEscape(directory, () => {
    directory.hidden = true;
    newDm.setAttribute('aria-expanded', 'false');
    newDm.focus();
  });
  const panelSlot = h('div', { id: 'otr-slot' });
  // Admins only; the server refuses the admin API to everyone else anyway.
  const admin = state.me.is_admin ? createAdminPage(state.me, () => toggleAdmin(false)) : null;
  const adminButton = admin ? h('button', { type: 'button', id: 'admin-button', 'aria-pressed': 'false', 'aria-controls': 'admin', text: 'Admin' }) : null;
  adminButton?.addEventListener('click', () => toggleAdmin(admin?.page.hidden === true));
  const logout = h('button', { type: 'button', id: 'logout', text: 'Log out' });
  logout.addEventListener('click', () => actions.logout());

  const messages = new MessageList(state, rooms);
  const files = new FileSender(state, otr, rooms);
  const roomTitle = h('h2', { id: 'room-title' });
  const roomE2eMark = h('span', { id: 'room-e2e', class: 'room-e2e' });
  const roomE2eStatus = h('div', { id: 'e2e-room-status', class: 'e2e-room-status', 'aria-live': 'polite' });
  const input = /** @type {HTMLTextAreaElement} */ (
    h('textarea', { id: 'composer-input', name: 'text', rows: 2, 'aria-label': 'Message', placeholder: 'Write a message' })
  );
  const sendError = h('p', { class: 'error', role: 'alert', id: 'send-error' });
  const composer = /** @type {HTMLFormElement} */ (
    h(
      'form',
      { id: 'composer', class: 'composer' },
      files.button,
      files.input,
      input,
      h('button', { type: 'submit', id: 'send', text: 'Send' }),
      sendError,
      files.list,
      files.error,
    )
  );
  composer.addEventListener('submit', (e) => {
    e.preventDefault();
    void send();
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      void send();
    }
  });

  files.acceptDrops(roomView);

  replace(
    root,
    h(
      'div',
      { id: 'chat', class: 'chat' },
      h(
        'header',
        { class: 'topbar' },
        h('span', { id: 'me', class: 'me', text: state.me.username }),
        status,
        e2eButton,
        sessionsButton,
        adminButton,
        logout,
      ),
      h('div', { class: 'notices' }, e2ePanel, sessionsPanel, invitations),
      h('nav', { class: 'sidebar', 'aria-label': 'Sidebar' }, search.element, newDm, directory, roomList),
      roomView,
      admin?.page,
    ),
  );
  const chat = /** @type {HTMLElement} */ (root.querySelector('#chat'));

  /**
   * Opens or closes the admin page in place of the sidebar and the room.
   * @param {boolean} open
   */
  function toggleAdmin(open) {
    if (!admin || !adminButton) return;
    chat.classList.toggle('admin-open', open);
    adminButton.setAttribute('aria-pressed', String(open));
    if (open) {
      admin.show();
    } else {
      admin.hide();
      adminButton.focus();
    }
  }

  async function send() {
    const roomId = state.openRoomId;
    const text = input.value;
    if (roomId === null || !text.trim()) return;
    sendError.textContent = '';
    if (otr.room(roomId).state === 'established') {
      try {
        if (otr.sendText(roomId, text)) input.value = '';
      } catch (err) {
        sendError.textContent = err instanceof Error ? err.message : String(err);
      }
      return;
    }
    if (otr.takeComposerGuard(roomId)) {
      sendError.textContent = 'OTR has ended. Press Send again to send this as an ordinary, stored message.';
      state.changed();
      return;
    }
    try {
      const msg = rooms.isEncrypted(roomId) ? await rooms.sendText(roomId, text) : await api.sendText(roomId, text);
      input.value = '';
      messages.showNewest();
      state.addMessage(msg);
    } catch (err) {
      sendError.textContent = err instanceof Error ? err.message : String(err);
    }
  }

  /** @param {number} roomId */
  async function openRoom(roomId) {
    if (state.openRoomId !== roomId) otrOpen = false;
    roomMenu.close(false);
    state.openRoomId = roomId;
    const room = state.rooms.get(roomId);
    if (room) room.unread_count = 0;
    state.changed();
    // The keys load alongside the history; messages show "Decrypting…" until they are in.
    if (room?.encrypted) void rooms.refresh(roomId);
    try {
      const page = await api.history(roomId);
      state.setNewestPage(roomId, page);
      markRead(roomId);
    } catch (err) {
      sendError.textContent = err instanceof Error ? err.message : String(err);
    }
    input.focus();
  }

  /** @param {number} roomId */
  function markRead(roomId) {
    const list = state.messages.get(roomId);
    const last = list && list[list.length - 1];
    if (last) api.markRead(roomId, last.id).catch(() => {});
  }

  function renderDirectory() {
    if (!directory.hidden) people.render();
  }

  function renderRooms() {
    replaceKeepingFocus(
      roomList,
      ...state.sortedRooms().map((room) => {
        const peer = state.dmPeer(room);
        const unread = room.unread_count ?? 0;
        const b = h(
          'button',
          {
            type: 'button',
            class: 'room-link',
            'data-room-id': room.id,
            'aria-current': room.id === state.openRoomId ? 'true' : null,
          },
          peer ? presenceDot(peer.presence) : null,
          h('span', { class: 'room-name', text: state.roomTitle(room) }),
          room.encrypted ? e2eKeyIcon(null) : null,
          unread > 0 ? h('span', { class: 'badge', 'aria-label': `${unread} unread`, text: String(unread) }) : null,
        );
        b.addEventListener('click', () => void openRoom(room.id));
        return h('li', {}, b);
      }),
    );
  }

  /** @type {number | null} */
  let renderedRoom = null;
  function renderRoom() {
    const room = state.openRoomId === null ? undefined : state.rooms.get(state.openRoomId);
    if (!room) {
      renderedRoom = null;
      replace(roomView, h('p', { class: 'empty', text: 'Pick a conversation or start a new one.' }));
      return;
    }
    if (renderedRoom !== room.id) {
      renderedRoom = room.id;
      replace(roomView, h('header', { class: 'room-header' }, roomTitle, roomE2eMark, menuButton, menu), panelSlot, roomE2eStatus, messages.element, composer, files.dropHint);
    }
    roomTitle.textContent = state.roomTitle(room);
    if (room.encrypted) {
      if (!roomE2eMark.firstChild) replace(roomE2eMark, e2eKeyIcon(null));
    } else {
      replace(roomE2eMark);
    }
    // Replaced only when it says something new (it holds alerts and buttons).
    const e2eParts = roomStatus(rooms, room.id, () => void openE2ePanel().then(() => focusFirst(e2ePanel)));
    const e2eSaid = e2eParts.map((p) => p.textContent).join('\n');
    if (roomE2eStatus.dataset.said !== e2eSaid) {
      roomE2eStatus.dataset.said = e2eSaid;
      replaceKeepingFocus(roomE2eStatus, ...e2eParts);
    }
    renderMenu();
    const peer = state.dmPeer(room);
    // The panel stays while it has something to say (a session the server just ended).
    const otrState = otr.rooms.get(room.id)?.state ?? 'not_started';
    if (otrOpen && peer && (otrAllowed() || otrState !== 'not_started')) {
      replace(panelSlot, otrPanel(otr, room.id, peer.id, peer.username, e2e.isUnlocked(), otrAllowed()));
    } else {
      replace(panelSlot);
    }
    messages.render(room.id, otr.rooms.get(room.id)?.messages ?? [], peer?.username ?? '');
  }

  function otrAllowed() {
    return state.settings['otr.enabled'] === true;
  }

  function renderMenu() {
    const room = state.openRoomId === null ? undefined : state.rooms.get(state.openRoomId);
    const items = [];
    if (room && room.kind === 'dm' && otrAllowed()) {
      const item = h('button', { type: 'button', role: 'menuitem', id: 'menu-otr', text: 'OTR' });
      item.addEventListener('click', () => {
        otrOpen = true;
        roomMenu.close(false);
        const peer = state.dmPeer(room);
        if (peer) void otr.review(room.id, peer.id);
        state.changed();
        // After the render: the keyboard continues in the panel (else on the menu button).
        queueMicrotask(() => (panelSlot.querySelector('button') ?? menuButton).focus());
      });
      items.push(h('li', {}, item));
    }
    if (!items.length) items.push(h('li', { class: 'empty', text: 'No actions' }));
    replaceKeepingFocus(menu, ...items);
  }

  /** Rooms whose current invitation was already notified. */
  const notified = new Set();
  function renderInvitations() {
    const list = [];
    for (const [roomId, r] of otr.rooms) {
      if (r.state !== 'invited' || r.invitedBy === null) {
        notified.delete(roomId);
        continue;
      }
      const name = state.users.get(r.invitedBy)?.username ?? `user ${r.invitedBy}`;
      list.push(invitation(otr, roomId, name));
      if (!notified.has(roomId)) {
        notified.add(roomId);
        notifyInvitation(roomId, name, () => void openRoom(roomId));
      }
    }
    replace(invitations, ...list);
    document.title = list.length ? `(OTR invitation) Sotto` : 'Sotto';
  }

  function render() {
    renderInvitations();
    status.textContent = state.connection === 'online' ? 'connected' : state.connection;
    status.dataset.status = state.connection;
    renderRooms();
    renderDirectory();
    renderRoom();
  }

  let scheduled = false;
  state.subscribe(() => {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      render();
    });
  });
  render();

  return {
    /** A message arrived live in the open room: mark it read. @param {number} roomId */
    seen(roomId) {
      if (roomId === state.openRoomId && document.visibilityState === 'visible') markRead(roomId);
    },
    /** Opens the E2E key panel with a reason (a remembered key was refused). @param {string} notice */
    askForE2eKey(notice) {
      void openE2ePanel(notice);
    },
    /** Reloads the open room's history (after a reconnect that could not catch up). */
    reloadOpenRoom() {
      if (state.openRoomId !== null) void openRoom(state.openRoomId);
    },
  };
}

/** @param {'online' | 'away' | 'offline'} presence */
function presenceDot(presence) {
  return h('span', { class: `dot ${presence}`, role: 'img', 'aria-label': presence, title: presence });
}

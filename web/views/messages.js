// The open room's message list: stored messages (with their attachments, and Edit / Delete on
// your own), the room's OTR messages from tab memory, and history that loads older pages as
// you scroll up. In an encrypted room each message is decrypted in the page (with the thin E2E
// key icon and the room key it used, or why it cannot be read), files are decrypted into
// `blob:` URLs that are revoked when their message leaves the list, and the membership changes
// are lines of the timeline. A message's node is built once and reused while the message is unchanged, so
// a re-render (a live message, a presence change) never disturbs an edit in progress, the
// focus or the scroll position.

import * as api from '../api.js';
import { h, replace } from './dom.js';
import { otrMessage } from './otr.js';
import { PREVIEWABLE } from '../otr.js';
import { e2eKeyIcon } from './e2e-rooms.js';

/** @typedef {import('../state.js').ChatState} ChatState */
/** @typedef {import('../api.js').Message} Message */
/** @typedef {import('../api.js').UploadInfo} UploadInfo */
/** @typedef {import('../otr.js').OtrMessage} OtrMessage */
/** @typedef {import('../rooms.js').E2eRooms} E2eRooms */
/** @typedef {import('../rooms.js').Decrypted} Decrypted */
/** @typedef {import('../rooms.js').E2eFile} E2eFile */
/** @typedef {import('../api.js').MembershipChange} MembershipChange */

/** How close to the top (in pixels) scrolling has to come before older messages load. */
const LOAD_OLDER_MARGIN = 80;
/** How close to the bottom counts as "at the newest message" (new ones then stay in view). */
const BOTTOM_MARGIN = 4;

/**
 * A size for people: "512 bytes", "3.4 KB", "25 MB".
 * @param {number} bytes
 */
export function formatBytes(bytes) {
  if (bytes < 1000) return `${bytes} bytes`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/**
 * An attachment: the image itself for raster images (which the server serves inline), and
 * for every file a download link named after it.
 * @param {UploadInfo} file
 */
function attachmentView(file) {
  const url = api.uploadUrl(file.id);
  return h(
    'div',
    { class: 'attachment', 'data-upload-id': file.id },
    file.inline ? h('img', { class: 'preview', src: url, alt: file.filename }) : null,
    h('a', { class: 'download', href: url, download: file.filename, text: file.filename }),
    h('span', { class: 'size', text: formatBytes(file.size) }),
  );
}

/** The list of the open room's messages. */
export class MessageList {
  /**
   * @param {ChatState} state
   * @param {E2eRooms} rooms
   */
  constructor(state, rooms) {
    this.state = state;
    this.rooms = rooms;
    // Focusable so the keyboard can scroll it (and so reach the top, which loads more).
    this.element = h('ol', { id: 'messages', class: 'messages', 'aria-label': 'Messages', tabindex: 0 });
    /** The first item: "Load earlier messages", or the beginning-of-the-conversation marker. */
    this.head = h('li', { class: 'history-head', id: 'history-head' });
    // The head's parts are made once and only swapped or relabelled, so a focused button
    // keeps the focus across renders.
    this.loadingFirst = h('span', { class: 'history-loading', text: 'Loading messages…' });
    this.historyStart = h('span', { id: 'history-start', class: 'history-start', text: 'This is the beginning of the conversation.' });
    this.loadEarlier = h('button', { type: 'button', id: 'load-earlier', class: 'load-earlier' });
    this.loadEarlier.addEventListener('click', () => void this.loadOlder());
    this.loadEarlierError = h('span', { class: 'error', role: 'alert' });
    /** @type {number | null} */
    this.roomId = null;
    /** @type {Map<number, {message: Message, author: string, e2e: string, node: HTMLElement}>} */
    this.nodes = new Map();
    /** @type {Map<string, HTMLElement>} membership lines of an encrypted room, by change */
    this.systemNodes = new Map();
    /**
     * Decrypted files of the open room as `blob:` URLs, by upload id: made once (a message's
     * node can be rebuilt), revoked when no shown message carries the file any more.
     * @type {Map<number, Promise<string>>}
     */
    this.blobUrls = new Map();
    /**
     * OTR messages' nodes by id. Their objects change in place (delivered, a file's bytes
     * released), so a node is reused only while the message serialises the same.
     * @type {Map<string, {signature: string, node: HTMLElement}>}
     */
    this.otrNodes = new Map();
    /** @type {Set<number>} messages with an edit or a delete confirmation open: their node is kept as is */
    this.busy = new Set();
    this.loadingOlder = false;
    this.olderError = '';
    /** Whether the list was scrolled to its newest message when last looked at. */
    this.atBottom = true;
    /** @type {{id: number, selector: string} | null} what to focus once a message is re-rendered */
    this.focusAfterRender = null;
    /** @type {OtrMessage[]} */
    this.otrMessages = [];
    this.peerName = '';
    // An image that finishes loading grows the list ('load' does not bubble, so capture it).
    this.element.addEventListener('load', () => this.imageLoaded(), true);
    this.element.addEventListener('scroll', () => {
      this.atBottom = this.isAtBottom();
      this.maybeLoadOlder();
    });
  }

  /** The next render shows the newest message (after sending one, wherever the reader was). */
  showNewest() {
    this.atBottom = true;
  }

  isAtBottom() {
    const el = this.element;
    return el.scrollTop + el.clientHeight >= el.scrollHeight - BOTTOM_MARGIN;
  }

  /**
   * Renders the room's messages (merging its OTR messages by time).
   * @param {number} roomId
   * @param {OtrMessage[]} otrMessages
   * @param {string} peerName the DM peer's name, for OTR messages
   */
  render(roomId, otrMessages, peerName) {
    if (this.roomId !== roomId) {
      this.roomId = roomId;
      this.nodes.clear();
      this.systemNodes.clear();
      this.revokeFiles(new Set());
      this.otrNodes.clear();
      this.busy.clear();
      this.loadingOlder = false;
      this.olderError = '';
      this.atBottom = true;
    }
    this.otrMessages = otrMessages;
    this.peerName = peerName;
    const stick = this.atBottom;
    const anchor = stick ? null : this.visibleAnchor();

    const messages = this.state.messages.get(roomId) ?? [];
    /** @type {{at: number, node: HTMLElement}[]} */
    // Both in milliseconds since the epoch: the server's created_at and the OTR side's Date.now().
    const items = messages.map((m) => ({ at: m.created_at, node: this.nodeFor(m) }));
    const stored = new Set(messages.map((m) => m.id));
    for (const id of [...this.nodes.keys()]) {
      if (!stored.has(id)) {
        this.nodes.delete(id);
        this.busy.delete(id);
      }
    }
    if (this.blobUrls.size) {
      const shown = new Set([...this.nodes.values()].map((n) => Number(n.node.querySelector('.e2e-file')?.getAttribute('data-upload-id'))));
      this.revokeFiles(shown);
    }
    items.push(...this.systemLines(roomId));
    /** @type {Map<string, {signature: string, node: HTMLElement}>} */
    const otrNodes = new Map();
    for (const m of otrMessages) {
      const author = m.mine ? this.state.me.username : peerName;
      const signature = JSON.stringify([author, m]);
      const cached = this.otrNodes.get(m.id);
      const node = cached && cached.signature === signature ? cached.node : /** @type {HTMLElement} */ (otrMessage(m, author));
      otrNodes.set(m.id, { signature, node });
      items.push({ at: m.at, node });
    }
    this.otrNodes = otrNodes;
    items.sort((a, b) => a.at - b.at);
    this.renderHead();
    this.reconcile([this.head, ...items.map((i) => i.node)]);

    if (stick) {
      this.element.scrollTop = this.element.scrollHeight;
    } else if (anchor && anchor.node.isConnected) {
      // Keep what the reader was looking at where it was (older pages land above it).
      this.element.scrollTop += this.offsetOf(anchor.node) - anchor.offset;
    }
    this.atBottom = this.isAtBottom();
    this.restoreFocus();
    this.maybeLoadOlder();
  }

  /** Re-renders with what the last render had (after a change that is only this view's). */
  refresh() {
    if (this.roomId !== null) this.render(this.roomId, this.otrMessages, this.peerName);
  }

  /** @param {HTMLElement} node its top relative to the list's visible top */
  offsetOf(node) {
    return node.getBoundingClientRect().top - this.element.getBoundingClientRect().top;
  }

  /** The first message at least partly in view, and where it is. */
  visibleAnchor() {
    for (const child of this.element.children) {
      if (child === this.head || !(child instanceof HTMLElement)) continue;
      const rect = child.getBoundingClientRect();
      if (rect.bottom > this.element.getBoundingClientRect().top) return { node: child, offset: this.offsetOf(child) };
    }
    return null;
  }

  /**
   * Makes the list's children exactly `nodes`, moving as few as possible: removed nodes go
   * first, then each node is inserted only where it is not already in place (a node that
   * stays is never detached, so it keeps focus and typed text).
   * @param {HTMLElement[]} nodes
   */
  reconcile(nodes) {
    const keep = new Set(nodes);
    for (const child of [...this.element.children]) {
      if (!keep.has(/** @type {HTMLElement} */ (child))) child.remove();
    }
    let cursor = this.element.firstElementChild;
    for (const node of nodes) {
      if (node === cursor) {
        cursor = cursor.nextElementSibling;
      } else {
        this.element.insertBefore(node, cursor);
      }
    }
  }

  renderHead() {
    if (this.roomId === null) return;
    const cursor = this.state.olderCursor.get(this.roomId);
    /** @type {HTMLElement[]} */
    let parts;
    if (cursor === undefined) {
      parts = [this.loadingFirst];
    } else if (cursor === null) {
      parts = [this.historyStart];
    } else {
      this.loadEarlier.textContent = this.loadingOlder ? 'Loading earlier messages…' : 'Load earlier messages';
      this.loadEarlier.setAttribute('aria-busy', String(this.loadingOlder));
      this.loadEarlierError.textContent = this.olderError;
      parts = this.olderError ? [this.loadEarlier, this.loadEarlierError] : [this.loadEarlier];
    }
    const current = [...this.head.children];
    if (current.length !== parts.length || parts.some((p, i) => current[i] !== p)) replace(this.head, ...parts);
  }

  /** Loads the next older page when the top of the list is (nearly) in view. */
  maybeLoadOlder() {
    if (this.roomId === null || this.loadingOlder || this.olderError) return;
    if (typeof this.state.olderCursor.get(this.roomId) !== 'string') return;
    // Also when the list is too short to scroll at all: nothing else would ever load more.
    if (this.element.scrollTop > LOAD_OLDER_MARGIN) return;
    void this.loadOlder();
  }

  async loadOlder() {
    const roomId = this.roomId;
    if (roomId === null || this.loadingOlder) return;
    const cursor = this.state.olderCursor.get(roomId);
    if (typeof cursor !== 'string') return;
    this.loadingOlder = true;
    this.olderError = '';
    this.refresh();
    try {
      const page = await api.historyBefore(roomId, cursor);
      this.loadingOlder = false;
      // Unless the room was opened afresh meanwhile (its newest page reset the cursor), the
      // page belongs to the room's history, even if the reader has moved to another room.
      if (this.state.olderCursor.get(roomId) === cursor) this.state.addOlderPage(roomId, page);
      else this.refresh();
    } catch (err) {
      this.loadingOlder = false;
      // Shown by the button, which retries; no automatic retry loop.
      this.olderError = `Could not load earlier messages: ${err instanceof Error ? err.message : String(err)}`;
      this.refresh();
    }
  }

  /** @param {Message} msg */
  authorName(msg) {
    if (msg.author_id === this.state.me.id) return this.state.me.username;
    return this.state.users.get(msg.author_id)?.username ?? `user ${msg.author_id}`;
  }

  /**
   * The membership changes of an encrypted room as timeline lines ("alice added carol"), so
   * a member the server adds on its own is seen by everyone.
   * @param {number} roomId
   * @returns {{at: number, node: HTMLElement}[]}
   */
  systemLines(roomId) {
    const changes = this.rooms.isEncrypted(roomId) ? (this.rooms.info(roomId)?.changes ?? []) : [];
    /** @type {Map<string, HTMLElement>} */
    const nodes = new Map();
    const lines = changes.map((c) => {
      const text = this.changeText(c);
      const key = `${c.epoch}:${c.kind}:${c.user_id}:${text}`;
      const node = this.systemNodes.get(key) ?? h('li', { class: 'system-line', 'data-epoch': c.epoch, 'data-kind': c.kind, 'data-user-id': c.user_id, text });
      nodes.set(key, node);
      return { at: c.at, node };
    });
    this.systemNodes = nodes;
    return lines;
  }

  /** @param {MembershipChange} c */
  changeText(c) {
    const who = this.rooms.nameOf(c.user_id);
    const by = c.actor_id === null || c.actor_id === undefined ? null : this.rooms.nameOf(c.actor_id);
    switch (c.kind) {
      case 'created':
        return by === null || c.actor_id === c.user_id ? `${who} created the room.` : `${who} is a member (the room was created by ${by}).`;
      case 'added':
        return by === null ? `${who} was added (by the server).` : `${by} added ${who}.`;
      case 'removed':
        return by === null ? `${who} was removed (by the server).` : `${by} removed ${who}.`;
      case 'left':
        return `${who} left.`;
      default:
        return `Membership changed: ${who}.`;
    }
  }

  /**
   * The node of a stored message: the cached one while the message, its author's name and
   * its decryption are unchanged (or while it is being edited), else a new one.
   * @param {Message} msg
   */
  nodeFor(msg) {
    const author = this.authorName(msg);
    const decrypted = msg.body.type === 'encrypted' ? this.rooms.decrypt(msg) : null;
    const e2e = msg.body.type === 'encrypted' ? JSON.stringify(decrypted) : '';
    const cached = this.nodes.get(msg.id);
    if (cached && (this.busy.has(msg.id) || (cached.message === msg && cached.author === author && cached.e2e === e2e))) return cached.node;
    const node = this.messageNode(msg, author, decrypted);
    this.nodes.set(msg.id, { message: msg, author, e2e, node });
    return node;
  }

  /**
   * @param {Message} msg
   * @param {string} author
   * @param {Decrypted | null} decrypted for an encrypted message (null: not yet)
   */
  messageNode(msg, author, decrypted) {
    const at = new Date(msg.created_at); // the server's milliseconds
    const error = h('p', { class: 'error message-error', role: 'alert' });
    /** @type {(HTMLElement | SVGElement | null)[]} */
    let body;
    let encrypted = false;
    if (msg.body.type === 'text') {
      body = [h('p', { class: 'text', text: msg.body.text }), msg.attachment ? attachmentView(msg.attachment) : null];
    } else if (decrypted === null) {
      encrypted = true;
      body = [h('p', { class: 'text e2e-pending', text: 'Decrypting…' })];
    } else if (!decrypted.ok) {
      encrypted = true;
      body = [h('p', { class: 'text e2e-failed', 'data-code': decrypted.code, text: `Cannot decrypt this message: ${decrypted.reason}.` })];
    } else {
      encrypted = true;
      const { text, file } = decrypted.content;
      body = [text || !file ? h('p', { class: 'text', text: text ?? '' }) : null, file ? this.encryptedFile(file) : null];
    }
    const node = h(
      'li',
      { class: encrypted ? 'message e2e' : 'message', 'data-message-id': msg.id, 'data-key-id': decrypted?.ok ? decrypted.keyId : null },
      encrypted ? e2eKeyIcon(decrypted?.ok ? decrypted.keyId : null) : null,
      h('span', { class: 'author', text: author }),
      h('time', { datetime: at.toISOString(), text: at.toLocaleTimeString() }),
      msg.edited_at ? h('span', { class: 'edited', text: '(edited)' }) : null,
      ...body,
    );
    if (msg.author_id === this.state.me.id) node.append(this.actions(msg, node, error, decrypted));
    node.append(error);
    return node;
  }

  /**
   * Revokes the decrypted files' URLs except those of `keep` (upload ids).
   * @param {Set<number>} keep
   */
  revokeFiles(keep) {
    for (const [id, url] of this.blobUrls) {
      if (keep.has(id)) continue;
      this.blobUrls.delete(id);
      url.then((u) => URL.revokeObjectURL(u), () => {});
    }
  }

  /**
   * A file of an encrypted room: downloaded and decrypted in the page into a `blob:` URL (a
   * raster image is previewed from it), with a download link named after the file.
   * @param {E2eFile} file
   */
  encryptedFile(file) {
    const link = h('a', { class: 'download', download: file.name, text: file.name, 'aria-busy': 'true' });
    const status = h('span', { class: 'hint e2e-file-status', text: 'Decrypting…' });
    const box = h('div', { class: 'attachment e2e-file', 'data-upload-id': file.upload_id }, link, h('span', { class: 'size', text: formatBytes(file.size) }), status);
    let url = this.blobUrls.get(file.upload_id);
    if (!url) {
      url = this.rooms.openFile(file).then((blob) => URL.createObjectURL(blob));
      this.blobUrls.set(file.upload_id, url);
    }
    url.then(
      (href) => {
        link.setAttribute('href', href);
        link.removeAttribute('aria-busy');
        status.remove();
        if (PREVIEWABLE.has(file.type)) box.prepend(h('img', { class: 'preview', src: href, alt: file.name }));
      },
      (err) => {
        link.removeAttribute('aria-busy');
        status.textContent = `Could not decrypt the file: ${err instanceof Error ? err.message : String(err)}`;
        status.className = 'error e2e-file-status';
      },
    );
    return box;
  }

  /** An image grew the list: stay at the newest message if that is where the reader was. */
  imageLoaded() {
    if (this.atBottom) this.element.scrollTop = this.element.scrollHeight;
  }

  /**
   * Edit and Delete for one of the caller's own messages.
   * @param {Message} msg
   * @param {HTMLElement} node
   * @param {HTMLElement} error
   * @param {Decrypted | null} decrypted
   */
  actions(msg, node, error, decrypted) {
    const bar = h('div', { class: 'message-actions' });
    const edit = h('button', { type: 'button', class: 'edit-message', 'aria-label': 'Edit message', text: 'Edit' });
    const del = h('button', { type: 'button', class: 'delete-message', 'aria-label': 'Delete message', text: 'Delete' });
    // An encrypted message is edited only once the page could read it (it is re-encrypted).
    const current = msg.body.type === 'text' ? msg.body.text : decrypted?.ok ? (decrypted.content.text ?? '') : null;
    if (current !== null) bar.append(edit);
    bar.append(del);
    edit.addEventListener('click', () => {
      if (current !== null) this.startEdit(msg, current, node, bar, error);
    });
    del.addEventListener('click', () => this.confirmDelete(msg, bar, error));
    return bar;
  }

  /**
   * Turns the message's text into an editor: Enter (or Save) saves, Escape (or Cancel) puts
   * the message back as it was. An encrypted message is saved re-encrypted.
   * @param {Message} msg
   * @param {string} current the text as shown
   * @param {HTMLElement} node
   * @param {HTMLElement} bar
   * @param {HTMLElement} error
   */
  startEdit(msg, current, node, bar, error) {
    const textNode = /** @type {HTMLElement | null} */ (node.querySelector('.text'));
    const input = /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'edit-input', rows: 2, 'aria-label': 'Edit message' }));
    input.value = current;
    const save = h('button', { type: 'submit', class: 'edit-save', text: 'Save' });
    const cancel = h('button', { type: 'button', class: 'edit-cancel', text: 'Cancel' });
    const form = /** @type {HTMLFormElement} */ (h('form', { class: 'edit-form' }, input, save, cancel));
    this.busy.add(msg.id);
    error.textContent = '';
    if (textNode) textNode.hidden = true;
    bar.hidden = true;
    node.insertBefore(form, bar);
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);

    const close = () => {
      form.remove();
      if (textNode) textNode.hidden = false;
      bar.hidden = false;
      this.busy.delete(msg.id);
      this.focusAfterRender = { id: msg.id, selector: '.edit-message' };
      // A newer version may have arrived while editing.
      this.refresh();
    };
    const submit = async () => {
      const text = input.value;
      if (text === current) {
        close();
        return;
      }
      save.setAttribute('disabled', '');
      error.textContent = '';
      try {
        const updated =
          msg.body.type === 'encrypted' ? await this.rooms.editText(msg, text) : await api.editMessage(msg.id, { type: 'text', text });
        this.busy.delete(msg.id);
        this.focusAfterRender = { id: msg.id, selector: '.edit-message' };
        this.state.editMessage(updated);
      } catch (err) {
        save.removeAttribute('disabled');
        error.textContent = `Could not save the edit: ${err instanceof Error ? err.message : String(err)}`;
        input.focus();
      }
    };
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void submit();
    });
    cancel.addEventListener('click', close);
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) {
        e.preventDefault();
        void submit();
      } else if (e.key === 'Escape') {
        e.preventDefault();
        close();
      }
    });
  }

  /**
   * Asks before deleting: "Delete this message?" with Delete and Cancel.
   * @param {Message} msg
   * @param {HTMLElement} bar
   * @param {HTMLElement} error
   */
  confirmDelete(msg, bar, error) {
    const yes = h('button', { type: 'button', class: 'delete-confirm', text: 'Delete' });
    const no = h('button', { type: 'button', class: 'delete-cancel', text: 'Cancel' });
    const question = h('div', { class: 'delete-question', role: 'group', 'aria-label': 'Confirm deletion' }, h('span', { text: 'Delete this message?' }), yes, no);
    this.busy.add(msg.id);
    error.textContent = '';
    bar.hidden = true;
    bar.after(question);
    no.focus();
    const close = () => {
      question.remove();
      bar.hidden = false;
      this.busy.delete(msg.id);
      this.focusAfterRender = { id: msg.id, selector: '.delete-message' };
      this.refresh();
    };
    no.addEventListener('click', close);
    question.addEventListener('keydown', (e) => {
      if (e.key !== 'Escape') return;
      e.preventDefault();
      close();
    });
    yes.addEventListener('click', async () => {
      yes.setAttribute('disabled', '');
      try {
        await api.deleteMessage(msg.id);
        this.busy.delete(msg.id);
        // The list keeps focus rather than dropping it on the body.
        this.element.focus();
        this.state.removeMessage(msg.room_id, msg.id);
      } catch (err) {
        yes.removeAttribute('disabled');
        error.textContent = `Could not delete the message: ${err instanceof Error ? err.message : String(err)}`;
      }
    });
  }

  restoreFocus() {
    const want = this.focusAfterRender;
    if (!want) return;
    this.focusAfterRender = null;
    const button = this.nodes.get(want.id)?.node.querySelector(want.selector);
    if (button instanceof HTMLElement) button.focus();
  }
}

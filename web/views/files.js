// Sending files into the open room: the attach button (a hidden file input behind it), drag
// and drop onto the room with a visible hint, one progress bar with Cancel per upload, and
// the errors. Off the record, a file never goes to the (stored) upload endpoint: it is handed
// to the OTR conversation instead.

import * as api from '../api.js';
import { h } from './dom.js';
import { formatBytes } from './messages.js';

/** @typedef {import('../state.js').ChatState} ChatState */
/** @typedef {import('../otr.js').OtrConversations} OtrConversations */
/** @typedef {import('../rooms.js').E2eRooms} E2eRooms */
/**
 * What web/otr.js offers for files sent off the record (implemented there, on the OTR side).
 * @typedef {{sendFile(roomId: number, file: File): Promise<void>}} OtrFileSending
 */

/** The attach controls, the drop target and the uploads in progress of the room view. */
export class FileSender {
  /**
   * @param {ChatState} state
   * @param {OtrConversations} otr
   * @param {E2eRooms} rooms
   */
  constructor(state, otr, rooms) {
    this.state = state;
    this.otr = otr;
    this.rooms = rooms;
    this.input = /** @type {HTMLInputElement} */ (h('input', { type: 'file', id: 'attach-input', class: 'attach-input', multiple: true, hidden: true, tabindex: -1 }));
    this.button = h('button', { type: 'button', id: 'attach-button', class: 'attach-button', 'aria-label': 'Attach files', 'aria-controls': 'uploads', text: 'Attach' });
    /** The uploads in progress, each with its bar and Cancel. */
    this.list = h('ul', { id: 'uploads', class: 'uploads', 'aria-label': 'Uploads', 'aria-live': 'polite' });
    this.error = h('p', { id: 'upload-error', class: 'error', role: 'alert' });
    this.dropHint = h('div', { id: 'drop-hint', class: 'drop-hint', hidden: true, text: 'Drop files to send them here' });

    this.button.addEventListener('click', () => this.input.click());
    this.input.addEventListener('change', () => {
      const files = [...(this.input.files ?? [])];
      // Cleared so that choosing the same file again is a change too.
      this.input.value = '';
      this.sendAll(files);
    });
  }

  /**
   * Makes `target` (the room view) accept dropped files. The hint shows while files are
   * dragged over it; a counter, because dragenter/dragleave fire for every child crossed.
   * @param {HTMLElement} target
   */
  acceptDrops(target) {
    let depth = 0;
    /** @param {DragEvent} e */
    const carriesFiles = (e) => !!e.dataTransfer && [...e.dataTransfer.types].includes('Files');
    const show = (/** @type {boolean} */ on) => {
      this.dropHint.hidden = !on;
      target.classList.toggle('dropping', on);
    };
    target.addEventListener('dragenter', (e) => {
      if (!carriesFiles(e) || this.state.openRoomId === null) return;
      e.preventDefault();
      depth += 1;
      show(true);
    });
    target.addEventListener('dragover', (e) => {
      if (!carriesFiles(e) || this.state.openRoomId === null) return;
      // Without this the browser would open the file instead of dropping it here.
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
    });
    target.addEventListener('dragleave', (e) => {
      if (!carriesFiles(e)) return;
      depth = Math.max(0, depth - 1);
      if (depth === 0) show(false);
    });
    // A file dropped anywhere else must not make the browser leave the chat to open it.
    for (const type of ['dragover', 'drop']) {
      window.addEventListener(type, (e) => {
        if (!(e instanceof DragEvent) || !carriesFiles(e) || e.defaultPrevented) return;
        e.preventDefault();
        if (e.dataTransfer) e.dataTransfer.dropEffect = 'none';
      });
    }
    target.addEventListener('drop', (e) => {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      depth = 0;
      show(false);
      this.sendAll([...(e.dataTransfer?.files ?? [])]);
    });
  }

  /** @param {File[]} files */
  sendAll(files) {
    const roomId = this.state.openRoomId;
    if (roomId === null || !files.length) return;
    this.error.textContent = '';
    for (const file of files) void this.send(roomId, file);
  }

  /**
   * Sends one file into a room: off the record through the OTR channel, else uploaded (with
   * progress and Cancel) and then attached to a new message.
   * @param {number} roomId
   * @param {File} file
   */
  async send(roomId, file) {
    if (this.otr.room(roomId).state === 'established') {
      try {
        await /** @type {OtrConversations & OtrFileSending} */ (this.otr).sendFile(roomId, file);
      } catch (err) {
        this.showError(`Could not send “${file.name}” off the record: ${message(err)}`);
      }
      return;
    }
    const limit = Number(this.state.settings['uploads.max_bytes']);
    if (Number.isFinite(limit) && limit > 0 && file.size > limit) {
      this.showError(`“${file.name}” is too large to send: it is ${formatBytes(file.size)}, and files can be at most ${formatBytes(limit)}.`);
      return;
    }

    const bar = /** @type {HTMLProgressElement} */ (h('progress', { class: 'upload-progress', max: file.size || 1, value: 0, 'aria-label': `Uploading ${file.name}` }));
    const status = h('span', { class: 'upload-status', text: `0 of ${formatBytes(file.size)}` });
    const cancel = h('button', { type: 'button', class: 'upload-cancel', 'aria-label': `Cancel uploading ${file.name}`, text: 'Cancel' });
    const entry = h('li', { class: 'upload' }, h('span', { class: 'upload-name', text: file.name }), bar, status, cancel);
    this.list.append(entry);

    const encrypted = this.rooms.isEncrypted(roomId);
    let cancelled = false;
    /** @type {(() => void) | null} */
    let abort = null;
    cancel.addEventListener('click', () => {
      cancelled = true;
      abort?.();
    });
    /**
     * Uploads `body` (the file, or in an encrypted room its ciphertext) with progress.
     * @param {File} body
     */
    const upload = async (body) => {
      if (cancelled) throw new api.UploadCancelled();
      const running = api.uploadFile(
        roomId,
        body,
        (sent, total) => {
          // `total` counts the multipart framing too; the bar shows the share of it sent.
          bar.max = total;
          bar.value = sent;
          status.textContent = `${formatBytes(Math.min(file.size, Math.round((sent / total) * file.size)))} of ${formatBytes(file.size)}`;
        },
        encrypted,
      );
      abort = running.cancel;
      const info = await running.done;
      bar.value = bar.max;
      cancel.setAttribute('disabled', '');
      return info;
    };
    try {
      // In an encrypted room the file is encrypted in the page with its own key, and the
      // encrypted message carries that key.
      const msg = encrypted ? await this.rooms.sendFile(roomId, file, upload) : await api.sendAttachment(roomId, (await upload(file)).id, '');
      this.state.addMessage(msg);
    } catch (err) {
      if (!(err instanceof api.UploadCancelled)) this.showError(`Could not send “${file.name}”: ${message(err)}`);
    } finally {
      entry.remove();
    }
  }

  /** @param {string} text */
  showError(text) {
    this.error.textContent = text;
  }
}

/** @param {unknown} err */
function message(err) {
  return err instanceof Error ? err.message : String(err);
}

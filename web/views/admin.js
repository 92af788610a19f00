// The administration page (admins only; the server refuses everyone else whatever the page
// shows): the settings form, the user list with Deactivate, and invite links. It takes the
// place of the sidebar and the room while open; the chat keeps running underneath.

import * as api from '../api.js';
import { h, replace } from './dom.js';
import { describeError, showSettingsForm } from './settings-form.js';

/** @typedef {import('../api.js').User} User */

/**
 * Builds the page (hidden); `show()` loads it, `hide()` clears what should not linger.
 * @param {User} me
 * @param {() => void} onEscape asked to close the page (Escape pressed inside it)
 */
export function createAdminPage(me, onEscape) {
  const heading = h('h1', { id: 'admin-title', tabindex: -1, text: 'Administration' });
  const settings = h('section', { id: 'admin-settings', class: 'admin-card', 'aria-label': 'Settings' });
  const users = h('section', { id: 'admin-users', class: 'admin-card', 'aria-label': 'Users' });
  const invites = h('section', { id: 'admin-invites', class: 'admin-card', 'aria-label': 'Invite links' });
  const confirm = deactivationDialog();
  const page = h('section', { id: 'admin', class: 'admin', hidden: true, 'aria-labelledby': 'admin-title' }, heading, settings, users, invites, confirm.dialog);
  page.addEventListener('keydown', (e) => {
    // Escape in the confirmation dialog closes only the dialog (the browser does that).
    if (e.key !== 'Escape' || (e.target instanceof Node && confirm.dialog.contains(e.target))) return;
    e.preventDefault();
    onEscape();
  });

  /** Renders the user list from the server. */
  async function showUsers() {
    const title = h('h2', { id: 'admin-users-title', tabindex: -1, text: 'Users' });
    const error = h('p', { class: 'error', role: 'alert', id: 'users-error' });
    const status = h('p', { class: 'status', role: 'status', id: 'users-status' });
    replace(users, title, h('p', { class: 'empty', text: 'Loading users…' }));
    /** @type {User[]} */
    let list;
    try {
      list = await api.users();
    } catch (err) {
      error.textContent = describeError(err);
      replace(users, title, error);
      return;
    }
    const rows = list
      .slice()
      .sort((a, b) => a.username.localeCompare(b.username))
      .map((u) => {
        /** @type {HTMLElement | null} */
        let action = null;
        if (u.id !== me.id) {
          action = h('button', { type: 'button', class: 'danger', 'data-user-id': u.id, 'aria-label': `Deactivate ${u.username}`, text: 'Deactivate' });
          action.addEventListener('click', async () => {
            if (!(await confirm.ask(u.username))) return;
            error.textContent = '';
            try {
              await api.deactivateUser(u.id);
              row.remove();
              status.textContent = `${u.username} was deactivated: logged out everywhere, and can no longer log in.`;
            } catch (err) {
              error.textContent = describeError(err);
            }
            // The button is gone (or the dialog took focus): keep the keyboard in the list.
            title.focus();
          });
        }
        const row = h(
          'li',
          { class: 'admin-user', 'data-user-id': u.id },
          h('span', { class: 'username', text: u.username }),
          u.is_admin ? h('span', { class: 'tag', text: 'admin' }) : null,
          u.id === me.id ? h('span', { class: 'tag', text: 'you' }) : null,
          action,
        );
        return row;
      });
    replace(users, title, h('ul', { class: 'admin-users', id: 'admin-user-list' }, ...rows), status, error);
  }

  function showInvites() {
    const error = h('p', { class: 'error', role: 'alert', id: 'invite-error' });
    const result = h('div', { class: 'invite', id: 'invite-result' });
    const create = h('button', { type: 'button', id: 'create-invite', text: 'Create invite link' });
    create.addEventListener('click', async () => {
      error.textContent = '';
      try {
        const invite = await api.createInvite();
        replace(result, ...inviteLink(invite));
        result.querySelector('input')?.focus();
      } catch (err) {
        error.textContent = describeError(err);
      }
    });
    replace(
      invites,
      h('h2', { text: 'Invite links' }),
      h('p', { class: 'help', text: 'A link registers one account. Send it to the person privately: whoever has it can use it.' }),
      create,
      result,
      error,
    );
  }

  return {
    page,
    /** Shows the page with fresh data and moves the focus to its title. */
    show() {
      page.hidden = false;
      heading.focus();
      void showSettingsForm(settings);
      void showUsers();
      showInvites();
    },
    /** Hides the page; an invite link shown is removed (it is a credential). */
    hide() {
      page.hidden = true;
      confirm.dialog.close();
      replace(invites);
    },
  };
}

/**
 * The link of a fresh invite as selectable text, with a Copy button and its expiry.
 * @param {import('../api.js').Invite} invite
 * @returns {HTMLElement[]}
 */
function inviteLink(invite) {
  const input = /** @type {HTMLInputElement} */ (h('input', { id: 'invite-url', type: 'text', readonly: true, value: invite.url, 'aria-describedby': 'invite-expiry' }));
  input.addEventListener('focus', () => input.select());
  const copied = h('span', { class: 'status', role: 'status', id: 'invite-copied' });
  const copy = h('button', { type: 'button', id: 'copy-invite', text: 'Copy' });
  copy.addEventListener('click', async () => {
    copied.textContent = (await copyText(input)) ? 'Copied.' : 'Select the link and copy it.';
  });
  return [
    h('label', { class: 'field', for: 'invite-url' }, h('span', { text: 'Invite link' })),
    h('div', { class: 'copy-row' }, input, copy),
    h('p', { class: 'help', id: 'invite-expiry', text: `Valid until ${new Date(invite.expires_at).toLocaleString()}, for one registration.` }),
    copied,
  ];
}

/**
 * Copies the input's text; returns whether it worked. The Clipboard API exists only in secure
 * contexts (HTTPS or localhost); elsewhere the selection is copied the old way.
 * @param {HTMLInputElement} input
 */
async function copyText(input) {
  try {
    if (navigator.clipboard) {
      await navigator.clipboard.writeText(input.value);
      return true;
    }
  } catch {
    // Denied (no permission, or the page is not focused): fall through.
  }
  input.focus();
  input.select();
  return document.execCommand('copy');
}

/**
 * The "Deactivate <name>?" dialog. A modal <dialog> traps the focus, starts on Cancel (the
 * safe answer) and closes on Escape.
 */
function deactivationDialog() {
  const question = h('h2', { id: 'deactivate-question' });
  const yes = h('button', { type: 'button', class: 'danger', id: 'deactivate-confirm', text: 'Deactivate' });
  const no = h('button', { type: 'button', id: 'deactivate-cancel', text: 'Cancel' });
  const dialog = /** @type {HTMLDialogElement} */ (
    h(
      'dialog',
      { id: 'deactivate-dialog', class: 'dialog', 'aria-labelledby': 'deactivate-question' },
      question,
      h('p', { text: 'They are logged out everywhere at once and can no longer log in. Their messages stay.' }),
      h('div', { class: 'actions' }, no, yes),
    )
  );
  yes.addEventListener('click', () => dialog.close('yes'));
  no.addEventListener('click', () => dialog.close('no'));
  return {
    dialog,
    /**
     * Asks; resolves true only for an explicit "Deactivate".
     * @param {string} username
     * @returns {Promise<boolean>}
     */
    ask(username) {
      question.textContent = `Deactivate ${username}?`;
      dialog.returnValue = '';
      dialog.showModal();
      no.focus();
      return new Promise((resolve) => {
        dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes'), { once: true });
      });
    },
  };
}

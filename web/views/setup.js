// First-run page: create the admin with the one-time set-up token from the link the server
// printed (`/setup#<token>`).

import { setup } from '../api.js';
import { field, h, replace, value } from './dom.js';

/**
 * @param {HTMLElement} root
 * @param {(session: import('../api.js').Session) => void} done
 */
export function showSetup(root, done) {
  const token = decodeURIComponent(location.hash.slice(1));
  const error = h('p', { class: 'error', role: 'alert', id: 'setup-error' });
  const form = /** @type {HTMLFormElement} */ (
    h(
      'form',
      { class: 'card', id: 'setup-form' },
      h('h1', { text: 'Set up Sotto' }),
      h('p', { text: 'Create the first administrator account.' }),
      field('Username', { name: 'username', autocomplete: 'username', required: true }),
      field('Password', { name: 'password', type: 'password', autocomplete: 'new-password', required: true }),
      error,
      h('button', { type: 'submit', text: 'Create admin' }),
    )
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    if (!token) {
      error.textContent = 'This page needs the set-up link the server printed (it ends in #<token>).';
      return;
    }
    try {
      const session = await setup(token, value(form, 'username'), value(form, 'password'));
      history.replaceState(null, '', '/');
      done(session);
    } catch (err) {
      error.textContent = err instanceof Error ? err.message : String(err);
    }
  });
  replace(root, form);
}

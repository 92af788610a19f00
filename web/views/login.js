// The log-in page.

import { login } from '../api.js';
import { field, h, replace, value } from './dom.js';

/**
 * @param {HTMLElement} root
 * @param {(session: import('../api.js').Session) => void} done
 */
export function showLogin(root, done) {
  const error = h('p', { class: 'error', role: 'alert', id: 'login-error' });
  const form = /** @type {HTMLFormElement} */ (
    h(
      'form',
      { class: 'card', id: 'login-form' },
      h('h1', { text: 'Log in to Sotto' }),
      field('Username', { name: 'username', autocomplete: 'username', required: true }),
      field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
      error,
      h('button', { type: 'submit', text: 'Log in' }),
    )
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    try {
      done(await login(value(form, 'username'), value(form, 'password')));
    } catch (err) {
      error.textContent = err instanceof Error ? err.message : String(err);
    }
  });
  replace(root, form);
}

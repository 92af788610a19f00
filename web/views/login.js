// The log-in page.

import { login } from '../api.js';
import { field, h, replace, value } from './dom.js';

/**
 * @param {HTMLElement} root
 * @param {(session: import('../api.js').Session) => void} done
 * @param {{notice?: string | null, footer?: Node | null}} [extras] a notice above the form
 *   (why the user is here again), and what follows it (how to get an account)
 */
export function showLogin(root, done, extras = {}) {
  const error = h('p', { class: 'error', role: 'alert', id: 'login-error' });
  const form = /** @type {HTMLFormElement} */ (
    h(
      'form',
      { class: 'card', id: 'login-form' },
      h('h1', { text: 'Log in to Sotto' }),
      extras.notice ? h('p', { class: 'notice', role: 'status', id: 'login-notice', text: extras.notice }) : null,
      field('Username', { name: 'username', autocomplete: 'username', required: true }),
      field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
      error,
      h('button', { type: 'submit', text: 'Log in' }),
      extras.footer ?? null,
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

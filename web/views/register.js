// Getting in without a session: the log-in page with what the registration policy allows
// (a "Create an account" button when registration is open, a sentence otherwise), and the
// register form, reached from that button or from an invite link (`/register#<token>`).

import * as api from '../api.js';
import { field, h, replace, value } from './dom.js';
import { showLogin } from './login.js';

/** @typedef {'open' | 'invite_only' | 'closed'} RegistrationPolicy */
/** @typedef {(session: api.Session) => void} SignedIn */

/**
 * What to show. `register`: the register form (from `/register`); `inviteToken`: the token of
 * the invite link, already taken out of the address bar; `signedInAs`: the account this browser
 * is logged in as, if any (it must log out before registering another); `notice`: why the user
 * sees the log-in page again (a session that ended).
 * @typedef {{register?: boolean, inviteToken?: string | null, signedInAs?: string | null,
 *   notice?: string | null}} EntryOptions
 */

/** Friendlier words for the errors a registration can meet, by the server's stable code. */
const REGISTER_ERRORS = /** @type {Record<string, string>} */ ({
  username_taken: 'This username is taken. Pick another one.',
  invalid_invite: 'This invite link cannot be used: it was used already, has expired, or is incomplete. Ask an administrator for a new one.',
  invite_required: 'Creating an account needs an invite link from an administrator.',
  registration_closed: 'Registration is closed. Ask an administrator for an account.',
});

/**
 * Shows the log-in page or the register form, as `options` and the policy say.
 * @param {HTMLElement} root
 * @param {SignedIn} done
 * @param {EntryOptions} [options]
 */
export async function showEntry(root, done, options = {}) {
  const policy = await registrationPolicy();
  if (options.register && options.signedInAs) {
    showLogOutFirst(root, options.signedInAs, () => showRegister(root, policy, options.inviteToken ?? null, done));
  } else if (options.register) {
    showRegister(root, policy, options.inviteToken ?? null, done);
  } else {
    showLogin(root, done, { notice: options.notice, footer: registrationFooter(root, policy, done) });
  }
}

/**
 * The public registration policy, or null when the settings could not be read (then the
 * page offers nothing it cannot promise).
 * @returns {Promise<RegistrationPolicy | null>}
 */
async function registrationPolicy() {
  try {
    const policy = (await api.settings())['registration.policy'];
    return policy === 'open' || policy === 'invite_only' || policy === 'closed' ? policy : null;
  } catch {
    return null;
  }
}

/**
 * Below the log-in form: how to get an account under this policy.
 * @param {HTMLElement} root
 * @param {RegistrationPolicy | null} policy
 * @param {SignedIn} done
 * @returns {HTMLElement | null}
 */
function registrationFooter(root, policy, done) {
  if (policy === 'open') {
    const create = h('button', { type: 'button', id: 'create-account', class: 'secondary', text: 'Create an account' });
    create.addEventListener('click', () => {
      // The address names the form, so a reload comes back to it.
      history.replaceState(null, '', '/register');
      showRegister(root, policy, null, done);
    });
    return h('div', { class: 'registration', id: 'registration-info', 'data-policy': policy }, h('span', { text: 'New here?' }), create);
  }
  if (policy === 'invite_only') {
    return h('p', { class: 'registration', id: 'registration-info', 'data-policy': policy, text: 'New accounts need an invite link from an administrator.' });
  }
  if (policy === 'closed') {
    return h('p', { class: 'registration', id: 'registration-info', 'data-policy': policy, text: 'Registration is closed. Ask an administrator for an account.' });
  }
  return null;
}

/**
 * Registering logs the browser in as the new account, and every tab shares the cookie: the
 * account logged in now is logged out first, at the user's word.
 * @param {HTMLElement} root
 * @param {string} username
 * @param {() => void} next
 */
function showLogOutFirst(root, username, next) {
  const error = h('p', { class: 'error', role: 'alert', id: 'logout-first-error' });
  const logOut = h('button', { type: 'button', id: 'logout-and-register', text: 'Log out and create an account' });
  logOut.addEventListener('click', async () => {
    error.textContent = '';
    try {
      await api.logout();
    } catch (err) {
      // A session that is already gone is as good as logged out.
      if (!(err instanceof api.ApiError && err.status === 401)) {
        error.textContent = err instanceof Error ? err.message : String(err);
        return;
      }
    }
    api.forgetSession();
    next();
  });
  const stay = h('button', { type: 'button', id: 'back-to-chat', class: 'secondary', text: `Stay logged in as ${username}` });
  stay.addEventListener('click', () => location.assign('/'));
  replace(
    root,
    h(
      'section',
      { class: 'card', id: 'logout-first' },
      h('h1', { text: 'Create an account' }),
      h('p', { text: `This browser is logged in as ${username}. To create a new account, log out first (every tab of ${username} here is logged out).` }),
      error,
      logOut,
      stay,
    ),
  );
}

/**
 * The register form, or what stands in the way of it.
 * @param {HTMLElement} root
 * @param {RegistrationPolicy | null} policy
 * @param {string | null} inviteToken
 * @param {SignedIn} done
 */
function showRegister(root, policy, inviteToken, done) {
  const toLogin = h('button', { type: 'button', id: 'to-login', class: 'secondary', text: 'Back to log in' });
  toLogin.addEventListener('click', () => {
    history.replaceState(null, '', '/');
    void showEntry(root, done);
  });
  /** @param {string} text */
  const refusal = (text) =>
    replace(root, h('section', { class: 'card', id: 'register-refused' }, h('h1', { text: 'Create an account' }), h('p', { id: 'register-refusal', text }), toLogin));
  if (policy === 'closed') {
    refusal('Registration is closed. Ask an administrator for an account.');
    return;
  }
  if (policy === 'invite_only' && !inviteToken) {
    refusal('Creating an account needs an invite link from an administrator. Open the link you were sent.');
    return;
  }

  const error = h('p', { class: 'error', role: 'alert', id: 'register-error' });
  const form = /** @type {HTMLFormElement} */ (
    h(
      'form',
      { class: 'card', id: 'register-form' },
      h('h1', { text: 'Create an account' }),
      inviteToken ? h('p', { id: 'register-invite', text: 'You were invited to this Sotto server.' }) : null,
      // The rules are the server's (it counts characters as Rust does, not as the browser's
      // minlength would): the hints say them, the server's answer enforces them.
      field('Username', { name: 'username', autocomplete: 'username', required: true, 'aria-describedby': 'username-hint' }),
      h('p', { class: 'hint', id: 'username-hint', text: '3-32 characters: lowercase letters, digits, "_", "." or "-".' }),
      field('Password', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, 'aria-describedby': 'password-hint' }),
      h('p', { class: 'hint', id: 'password-hint', text: 'At least 8 characters.' }),
      field('Repeat the password', { name: 'password2', type: 'password', autocomplete: 'new-password', required: true }),
      error,
      h('button', { type: 'submit', text: 'Create account' }),
      toLogin,
    )
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    delete error.dataset.code;
    const password = value(form, 'password');
    if (password !== value(form, 'password2')) {
      error.textContent = 'The two passwords differ.';
      error.dataset.code = 'password_mismatch';
      return;
    }
    try {
      const session = await api.register(value(form, 'username'), password, inviteToken);
      history.replaceState(null, '', '/');
      done(session);
    } catch (err) {
      if (err instanceof api.ApiError) {
        error.textContent = REGISTER_ERRORS[err.code] ?? err.message;
        error.dataset.code = err.code;
      } else {
        error.textContent = err instanceof Error ? err.message : String(err);
      }
    }
  });
  replace(root, form);
}

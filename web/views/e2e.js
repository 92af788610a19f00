// The E2E key panel: set up (a generated passphrase to write down, confirmed with "I have
// saved it") or enter the E2E key on this browser.

import * as e2e from '../e2e.js';
import { h, replace } from './dom.js';

/**
 * @param {HTMLElement} panel
 * @param {number} userId
 * @param {() => void} unlocked called once the identity is unlocked in this tab
 */
export async function showE2ePanel(panel, userId, unlocked) {
  panel.hidden = false;
  const error = h('p', { class: 'error', role: 'alert', id: 'e2e-error' });
  /** @param {unknown} err */
  const fail = (err) => {
    error.textContent = err instanceof Error ? err.message : String(err);
  };
  if (e2e.isUnlocked()) {
    replace(panel, h('p', { id: 'e2e-status', text: 'Your E2E key is unlocked in this tab.' }));
    return;
  }
  replace(panel, h('p', { text: 'Checking your E2E key…' }));
  let setUp;
  try {
    setUp = await e2e.isSetUp();
  } catch (err) {
    replace(panel, error);
    fail(err);
    return;
  }
  if (setUp) {
    const input = h('input', { id: 'e2e-passphrase-input', name: 'passphrase', type: 'password', autocomplete: 'off', required: true });
    const form = h(
      'form',
      { id: 'e2e-unlock' },
      h('h2', { text: 'Enter your E2E key' }),
      h('label', { class: 'field' }, h('span', { text: 'E2E passphrase' }), input),
      error,
      h('button', { type: 'submit', text: 'Unlock' }),
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.textContent = '';
      try {
        await e2e.unlock(userId, /** @type {HTMLInputElement} */ (input).value);
        /** @type {HTMLInputElement} */ (input).value = '';
        replace(panel, h('p', { id: 'e2e-status', text: 'Your E2E key is unlocked in this tab.' }));
        unlocked();
      } catch (err) {
        fail(err);
      }
    });
    replace(panel, form);
    return;
  }
  let passphrase = '';
  try {
    passphrase = await e2e.generatePassphrase();
  } catch (err) {
    replace(panel, error);
    fail(err);
    return;
  }
  const saved = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', id: 'e2e-saved' }));
  const finish = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', id: 'e2e-finish', text: 'Finish set-up', disabled: true }));
  saved.addEventListener('change', () => {
    finish.disabled = !saved.checked;
  });
  const form = h(
    'form',
    { id: 'e2e-setup' },
    h('h2', { text: 'Set up your E2E key' }),
    h('p', { text: 'Write this passphrase down. You need it to read encrypted messages and to go off the record on another browser. The server cannot recover it.' }),
    h('code', { id: 'e2e-passphrase', class: 'passphrase', text: passphrase }),
    h('label', { class: 'check' }, saved, h('span', { text: 'I have saved it' })),
    error,
    finish,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!saved.checked) return;
    error.textContent = '';
    finish.disabled = true;
    try {
      await e2e.setUp(userId, passphrase);
      passphrase = '';
      replace(panel, h('p', { id: 'e2e-status', text: 'Your E2E key is set up and unlocked in this tab.' }));
      unlocked();
    } catch (err) {
      finish.disabled = false;
      fail(err);
    }
  });
  replace(panel, form);
}

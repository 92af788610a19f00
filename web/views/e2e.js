// The E2E key panel: set up (a generated passphrase to write down, or the user's own above the
// strength floor, confirmed with "I have saved it"), enter the E2E key on this browser,
// "Remember on this device" / "Forget this device", change the key and reset it.

import * as e2e from '../e2e.js';
import { h, replace } from './dom.js';

/** @typedef {import('../otr.js').OtrConversations} OtrConversations */

/**
 * @typedef {object} E2ePanelOptions
 * @property {string} [notice] why the panel opened by itself (a remembered key was refused)
 * @property {OtrConversations} [otr] ends this tab's OTR sessions before a reset
 */

/** @param {unknown} err */
function message(err) {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The "Remember on this device" checkbox of the set-up and unlock forms.
 * @returns {HTMLInputElement}
 */
function rememberBox() {
  return /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', id: 'e2e-remember', name: 'remember' }));
}

/**
 * Choosing a new passphrase: the generated one (shown to be written down) or the user's own,
 * with a strength estimate; "I have saved it" enables `submit`.
 * @param {string} prefix id prefix of the parts (`<prefix>-passphrase`, `<prefix>-saved`, …)
 * @param {HTMLButtonElement} submit
 */
async function passphraseChooser(prefix, submit) {
  const generated = await e2e.generatePassphrase();
  const mode = `${prefix}-mode`;
  const useGenerated = /** @type {HTMLInputElement} */ (
    h('input', { type: 'radio', name: mode, id: `${prefix}-mode-generated`, value: 'generated', checked: true })
  );
  const useOwn = /** @type {HTMLInputElement} */ (h('input', { type: 'radio', name: mode, id: `${prefix}-mode-own`, value: 'own' }));
  const own = /** @type {HTMLInputElement} */ (
    h('input', { type: 'password', id: `${prefix}-own`, name: 'own-passphrase', autocomplete: 'new-password', disabled: true })
  );
  const strength = h('p', { id: `${prefix}-strength`, class: 'strength', 'aria-live': 'polite' });
  const saved = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', id: `${prefix}-saved` }));
  submit.disabled = true;
  saved.addEventListener('change', () => {
    submit.disabled = !saved.checked;
  });
  const switchMode = () => {
    own.disabled = !useOwn.checked;
    if (useOwn.checked) own.focus();
    strength.textContent = '';
  };
  useGenerated.addEventListener('change', switchMode);
  useOwn.addEventListener('change', switchMode);
  own.addEventListener('input', async () => {
    const typed = own.value;
    if (!typed) {
      strength.textContent = '';
      return;
    }
    const { bits, refusal } = await e2e.passphraseStrength(typed);
    if (own.value !== typed) return;
    strength.textContent = refusal ? `About ${bits} bits: too weak. ${refusal}` : `About ${bits} bits: strong enough.`;
  });
  const element = h(
    'fieldset',
    { class: 'passphrase-choice' },
    h('legend', { text: 'New E2E passphrase' }),
    h('label', { class: 'check' }, useGenerated, h('span', { text: 'Use this generated passphrase:' })),
    h('code', { id: `${prefix}-passphrase`, class: 'passphrase', text: generated }),
    h('label', { class: 'check' }, useOwn, h('span', { text: 'Choose my own (at least 12 characters, hard to guess)' })),
    h('label', { class: 'field' }, h('span', { text: 'My own passphrase' }), own),
    strength,
    h('p', { text: 'Write it down. The server cannot recover it.' }),
    h('label', { class: 'check' }, saved, h('span', { text: 'I have saved it' })),
  );
  return {
    element,
    saved,
    /** The chosen passphrase; throws when the user's own is below the floor. */
    async chosen() {
      if (!useOwn.checked) return generated;
      const { refusal } = await e2e.passphraseStrength(own.value);
      if (refusal) throw new Error(`This passphrase is too weak: ${refusal}`);
      return own.value;
    },
    clear() {
      own.value = '';
    },
  };
}

/**
 * @param {HTMLElement} panel
 * @param {number} userId
 * @param {() => void} unlocked called once the identity is unlocked in this tab
 * @param {E2ePanelOptions} [options]
 */
export async function showE2ePanel(panel, userId, unlocked, options = {}) {
  panel.hidden = false;
  const error = h('p', { class: 'error', role: 'alert', id: 'e2e-error' });
  /** @param {unknown} err */
  const fail = (err) => {
    error.textContent = message(err);
  };
  replace(panel, h('p', { text: 'Checking your E2E key…' }));
  // A silent unlock from this device's remembered key may be under way.
  await e2e.rememberedUnlockSettled();
  if (e2e.isUnlocked()) {
    await showUnlocked(panel, userId, options, options.notice ?? null);
    return;
  }
  let setUp;
  try {
    setUp = await e2e.isSetUp();
  } catch (err) {
    replace(panel, error);
    fail(err);
    return;
  }
  const notice = options.notice ? h('p', { id: 'e2e-notice', class: 'warning', role: 'alert', text: options.notice }) : null;
  if (setUp) {
    const input = /** @type {HTMLInputElement} */ (
      h('input', { id: 'e2e-passphrase-input', name: 'passphrase', type: 'password', autocomplete: 'off', required: true })
    );
    const remember = rememberBox();
    const form = h(
      'form',
      { id: 'e2e-unlock' },
      h('h2', { text: 'Enter your E2E key' }),
      notice,
      h('label', { class: 'field' }, h('span', { text: 'E2E passphrase' }), input),
      h('label', { class: 'check' }, remember, h('span', { text: 'Remember on this device (a reload unlocks without the passphrase; not on a shared computer)' })),
      error,
      h('button', { type: 'submit', text: 'Unlock' }),
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.textContent = '';
      try {
        await e2e.unlock(userId, input.value);
        input.value = '';
        if (remember.checked) await e2e.rememberDevice(userId);
        unlocked();
        await showUnlocked(panel, userId, options, null);
      } catch (err) {
        fail(err);
      }
    });
    replace(panel, form);
    return;
  }
  const finish = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', id: 'e2e-finish', text: 'Finish set-up' }));
  /** @type {Awaited<ReturnType<typeof passphraseChooser>>} */
  let chooser;
  try {
    chooser = await passphraseChooser('e2e', finish);
  } catch (err) {
    replace(panel, error);
    fail(err);
    return;
  }
  const remember = rememberBox();
  const form = h(
    'form',
    { id: 'e2e-setup' },
    h('h2', { text: 'Set up your E2E key' }),
    notice,
    h('p', { text: 'You need this passphrase to read encrypted messages and to go off the record on another browser.' }),
    chooser.element,
    h('label', { class: 'check' }, remember, h('span', { text: 'Remember on this device (a reload unlocks without the passphrase; not on a shared computer)' })),
    error,
    finish,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!chooser.saved.checked) return;
    error.textContent = '';
    finish.disabled = true;
    try {
      await e2e.setUp(userId, await chooser.chosen());
      chooser.clear();
      if (remember.checked) await e2e.rememberDevice(userId);
      unlocked();
      await showUnlocked(panel, userId, options, null, 'Your E2E key is set up and unlocked in this tab.');
    } catch (err) {
      finish.disabled = false;
      fail(err);
    }
  });
  replace(panel, form);
}

/**
 * The panel of an unlocked identity: remembered or not, change, reset.
 * @param {HTMLElement} panel
 * @param {number} userId
 * @param {E2ePanelOptions} options
 * @param {string | null} notice a result to show (the key was changed, …)
 * @param {string} [status]
 */
async function showUnlocked(panel, userId, options, notice, status = 'Your E2E key is unlocked in this tab.') {
  const error = h('p', { class: 'error', role: 'alert', id: 'e2e-error' });
  let remembered = false;
  try {
    remembered = await e2e.isRemembered(userId);
  } catch (err) {
    error.textContent = message(err);
  }
  const again = (/** @type {string | null} */ text) => void showUnlocked(panel, userId, options, text, status);
  /**
   * @param {string} id
   * @param {string} label
   * @param {() => Promise<void>} action
   */
  const button = (id, label, action) => {
    const b = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', id, text: label }));
    b.addEventListener('click', async () => {
      error.textContent = '';
      b.disabled = true;
      try {
        await action();
      } catch (err) {
        b.disabled = false;
        error.textContent = message(err);
      }
    });
    return b;
  };
  const slot = h('div', { class: 'e2e-change-slot' });
  /** @type {Node[]} */
  const parts = [h('p', { id: 'e2e-status', text: status })];
  if (notice) parts.push(h('p', { id: 'e2e-notice', class: 'notice', role: 'status', text: notice }));
  replace(
    panel,
    ...parts,
    remembered
      ? h(
          'p',
          { id: 'e2e-remembered' },
          h('span', { text: 'Remembered on this device: a reload unlocks it without the passphrase. ' }),
          button('e2e-forget', 'Forget this device', async () => {
            await e2e.forgetDevice(userId);
            again('This device no longer remembers your E2E key.');
          }),
        )
      : h(
          'p',
          { id: 'e2e-not-remembered' },
          h('span', { text: 'Not remembered: a reload asks for your E2E key again. ' }),
          button('e2e-remember-now', 'Remember on this device', async () => {
            await e2e.rememberDevice(userId);
            again('This device now remembers your E2E key.');
          }),
        ),
    h(
      'p',
      { class: 'e2e-actions' },
      button('e2e-change', 'Change E2E key', async () => {
        replace(slot, await changeForm(userId, again));
      }),
      button('e2e-reset', 'Reset E2E key', async () => {
        replace(slot, await resetForm(userId, options, again));
      }),
    ),
    slot,
    error,
  );
}

/**
 * Changing the passphrase: the identity (and every safety number) stays.
 * @param {number} userId
 * @param {(notice: string | null) => void} done
 */
async function changeForm(userId, done) {
  const submit = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', id: 'e2e-change-submit', text: 'Change E2E key' }));
  const chooser = await passphraseChooser('e2e-change', submit);
  const error = h('p', { class: 'error', role: 'alert', id: 'e2e-change-error' });
  const form = h(
    'form',
    { id: 'e2e-change-form' },
    h('h3', { text: 'Change your E2E key' }),
    h('p', { text: 'Your other browsers will ask for the new passphrase. Safety numbers stay the same.' }),
    chooser.element,
    error,
    submit,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!chooser.saved.checked) return;
    error.textContent = '';
    submit.disabled = true;
    try {
      await e2e.changeKey(userId, await chooser.chosen());
      chooser.clear();
      done('Your E2E key was changed. Use the new passphrase from now on.');
    } catch (err) {
      submit.disabled = false;
      error.textContent = message(err);
    }
  });
  return form;
}

/**
 * Resetting the identity: new keys, so everyone you talk to sees a changed safety number.
 * @param {number} userId
 * @param {E2ePanelOptions} options
 * @param {(notice: string | null) => void} done
 */
async function resetForm(userId, options, done) {
  const submit = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', id: 'e2e-reset-submit', class: 'danger', text: 'Reset E2E key' }));
  const chooser = await passphraseChooser('e2e-reset', submit);
  const error = h('p', { class: 'error', role: 'alert', id: 'e2e-reset-error' });
  const form = h(
    'form',
    { id: 'e2e-reset-form' },
    h('h3', { text: 'Reset your E2E key' }),
    h('p', {
      class: 'warning',
      text: 'Resetting creates new identity keys. Everyone you talk to will see that your safety number changed and must acknowledge it before going off the record with you again; verified marks others gave you are lost. Running OTR conversations end. Use this if you forgot your passphrase on every device or fear your key leaked.',
    }),
    chooser.element,
    error,
    submit,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!chooser.saved.checked) return;
    error.textContent = '';
    submit.disabled = true;
    try {
      const passphrase = await chooser.chosen();
      // End OTR properly first: the reset destroys the sessions' keys, and the peers should
      // hear an authenticated end rather than lose the session silently.
      options.otr?.endAll();
      await e2e.resetKey(userId, passphrase);
      options.otr?.forgetSessions();
      chooser.clear();
      done('Your E2E key was reset. The people you talk to will see a changed safety number.');
    } catch (err) {
      submit.disabled = false;
      error.textContent = message(err);
    }
  });
  return form;
}

// The admin's settings form: one labelled input per server setting, grouped, saved all at once.
// The server's registry (crates/sotto-server/src/services/settings.rs) is the authority on
// types and ranges; the descriptions below only choose inputs and words, and a setting the
// server knows but this list does not still gets a plain input, so nothing is hidden.

import * as api from '../api.js';
import { h, replace } from './dom.js';

/** @typedef {import('../api.js').SettingsValues} SettingsValues */
/**
 * @typedef {{kind: 'bool'}
 *   | {kind: 'int', min: number, max: number, unit: 'bytes' | 'seconds' | 'count'}
 *   | {kind: 'choice', options: [string, string][]}
 *   | {kind: 'text'}} SettingInput
 */
/** @typedef {{key: string, group: string, label: string, help: string, input: SettingInput}} SettingDescription */

/** @type {SettingDescription[]} */
const DESCRIPTIONS = [
  {
    key: 'registration.policy',
    group: 'Registration',
    label: 'Who can register',
    help: 'Open: anyone who reaches the server. Invite only: with a link an admin created. Closed: admins create the accounts.',
    input: {
      kind: 'choice',
      options: [
        ['open', 'Open'],
        ['invite_only', 'Invite only'],
        ['closed', 'Closed'],
      ],
    },
  },
  {
    key: 'otr.enabled',
    group: 'Off the record',
    label: 'Allow off-the-record messages',
    help: 'Turning it off ends every running OTR session.',
    input: { kind: 'bool' },
  },
  {
    key: 'otr.invite_timeout_secs',
    group: 'Off the record',
    label: 'Invitation timeout',
    help: 'How long an OTR invitation waits for an answer.',
    input: { kind: 'int', min: 5, max: 3600, unit: 'seconds' },
  },
  {
    key: 'otr.max_frame_bytes',
    group: 'Off the record',
    label: 'Largest OTR frame',
    help: 'Limits OTR messages and files sent off the record.',
    input: { kind: 'int', min: 1024, max: 1048576, unit: 'bytes' },
  },
  {
    key: 'e2e.enabled',
    group: 'End-to-end encryption',
    label: 'Allow end-to-end encryption',
    help: 'Lets people set up E2E keys; OTR needs them.',
    input: { kind: 'bool' },
  },
  {
    key: 'e2e.encrypt_new_dms',
    group: 'End-to-end encryption',
    label: 'New direct messages are encrypted',
    help: 'The default of the "Encrypted" box for direct and multi-user messages. Encrypted rooms are not searched on the server.',
    input: { kind: 'bool' },
  },
  {
    key: 'e2e.encrypt_new_groups',
    group: 'End-to-end encryption',
    label: 'New groups are encrypted',
    help: 'The default of the "Encrypted" box for named groups.',
    input: { kind: 'bool' },
  },
  {
    key: 'messages.max_bytes',
    group: 'Limits',
    label: 'Largest message',
    help: 'Size of one message body.',
    input: { kind: 'int', min: 1, max: 1048576, unit: 'bytes' },
  },
  {
    key: 'uploads.max_bytes',
    group: 'Limits',
    label: 'Largest upload',
    help: 'Size of one uploaded file.',
    input: { kind: 'int', min: 1, max: 4294967296, unit: 'bytes' },
  },
  {
    key: 'ratelimit.login_per_account_per_min',
    group: 'Rate limits',
    label: 'Log-in attempts per account',
    help: 'Per minute, for one username.',
    input: { kind: 'int', min: 1, max: 100000, unit: 'count' },
  },
  {
    key: 'ratelimit.login_per_ip_per_min',
    group: 'Rate limits',
    label: 'Log-in attempts per address',
    help: 'Per minute, from one IP address.',
    input: { kind: 'int', min: 1, max: 100000, unit: 'count' },
  },
  {
    key: 'ratelimit.otr_offers_per_min',
    group: 'Rate limits',
    label: 'OTR invitations per user',
    help: 'Per minute.',
    input: { kind: 'int', min: 1, max: 10000, unit: 'count' },
  },
  {
    key: 'ratelimit.otr_frames_per_sec',
    group: 'Rate limits',
    label: 'OTR frames per connection',
    help: 'Per second, sustained.',
    input: { kind: 'int', min: 1, max: 100000, unit: 'count' },
  },
  {
    key: 'ratelimit.otr_frame_burst',
    group: 'Rate limits',
    label: 'OTR frame burst',
    help: 'Frames a connection may send at once above the sustained rate.',
    input: { kind: 'int', min: 1, max: 100000, unit: 'count' },
  },
];

/**
 * The description of `key`, or a plain one chosen from the value's type for a setting this
 * client does not know yet.
 * @param {string} key
 * @param {unknown} value
 * @returns {SettingDescription}
 */
function describe(key, value) {
  const known = DESCRIPTIONS.find((d) => d.key === key);
  if (known) return known;
  /** @type {SettingInput} */
  const input =
    typeof value === 'boolean'
      ? { kind: 'bool' }
      : typeof value === 'number'
        ? { kind: 'int', min: 0, max: Number.MAX_SAFE_INTEGER, unit: 'count' }
        : { kind: 'text' };
  return { key, group: 'Other', label: key, help: '', input };
}

/**
 * "16 KiB" for 16384: a size the admin can read next to the exact number of bytes.
 * @param {number} bytes
 */
export function readableBytes(bytes) {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let size = bytes;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${Number.isInteger(size) ? size : size.toFixed(1)} ${units[unit]}`;
}

/**
 * The id of a setting's input: the key with dashes for dots, so CSS selectors stay plain.
 * @param {string} key
 */
function inputId(key) {
  return `setting-${key.replaceAll('.', '-')}`;
}

/** @typedef {{row: HTMLElement, input: HTMLInputElement | HTMLSelectElement, read: () => unknown, write: (value: unknown) => void}} SettingRow */

/**
 * One setting's input, and how to read it back and show a new value.
 * @param {SettingDescription} d
 * @param {unknown} value
 * @returns {SettingRow}
 */
function settingRow(d, value) {
  const id = inputId(d.key);
  const helpId = `${id}-help`;
  const spec = d.input;
  if (spec.kind === 'bool') {
    const input = /** @type {HTMLInputElement} */ (
      h('input', { type: 'checkbox', id, name: d.key, 'aria-describedby': helpId, checked: value === true })
    );
    const row = h(
      'div',
      { class: 'setting' },
      h('label', { class: 'check', for: id }, input, h('span', { text: d.label })),
      h('p', { class: 'help', id: helpId, text: d.help }),
    );
    return { row, input, read: () => input.checked, write: (v) => (input.checked = v === true) };
  }
  if (spec.kind === 'choice') {
    const options = spec.options.some(([v]) => v === value) ? spec.options : [...spec.options, [String(value), String(value)]];
    const input = /** @type {HTMLSelectElement} */ (
      h('select', { id, name: d.key, 'aria-describedby': helpId }, ...options.map(([v, label]) => h('option', { value: v, text: label, selected: v === value })))
    );
    const row = h('div', { class: 'setting' }, h('label', { for: id, text: d.label }), input, h('p', { class: 'help', id: helpId, text: d.help }));
    return { row, input, read: () => input.value, write: (v) => (input.value = String(v)) };
  }
  if (spec.kind === 'text') {
    const input = /** @type {HTMLInputElement} */ (h('input', { type: 'text', id, name: d.key, value: String(value), 'aria-describedby': helpId }));
    const row = h('div', { class: 'setting' }, h('label', { for: id, text: d.label }), input, h('p', { class: 'help', id: helpId, text: d.help }));
    return { row, input, read: () => input.value, write: (v) => (input.value = String(v)) };
  }
  const range = `${spec.min}–${spec.max}${spec.unit === 'count' ? '' : ` ${spec.unit}`}`;
  const input = /** @type {HTMLInputElement} */ (
    h('input', {
      type: 'number',
      id,
      name: d.key,
      inputmode: 'numeric',
      step: 1,
      min: spec.min,
      max: spec.max,
      value: String(value),
      'aria-describedby': helpId,
    })
  );
  const readable = h('span', { class: 'readable' });
  const showReadable = () => {
    readable.textContent = spec.unit === 'bytes' && /^\d+$/.test(input.value) ? `= ${readableBytes(Number(input.value))}` : '';
  };
  input.addEventListener('input', showReadable);
  showReadable();
  const row = h(
    'div',
    { class: 'setting' },
    h('label', { for: id, text: d.label }),
    h('span', { class: 'number' }, input, readable),
    h('p', { class: 'help', id: helpId, text: d.help ? `${d.help} (${range})` : `(${range})` }),
  );
  // The server decides what is valid: a whole number goes as a number, anything else as
  // typed, and its answer names what is wrong.
  const read = () => (/^\d+$/.test(input.value.trim()) ? Number(input.value.trim()) : input.value);
  /** @param {unknown} v */
  const write = (v) => {
    input.value = String(v);
    showReadable();
  };
  return { row, input, read, write };
}

/**
 * Fills `section` with the settings form, loaded from the server.
 * @param {HTMLElement} section
 */
export async function showSettingsForm(section) {
  const error = h('p', { class: 'error', role: 'alert', id: 'settings-error' });
  replace(section, h('h2', { text: 'Settings' }), h('p', { class: 'empty', text: 'Loading settings…' }), error);
  /** @type {SettingsValues} */
  let saved;
  try {
    saved = await api.adminSettings();
  } catch (err) {
    error.textContent = describeError(err);
    replace(section, h('h2', { text: 'Settings' }), error);
    return;
  }
  /** @type {Map<string, SettingRow>} */
  const rows = new Map();
  /** @type {Map<string, HTMLElement>} */
  const groups = new Map();
  const order = [...DESCRIPTIONS.map((d) => d.key), ...Object.keys(saved).filter((k) => !DESCRIPTIONS.some((d) => d.key === k))];
  for (const key of order) {
    if (!(key in saved)) continue;
    const d = describe(key, saved[key]);
    const row = settingRow(d, saved[key]);
    rows.set(key, row);
    let group = groups.get(d.group);
    if (!group) {
      group = h('fieldset', { class: 'settings-group' }, h('legend', { text: d.group }));
      groups.set(d.group, group);
    }
    group.append(row.row);
  }
  const status = h('p', { class: 'status', role: 'status', id: 'settings-status' });
  const saveButton = h('button', { type: 'submit', id: 'settings-save', text: 'Save settings' });
  // noValidate: the browser's own range check would hide the server's answer, which is the
  // one that counts (and names the setting).
  const form = /** @type {HTMLFormElement} */ (h('form', { id: 'settings-form', class: 'settings-form', novalidate: true }, ...groups.values(), error, status, saveButton));
  form.addEventListener('input', () => {
    status.textContent = '';
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    status.textContent = '';
    for (const { input } of rows.values()) input.removeAttribute('aria-invalid');
    /** @type {Record<string, unknown>} */
    const changes = {};
    for (const [key, row] of rows) {
      const next = row.read();
      if (next !== saved[key]) changes[key] = next;
    }
    if (Object.keys(changes).length === 0) {
      status.textContent = 'Nothing changed.';
      return;
    }
    saveButton.setAttribute('disabled', '');
    try {
      // Only the changed settings are sent, so two admins editing different settings do not
      // undo each other. The inputs keep what was typed, whatever the answer.
      saved = await api.updateSettings(changes);
      // The answer holds every setting as it now is: show what others changed meanwhile, so
      // the next save does not send their old values back as if they were edits.
      for (const [key, row] of rows) {
        if (!(key in changes) && key in saved) row.write(saved[key]);
      }
      status.textContent = `Saved (${Object.keys(changes).length} changed).`;
    } catch (err) {
      error.textContent = describeError(err);
      // The server's message starts with the key of the setting it refused.
      const refused = [...rows.keys()].find((k) => err instanceof Error && err.message.startsWith(`${k} `));
      const input = refused === undefined ? undefined : rows.get(refused)?.input;
      if (input) {
        input.setAttribute('aria-invalid', 'true');
        input.focus();
      }
    } finally {
      saveButton.removeAttribute('disabled');
    }
  });
  replace(section, h('h2', { text: 'Settings' }), form);
}

/**
 * "invalid_setting: otr.invite_timeout_secs must be …": the server's code and message.
 * @param {unknown} err
 */
export function describeError(err) {
  if (err instanceof api.ApiError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

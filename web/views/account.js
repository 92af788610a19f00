// Your sessions: every browser or app logged in as you, this one marked, with Revoke for the
// others. A revoked session's sockets close at once and its pages go back to the log-in page.

import * as api from '../api.js';
import { h, replace } from './dom.js';

/** @typedef {import('../api.js').SessionInfo} SessionInfo */

/**
 * Fills `panel` with the caller's sessions and shows it. Close and Escape hide it and call
 * `closed` (which puts the focus back where the panel was opened from).
 * @param {HTMLElement} panel
 * @param {() => void} closed
 */
export async function showSessionsPanel(panel, closed) {
  const list = h('ul', { class: 'sessions', id: 'sessions', 'aria-label': 'Sessions' });
  const error = h('p', { class: 'error', role: 'alert', id: 'sessions-error' });
  const refresh = h('button', { type: 'button', id: 'sessions-refresh', class: 'secondary', text: 'Refresh' });
  const close = h('button', { type: 'button', id: 'sessions-close', class: 'secondary', text: 'Close' });
  refresh.addEventListener('click', () => void load());
  const hide = () => {
    panel.hidden = true;
    closed();
  };
  close.addEventListener('click', hide);
  panel.onkeydown = (e) => {
    if (e.key === 'Escape') hide();
  };
  const heading = h('h2', { id: 'sessions-title', tabindex: -1, text: 'Your sessions' });
  replace(
    panel,
    heading,
    h('p', { class: 'hint', text: 'Every browser and app logged in as you. Revoke one you do not recognise or no longer use: it is logged out at once.' }),
    list,
    error,
    h('div', { class: 'actions' }, refresh, close),
  );
  panel.hidden = false;

  async function load() {
    error.textContent = '';
    try {
      const sessions = await api.sessions();
      // This browser first, then the most recently active.
      sessions.sort((a, b) => Number(b.current) - Number(a.current) || b.last_seen_at - a.last_seen_at);
      replace(list, ...sessions.map(row));
    } catch (err) {
      error.textContent = err instanceof Error ? err.message : String(err);
    }
  }

  /** @param {SessionInfo} s */
  function row(s) {
    const what = describeAgent(s.user_agent ?? null, s.kind);
    let revoke = null;
    if (!s.current) {
      revoke = h('button', { type: 'button', class: 'revoke', 'data-session-id': s.id, 'aria-label': `Revoke ${what}, last active ${time(s.last_seen_at)}`, text: 'Revoke' });
      revoke.addEventListener('click', async () => {
        error.textContent = '';
        try {
          await api.revokeSession(s.id);
        } catch (err) {
          error.textContent = err instanceof Error ? err.message : String(err);
        }
        await load();
        // The button pressed is gone with its row: keep the focus in the panel.
        heading.focus();
      });
    }
    return h(
      'li',
      { class: 'session', 'data-session-id': s.id, 'data-current': s.current ? 'true' : null },
      h('span', { class: 'session-agent', title: s.user_agent ?? '', text: what }),
      s.current ? h('strong', { class: 'session-current', text: 'This browser' }) : null,
      h('span', { class: 'session-times', text: `Logged in ${time(s.created_at)} · last active ${time(s.last_seen_at)}` }),
      revoke,
    );
  }

  // The heading takes the focus, not a Revoke button that a stray Enter would press.
  heading.focus();
  await load();
}

/**
 * A short description of a session's client from its User-Agent ("Chrome on Linux").
 * @param {string | null} agent
 * @param {string} kind `cookie` (a browser) or `bearer` (an app or script with a token)
 */
export function describeAgent(agent, kind) {
  if (!agent) return kind === 'cookie' ? 'A browser' : 'An app';
  const browser = [
    ['Edg/', 'Edge'],
    ['Firefox/', 'Firefox'],
    ['Chrome/', 'Chrome'],
    ['Safari/', 'Safari'],
  ].find(([token]) => agent.includes(token));
  const system = [
    ['Android', 'Android'],
    ['iPhone', 'iOS'],
    ['iPad', 'iOS'],
    ['Windows', 'Windows'],
    ['Mac OS X', 'macOS'],
    ['Linux', 'Linux'],
  ].find(([token]) => agent.includes(token));
  if (!browser) return agent.length > 60 ? `${agent.slice(0, 60)}…` : agent;
  return system ? `${browser[1]} on ${system[1]}` : browser[1];
}

/**
 * A server timestamp (milliseconds since the epoch) as local date and time.
 * @param {number} at
 */
function time(at) {
  return new Date(at).toLocaleString();
}

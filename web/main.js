// Entry point: decides which page to show and wires the realtime connection into the state.

import * as api from './api.js';
import * as e2e from './e2e.js';
import { OtrConversations } from './otr.js';
import { RealtimeConnection } from './realtime.js';
import { E2eRooms } from './rooms.js';
import { ChatState } from './state.js';
import { showChat } from './views/chat.js';
import { showEntry } from './views/register.js';
import { showSetup } from './views/setup.js';

/** CSP violations seen by this page (the browser tests assert there are none). */
const cspViolations = /** @type {string[]} */ ([]);
document.addEventListener('securitypolicyviolation', (e) => {
  cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
});
Object.defineProperty(window, '__sottoCspViolations', { value: cspViolations });

const root = /** @type {HTMLElement} */ (document.getElementById('app'));

/** @param {api.Session} session */
async function startChat(session) {
  const state = new ChatState(session.user);
  const rooms = new E2eRooms(state);
  /** @type {ReturnType<typeof showChat> | null} */
  let view = null;
  let loaded = false;
  let over = false;

  /**
   * The session is over (revoked, logged out here or elsewhere, expired, user deactivated):
   * this page stops acting as the user at once. The socket stops for good, the CSRF token and
   * the unlocked E2E identity (with its OTR sessions) are dropped, and the chat's state goes
   * with its view; only the log-in page remains.
   * @param {string | null} notice why, for the log-in page
   */
  function endSession(notice) {
    if (over) return;
    over = true;
    api.onSessionLost(null);
    api.forgetSession();
    realtime.stop();
    e2e.lock();
    rooms.reset();
    document.title = 'Sotto';
    void showEntry(root, (next) => void startChat(next), { notice });
  }
  api.onSessionLost(() => endSession('Your session has ended (logged out, revoked or expired). Log in again.'));

  async function reload() {
    const [users, rooms, settings] = await Promise.all([api.users(), api.rooms(), api.settings()]);
    state.settings = settings;
    state.setUsers(users);
    state.setRooms(rooms);
    loaded = true;
  }

  /** Tells the relay that this connection holds an unlocked E2E identity (or not). */
  function announceE2e() {
    realtime.sendJson({ type: 'e2e_state', unlocked: e2e.isUnlocked() });
  }

  const realtime = new RealtimeConnection({
    onAuthClosed(code) {
      endSession(
        code === 4003
          ? 'Your account has been deactivated.'
          : 'Your session has ended (logged out, revoked or the password changed in another browser). Log in again.',
      );
    },
    onRefused() {
      // The server is down, or no longer knows this session: a 401 here ends it (through
      // onSessionLost); a network error means "down", and the connection keeps retrying.
      api.currentSession().catch(() => {});
    },
    onStatus(status) {
      state.connection = status;
      state.changed();
    },
    onCaughtUp({ complete, reconnect }) {
      // The first connection loads the lists once the socket is live (so nothing falls in
      // between). After a reconnect the replay covered stored events; presence may have
      // changed meanwhile, and an incomplete replay means history must be reloaded.
      if (!loaded || !complete) {
        void reload().then(() => view?.reloadOpenRoom());
      } else if (reconnect) {
        void api.users().then((users) => state.setUsers(users));
      }
    },
    onHello(hello) {
      // A fresh connection starts locked; a resumed one keeps its state.
      if (!hello.resumed && e2e.isUnlocked()) queueMicrotask(announceE2e);
    },
    onBinary(frame) {
      otr.receiveFrame(frame);
    },
    onEvent(event) {
      if (event.type === 'otr') {
        otr.receiveNotice(event);
        return;
      }
      if (event.type === 'settings_changed') {
        state.settings = event.settings;
        state.changed();
        return;
      }
      applyEvent(state, event, () => void reload());
      if (event.type === 'message_created') view?.seen(event.message.room_id);
      // Every membership change and every new key makes an encrypted room look at its keys
      // again (a new key for the new members is made by the first client that sees it).
      if (event.type === 'room_key_added' || event.type === 'member_left') rooms.roomChanged(event.room_id);
      if (event.type === 'member_joined') rooms.roomChanged(event.room.id);
    },
  });

  const otr = new OtrConversations(
    session.user.id,
    (frame) => realtime.sendBinary(frame),
    () => state.changed(),
    () => state.settings,
  );

  view = showChat(root, state, otr, rooms, {
    unlocked: announceE2e,
    logout() {
      // Stopped first, so the server's close of this very socket is not taken for a
      // revocation from elsewhere.
      realtime.stop();
      // Log out forgets this device's remembered E2E key (endSession locks the identity).
      e2e
        .forgetDevice(session.user.id)
        .catch(() => {})
        .then(() => api.logout())
        .then(
          () => endSession(null),
          (err) =>
            endSession(
              err instanceof api.ApiError && err.status === 401
                ? null
                : 'Logging out could not reach the server, so the session may still be valid: revoke it under Sessions from another browser.',
            ),
        );
    },
  });
  realtime.start();
  // "Remember on this device": unlock silently from the wrapped key, if there is one. The
  // hello of a connection that opens later announces it by itself.
  e2e.unlockRemembered(session.user.id).then(
    (outcome) => {
      if (outcome === 'unlocked') {
        announceE2e();
        rooms.unlocked();
        state.changed();
      } else if (outcome === 'stale') {
        view?.askForE2eKey(
          'This device remembered an older E2E key: your passphrase was changed or your key was reset on another device. Enter your current E2E key.',
        );
      }
    },
    (err) => view?.askForE2eKey(`Could not unlock with this device's remembered key: ${err instanceof Error ? err.message : String(err)}`),
  );
}

/**
 * Applies one realtime event to the state.
 * @param {ChatState} state
 * @param {any} event
 * @param {() => void} reload
 */
function applyEvent(state, event, reload) {
  switch (event.type) {
    case 'message_created':
      state.addMessage(event.message);
      break;
    case 'message_edited':
      state.editMessage(event.message);
      break;
    case 'message_deleted':
      state.removeMessage(event.room_id, event.message_id);
      break;
    case 'member_joined':
      state.upsertRoom(event.room);
      if (!event.room.members.every((/** @type {number} */ id) => state.users.has(id))) reload();
      break;
    case 'member_left': {
      const room = state.rooms.get(event.room_id);
      if (event.user_id === state.me.id) state.removeRoom(event.room_id);
      else if (room) state.upsertRoom({ ...room, members: room.members.filter((id) => id !== event.user_id) });
      break;
    }
    case 'presence':
      state.setPresence(event.user_id, event.status);
      break;
    default:
      break;
  }
}

async function boot() {
  if (location.pathname === '/setup') {
    showSetup(root, (session) => void startChat(session));
    return;
  }
  if (location.pathname === '/register') {
    // An invite link carries its token after '#': it leaves the address bar (and the
    // history) at once and lives only in this page.
    const inviteToken = decodeURIComponent(location.hash.slice(1)) || null;
    if (location.hash) history.replaceState(null, '', '/register');
    // Registering logs in as the new account, and the cookie is shared by every tab: tabs
    // still showing the current account would then act as the new one. So a logged-in
    // browser is asked to log out first, which sends those tabs to the log-in page.
    const current = await api.currentSession().catch(() => null);
    void showEntry(root, (session) => void startChat(session), {
      register: true,
      inviteToken,
      signedInAs: current?.user.username ?? null,
    });
    return;
  }
  try {
    await startChat(await api.currentSession());
  } catch (err) {
    if (err instanceof api.ApiError && err.status === 401) {
      void showEntry(root, (session) => void startChat(session));
    } else {
      root.textContent = `Sotto could not start: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
}

void boot();

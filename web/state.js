// The client's state: who I am, users, rooms and the messages loaded so far. Pure data with
// change notification; no DOM, no network.

/** @typedef {import('./api.js').User} User */
/** @typedef {import('./api.js').UserWithPresence} UserWithPresence */
/** @typedef {import('./api.js').Room} Room */
/** @typedef {import('./api.js').Message} Message */

export class ChatState {
  /** @param {User} me */
  constructor(me) {
    this.me = me;
    /** @type {Map<number, UserWithPresence>} */
    this.users = new Map();
    /** @type {Map<number, Room>} */
    this.rooms = new Map();
    /** @type {Map<number, Message[]>} messages per room, oldest first */
    this.messages = new Map();
    /** @type {number | null} */
    this.openRoomId = null;
    /** @type {string} */
    this.connection = 'connecting';
    /** @type {Record<string, unknown>} public settings */
    this.settings = {};
    /** @type {Set<() => void>} */
    this.listeners = new Set();
    /**
     * Per room whose history was loaded: the cursor of the next older page, or null once the
     * first message of the room is loaded. A room missing here has no history loaded yet.
     * @type {Map<number, string | null>}
     */
    this.olderCursor = new Map();
    /** @type {Set<number>} ids of messages deleted while this page was open (a page fetched before the deletion must not bring them back) */
    this.deletedIds = new Set();
  }

  /** @param {() => void} fn */
  subscribe(fn) {
    this.listeners.add(fn);
  }

  changed() {
    for (const fn of this.listeners) fn();
  }

  /** @param {UserWithPresence[]} list */
  setUsers(list) {
    this.users = new Map(list.map((u) => [u.id, u]));
    this.changed();
  }

  /**
   * @param {number} userId
   * @param {'online' | 'away' | 'offline'} status
   */
  setPresence(userId, status) {
    const u = this.users.get(userId);
    if (u) {
      u.presence = status;
      this.changed();
    }
  }

  /** @param {Room[]} list */
  setRooms(list) {
    this.rooms = new Map(list.map((r) => [r.id, r]));
    this.changed();
  }

  /** @param {Room} room */
  upsertRoom(room) {
    const old = this.rooms.get(room.id);
    this.rooms.set(room.id, { ...old, ...room, unread_count: room.unread_count ?? old?.unread_count ?? 0 });
    this.changed();
  }

  /**
   * Rooms for the sidebar, most recent activity first.
   * @returns {Room[]}
   */
  sortedRooms() {
    const key = (/** @type {Room} */ r) => r.last_message?.id ?? 0;
    return [...this.rooms.values()].sort((a, b) => key(b) - key(a) || b.id - a.id);
  }

  /**
   * The name shown for a room: a group's name, else the other members' names.
   * @param {Room} room
   */
  roomTitle(room) {
    if (room.kind === 'group' && room.name) return room.name;
    const others = room.members.filter((id) => id !== this.me.id);
    const names = others.map((id) => this.users.get(id)?.username ?? `user ${id}`);
    return names.length ? names.join(', ') : this.me.username;
  }

  /**
   * The other member of a 1:1 DM.
   * @param {Room} room
   * @returns {UserWithPresence | undefined}
   */
  dmPeer(room) {
    if (room.kind !== 'dm') return undefined;
    const id = room.members.find((m) => m !== this.me.id);
    return id === undefined ? undefined : this.users.get(id);
  }

  /**
   * @param {number} roomId
   * @param {Message[]} list oldest first
   */
  setHistory(roomId, list) {
    this.messages.set(roomId, this.merged(list, this.messages.get(roomId) ?? []));
    this.changed();
  }

  /**
   * The union of two lists of a room's messages by id, oldest first, without the deleted
   * ones; of two versions of a message the later edit wins (a page fetched before an edit
   * event arrived must not bring the old text back).
   * @param {Message[]} a
   * @param {Message[]} b
   * @returns {Message[]}
   */
  merged(a, b) {
    /** @type {Map<number, Message>} */
    const byId = new Map();
    for (const m of [...a, ...b]) {
      if (this.deletedIds.has(m.id)) continue;
      const other = byId.get(m.id);
      if (!other || (m.edited_at ?? 0) > (other.edited_at ?? 0)) byId.set(m.id, m);
    }
    return [...byId.values()].sort((x, y) => x.id - y.id);
  }

  /**
   * The newest page of a room, fetched on opening it: it replaces what was loaded before
   * (older pages load again on scrolling), keeping only messages newer than the page that
   * arrived live while it was being fetched.
   * @param {number} roomId
   * @param {import('./api.js').HistoryPage} page
   */
  setNewestPage(roomId, page) {
    const newest = page.messages.length ? page.messages[page.messages.length - 1].id : 0;
    const live = (this.messages.get(roomId) ?? []).filter((m) => m.id > newest);
    this.messages.set(roomId, this.merged(page.messages, live));
    this.olderCursor.set(roomId, page.before);
    this.changed();
  }

  /**
   * An older page of a room, fetched on scrolling up.
   * @param {number} roomId
   * @param {import('./api.js').HistoryPage} page
   */
  addOlderPage(roomId, page) {
    this.messages.set(roomId, this.merged(page.messages, this.messages.get(roomId) ?? []));
    this.olderCursor.set(roomId, page.before);
    this.changed();
  }

  /**
   * A message was edited: the loaded copy (and the sidebar's last message) take the new
   * version, unless they already hold a later edit (the answer to one's own edit can arrive
   * after the event of a next one). An edit of a message not loaded is ignored; it loads
   * edited with its page.
   * @param {Message} msg
   */
  editMessage(msg) {
    const list = this.messages.get(msg.room_id);
    const i = list ? list.findIndex((m) => m.id === msg.id) : -1;
    if (list && i >= 0 && (msg.edited_at ?? 0) >= (list[i].edited_at ?? 0)) list[i] = msg;
    const room = this.rooms.get(msg.room_id);
    if (room && room.last_message?.id === msg.id) room.last_message = msg;
    this.changed();
  }

  /**
   * Adds (or replaces) a message; returns whether it was new.
   * @param {Message} msg
   */
  addMessage(msg) {
    const list = this.messages.get(msg.room_id);
    let fresh = true;
    if (list) {
      const i = list.findIndex((m) => m.id === msg.id);
      if (i >= 0) {
        list[i] = msg;
        fresh = false;
      } else {
        list.push(msg);
        list.sort((a, b) => a.id - b.id);
      }
    }
    const room = this.rooms.get(msg.room_id);
    if (room && (!room.last_message || room.last_message.id <= msg.id)) room.last_message = msg;
    if (room && fresh && msg.author_id !== this.me.id && this.openRoomId !== msg.room_id) {
      room.unread_count = (room.unread_count ?? 0) + 1;
    }
    this.changed();
    return fresh;
  }

  /**
   * @param {number} roomId
   * @param {number} messageId
   */
  removeMessage(roomId, messageId) {
    this.deletedIds.add(messageId);
    const list = this.messages.get(roomId);
    if (list) this.messages.set(roomId, list.filter((m) => m.id !== messageId));
    this.changed();
  }

  /** @param {number} roomId */
  removeRoom(roomId) {
    this.rooms.delete(roomId);
    this.messages.delete(roomId);
    if (this.openRoomId === roomId) this.openRoomId = null;
    this.changed();
  }
}

// The realtime connection: one WebSocket per tab, JSON events in, reconnect with catch-up.
// Knows the protocol of docs/realtime.md; knows nothing about the page.

/**
 * @typedef {'connecting' | 'online' | 'reconnecting' | 'closed'} ConnectionStatus
 */

/** Close codes by which the server says this session is over (revoked or logged out, user deactivated). */
const AUTH_CLOSE_CODES = [4001, 4003];

const MIN_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 5000;

/**
 * A self-healing realtime connection. It remembers the highest stored position (`seq`) it
 * handed on and reconnects with `?since=` so nothing is lost or duplicated across a server
 * restart.
 */
export class RealtimeConnection {
  /**
   * @param {{onEvent: (event: any) => void, onStatus: (status: ConnectionStatus) => void,
   *   onCaughtUp: (info: {complete: boolean, reconnect: boolean}) => void,
   *   onBinary: (frame: Uint8Array) => void, onHello: (hello: any) => void,
   *   onAuthClosed?: (code: number) => void, onRefused?: () => void}} handlers
   *   `onAuthClosed`: the server closed the socket because the session is over (the connection
   *   stops for good); `onRefused`: a connection attempt failed before it opened (the server is
   *   down, or refused the session: the caller can ask the API which).
   */
  constructor(handlers) {
    this.handlers = handlers;
    /** @type {number | null} */
    this.lastSeq = null;
    /** @type {WebSocket | null} */
    this.socket = null;
    this.stopped = false;
    this.backoff = MIN_BACKOFF_MS;
    this.connectedOnce = false;
    /** @type {number | undefined} */
    this.retryTimer = undefined;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.socket) this.socket.close(1000);
    this.socket = null;
    this.handlers.onStatus('closed');
  }

  open() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const since = this.lastSeq === null ? '' : `?since=${this.lastSeq}`;
    const socket = new WebSocket(`${scheme}://${location.host}/api/v1/ws${since}`);
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    this.handlers.onStatus(this.connectedOnce ? 'reconnecting' : 'connecting');
    let opened = false;
    socket.onopen = () => {
      opened = true;
    };
    socket.onmessage = (msg) => {
      if (typeof msg.data !== 'string') {
        this.handlers.onBinary(new Uint8Array(msg.data));
        return;
      }
      let event;
      try {
        event = JSON.parse(msg.data);
      } catch {
        return;
      }
      this.receive(event);
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      if (AUTH_CLOSE_CODES.includes(ev.code)) {
        // Reconnecting would only be refused: the session is over.
        this.stopped = true;
        this.handlers.onStatus('closed');
        this.handlers.onAuthClosed?.(ev.code);
        return;
      }
      if (!opened) this.handlers.onRefused?.();
      this.handlers.onStatus('reconnecting');
      this.retryTimer = setTimeout(() => this.open(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    };
  }

  /**
   * Sends a JSON event; false when the socket is not open.
   * @param {unknown} event
   */
  sendJson(event) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(event));
    return true;
  }

  /**
   * Sends a binary (ephemeral) frame; false when the socket is not open.
   * @param {Uint8Array} frame
   */
  sendBinary(frame) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(frame);
    return true;
  }

  /** @param {any} event */
  receive(event) {
    if (event.type === 'hello') {
      this.handlers.onHello(event);
      return;
    }
    if (event.type === 'catch_up_done') {
      const reconnect = this.connectedOnce;
      this.connectedOnce = true;
      this.backoff = MIN_BACKOFF_MS;
      if (this.lastSeq === null || event.last_seq > this.lastSeq) this.lastSeq = event.last_seq;
      this.handlers.onStatus('online');
      this.handlers.onCaughtUp({ complete: event.complete !== false, reconnect });
      return;
    }
    if (typeof event.seq === 'number') {
      if (this.lastSeq !== null && event.seq <= this.lastSeq) return;
      this.lastSeq = event.seq;
    }
    this.handlers.onEvent(event);
  }
}

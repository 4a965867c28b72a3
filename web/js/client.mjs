// The connection to an edge over a WebSocket: requests matched to responses by seq,
// pushes as events, SYS/HELLO and SYS/PING at a third of the idle timeout, and
// reconnecting with backoff after a drop (unless stopped or kicked).
import { CMD, FLAG_PUSH, FLAG_RESPONSE, decodeFrame, encodeFrame } from "./protocol.mjs";

export class ImbusClient extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.ws = null;
    this.seq = 0;
    this.pending = new Map(); // seq -> {resolve, timer}
    this.state = "offline"; // offline | connecting | online
    this.stopped = true;
    this.backoffMs = 250;
    this.pingTimer = null;
    this.reconnectTimer = null;
    this.maxFrame = 65536;
    this.idleTimeoutS = 30;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  // Closes for good (no reconnect), e.g. after AUTH/KICKED or a logout.
  stop(reason = "closed") {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    if (this.ws) this.ws.close(1000, reason);
  }

  setState(state, detail = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, ...detail } }));
  }

  open() {
    clearTimeout(this.reconnectTimer);
    this.setState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.scheduleReconnect(`cannot open ${this.url}: ${e.message}`);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = async () => {
      this.backoffMs = 250;
      const hello = await this.call(CMD.HELLO, { client: "imbus-web", version: 1 });
      if (hello.code === 0) {
        this.maxFrame = hello.max_frame || this.maxFrame;
        this.idleTimeoutS = hello.idle_timeout_s || this.idleTimeoutS;
      }
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.call(CMD.PING, {}), (this.idleTimeoutS * 1000) / 3);
      this.setState("online");
    };
    ws.onmessage = (ev) => this.onFrame(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.pingTimer);
      for (const [, p] of this.pending) {
        clearTimeout(p.timer);
        p.resolve({ code: 7, error: "connection lost" });
      }
      this.pending.clear();
      const why = ev.code === 1006 ? "connection lost" : `closed ${ev.code} ${ev.reason || ""}`;
      if (this.stopped) {
        this.setState("offline", { why });
      } else {
        this.scheduleReconnect(why);
      }
    };
  }

  scheduleReconnect(why) {
    const wait = this.backoffMs * (0.5 + Math.random());
    this.backoffMs = Math.min(this.backoffMs * 2, 4000);
    this.setState("offline", { why, retryMs: wait });
    this.reconnectTimer = setTimeout(() => this.open(), wait);
  }

  onFrame(data) {
    let f;
    try {
      f = decodeFrame(data);
    } catch (e) {
      console.warn("bad frame from the server", e);
      return;
    }
    if (f.flags & FLAG_RESPONSE) {
      const p = this.pending.get(f.seq);
      if (!p) return;
      this.pending.delete(f.seq);
      clearTimeout(p.timer);
      p.resolve(f.body || { code: 8 });
    } else if (f.flags & FLAG_PUSH) {
      this.dispatchEvent(new CustomEvent("push", { detail: f }));
    } else if (f.service === CMD.ERROR[0] && f.command === CMD.ERROR[1]) {
      this.dispatchEvent(new CustomEvent("fatal", { detail: f.body }));
    }
  }

  // Resolves with the answer's body (whatever its code); {code: 7} when not connected
  // or when no answer came in time.
  call([service, command], body = {}, timeoutMs = 20000) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.resolve({ code: 7, error: "not connected" });
    }
    this.seq = this.seq >= 0xfffffff0 ? 1 : this.seq + 1;
    const seq = this.seq;
    const frame = encodeFrame(service, command, seq, body);
    if (frame.length > this.maxFrame) {
      return Promise.resolve({ code: 9, error: `request of ${frame.length} bytes is over the limit` });
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        resolve({ code: 7, error: "no answer in time" });
      }, timeoutMs);
      this.pending.set(seq, { resolve, timer });
      ws.send(frame);
    });
  }
}

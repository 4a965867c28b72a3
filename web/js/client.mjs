// The connection to an edge over a WebSocket: requests matched to responses by seq,
// pushes as events, SYS/HELLO and SYS/PING at a third of the idle timeout, and
// reconnecting with backoff after a drop (unless stopped or kicked); files: upload
// with resume after a reconnect, and pipelined download (docs/protocol.md 6.9).
import { CMD, FLAG_PUSH, FLAG_RESPONSE, decodeFrame, encodeFrame } from "./protocol.mjs";
import { hex, sha256 } from "./sha256.mjs";

// The largest file the web app sends: it reads the whole file into memory to take its
// SHA-256 (WebCrypto has no incremental digest). Larger files: the imbus CLI.
export const WEB_MAX_FILE = 64 * 1024 * 1024;
const DOWNLOADS_IN_FLIGHT = 4;
const RETRIES = 20; // transient failures in a row (connection lost, UNAVAILABLE)

// Answers after which the same request may succeed later: not connected / no answer /
// UNAVAILABLE (7), INTERNAL (8), RATE_LIMITED (6), and UNAUTHENTICATED (2) right
// after a reconnect, before the app's RESUME.
const transient = (r) => r.code === 7 || r.code === 8 || r.code === 6 || r.code === 2;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A file name the server takes (1-255 bytes of UTF-8, no / \ or control characters).
export function fileName(name) {
  let n = String(name || "").replace(/[\u0000-\u001f\u007f/\\]/g, "_") || "file";
  const enc = new TextEncoder();
  while (enc.encode(n).length > 255) n = n.slice(0, -1);
  return n;
}

export function formatSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(1)} GiB`;
}

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
    this.ready = false; // connected and logged in (the app calls markReady)
  }

  // The app calls this once logged in (LOGIN or RESUME) on the current connection.
  markReady() {
    this.ready = true;
    this.dispatchEvent(new CustomEvent("ready"));
  }

  // Resolves true once connected and logged in, false after timeoutMs.
  whenReady(timeoutMs = 60000) {
    if (this.ready) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok) => {
        clearTimeout(timer);
        this.removeEventListener("ready", onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.addEventListener("ready", onReady);
    });
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
      this.ready = false;
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

  // Waits after a transient failure: RATE_LIMITED's retry_ms, else until logged in
  // again (after a reconnect) and a short backoff. False when it is not worth going on.
  // RATE_LIMITED is no failure and uses up no attempt: the server says when to come
  // back (the edge's file byte budget refuses pipelined DOWNLOADs and chunks often
  // while other files move).
  async recover(r, attempt) {
    if (r.code === 6) {
      await sleep(r.retry_ms || 1000);
      return true;
    }
    if (attempt >= RETRIES) return false;
    if (r.code === 2 && this.ready) return false; // logged out for real
    await sleep(Math.min(200 * attempt, 2000));
    return this.whenReady();
  }

  // Uploads a browser File (FILE/UPLOAD_START, UPLOAD_CHUNK one at a time from the
  // offset the server gives, UPLOAD_FINISH). After a dropped connection it waits for
  // the app to be logged in again and STARTs again, which resumes the upload where the
  // server's bytes end. onProgress(sent, size); onStart(offset) after each START (a
  // resume has offset > 0). opts.signal (an AbortSignal) cancels. Resolves with the
  // file object (code 0) or an error answer.
  async upload(file, { onProgress = () => {}, onStart = () => {}, signal } = {}) {
    if (file.size > WEB_MAX_FILE) {
      return { code: 9, error: `${formatSize(file.size)}; the web app sends files up to ${formatSize(WEB_MAX_FILE)}` };
    }
    const bytes = new Uint8Array(await file.arrayBuffer());
    const size = bytes.length;
    const start = { name: fileName(file.name), size, sha256: await sha256(bytes) };
    if (/^[\x20-\x7e]{1,127}$/.test(file.type || "")) start.mime = file.type;
    let upload = null, offset = 0, chunk = 0, attempt = 0;
    for (;;) {
      if (signal && signal.aborted) {
        if (upload) await this.call(CMD.UPLOAD_CANCEL, { upload });
        return { code: -1, cancelled: true, error: "cancelled" };
      }
      let r;
      if (!upload) {
        r = await this.call(CMD.UPLOAD_START, start);
        if (r.code === 0) {
          ({ upload, offset } = r);
          // The server's chunk, and one that fits a frame with room for the header.
          chunk = Math.max(1, Math.min(r.chunk || 32768, this.maxFrame - 1024));
          onStart(offset);
          onProgress(offset, size);
          continue;
        }
      } else if (offset >= size) {
        r = await this.call(CMD.UPLOAD_FINISH, { upload });
        if (r.code === 0) {
          onProgress(size, size);
          return r;
        }
      } else {
        r = await this.call(CMD.UPLOAD_CHUNK, { upload, offset, data: bytes.subarray(offset, offset + chunk) });
        if (r.code === 0 || (r.code === 5 && typeof r.offset === "number")) {
          offset = r.offset;
          attempt = 0;
          onProgress(offset, size);
          continue;
        }
      }
      // NOT_FOUND just after a transient failure: the upload was finished (the answer
      // was lost) or expired meanwhile; a new START sends the file again.
      const gone = r.code === 4 && upload && attempt > 0 && attempt < RETRIES;
      if (gone) {
        upload = null;
        attempt++;
        continue;
      }
      if (r.code !== 6) ++attempt;
      if (!transient(r) || !(await this.recover(r, attempt))) return r;
      if (r.code !== 6) upload = null; // after a reconnect, START again: it resumes
    }
  }

  // Downloads a file (a file object {file, size, sha256, mime}) with several
  // FILE/DOWNLOADs in flight, checks the SHA-256 and resolves {code: 0, blob} or an
  // error answer. onProgress(received, size).
  async download(f, { onProgress = () => {} } = {}) {
    const first = await this.downloadAt(f.file, 0);
    if (first.code !== 0) return first;
    const size = first.size;
    const chunk = first.data.length;
    const out = new Uint8Array(size);
    out.set(first.data.subarray(0, size), 0);
    let next = chunk, received = Math.min(chunk, size), failed = null;
    onProgress(received, size);
    const worker = async () => {
      while (next < size && !failed) {
        const at = next;
        next += chunk;
        const r = await this.downloadAt(f.file, at, Math.min(chunk, size - at));
        if (failed) return;
        if (r.code !== 0) {
          failed = r;
        } else if (r.data.length !== Math.min(chunk, size - at)) {
          failed = { code: 12, error: `short chunk at ${at}` };
        } else {
          out.set(r.data, at);
          received += r.data.length;
          onProgress(received, size);
        }
      }
    };
    if (chunk > 0) await Promise.all(Array.from({ length: DOWNLOADS_IN_FLIGHT }, worker));
    if (failed) return failed;
    if (f.sha256 && hex(await sha256(out)) !== hex(f.sha256)) {
      return { code: 12, error: "the downloaded bytes do not have the file's SHA-256" };
    }
    return { code: 0, blob: new Blob([out], { type: f.mime || "application/octet-stream" }) };
  }

  async downloadAt(file, offset, length) {
    const body = length ? { file, offset, length } : { file, offset };
    for (let attempt = 0; ; ) {
      const r = await this.call(CMD.DOWNLOAD, body);
      if (r.code === 0) {
        if (!(r.data instanceof Uint8Array) || typeof r.size !== "number") {
          return { code: 8, error: "malformed DOWNLOAD answer" };
        }
        return r;
      }
      if (r.code !== 6) ++attempt;
      if (!transient(r) || !(await this.recover(r, attempt))) return r;
    }
  }
}

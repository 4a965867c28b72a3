// The imbus web chat app: log in (the token is kept for reloads and RESUMEd on every
// reconnect), users, friends, groups, 1:1 and group chat with live messages, unread
// counts from MSG/CONVERSATIONS, history scrolling back, SYNC and ACK after a
// (re)connect, live PRESENCE/STATUS of friends; friend requests, read receipts,
// typing notices, recall and edit of one's own messages; files and images (attach
// button or drop, upload with progress and resume, images inline, downloads).
import { ImbusClient, formatSize } from "./client.mjs";
import { CMD, describeError } from "./protocol.mjs";

const $ = (id) => document.getElementById(id);
const store = window.localStorage;
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
const client = new ImbusClient(wsUrl);
window.imbusClient = client; // for a look from the browser's console (and the tests)

// The device name of this browser: one token per device (a LOGIN on the same device
// elsewhere kicks this one).
if (!store.getItem("imbus.device")) {
  store.setItem("imbus.device", "web-" + Math.random().toString(36).slice(2, 10));
}
const device = store.getItem("imbus.device");

const state = {
  me: null, // {uid, name}
  names: new Map(), // uid -> name
  online: new Map(), // uid -> bool
  friends: new Map(), // uid -> {uid, name, online}
  groups: new Map(), // gid -> {gid, name, desc, role}
  convs: new Map(), // conv -> {conv, last_seq, acked_seq, messages: Map seq->msg, oldest, complete}
  open: null, // conv id shown
  openTarget: null, // {to} or {gid}
  outbox: new Map(), // cmid -> {conv, target, text}
  usersPage: 1,
  members: null, // {gid, after}
  loggingIn: false,
  requests: [], // incoming friend requests [{uid, name, ts}]
  typing: new Map(), // conv -> {uid, until}
  lastTyping: 0, // ms: when this browser last sent TYPING
  fileUrls: new Map(), // file id -> object URL of its downloaded (or uploaded) bytes
  fileLoads: new Map(), // file id -> Promise of {url} or an error answer
};

// Images up to this size are downloaded and shown in the message; larger ones, and
// other files, are a link that downloads on click.
const INLINE_IMAGE_MAX = 8 * 1024 * 1024;
const IMAGE_BOX = { w: 320, h: 240 }; // the largest inline image, in CSS pixels

const is = (f, cmd) => f.service === cmd[0] && f.command === cmd[1];

// ---- notices ---------------------------------------------------------------------

let noticeTimer = null;
function notice(text, isError = true) {
  const n = $("notice");
  n.textContent = text;
  n.className = isError ? "error" : "";
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (n.hidden = true), 8000);
}

// Calls and reports an error answer to the user; returns the body or null.
async function call(cmd, body, what) {
  const r = await client.call(cmd, body);
  if (r.code !== 0) {
    notice(`${what}: ${describeError(r)}`);
    return null;
  }
  return r;
}

// ---- connection and session --------------------------------------------------------

client.addEventListener("state", (ev) => {
  const { state: s, why, retryMs } = ev.detail;
  const el = $("conn-state");
  el.className = `state ${s}`;
  el.textContent =
    s === "online" ? "online" : s === "connecting" ? "connecting…" : `offline${why ? ": " + why : ""}`;
  if (s === "offline" && retryMs !== undefined) el.textContent += ` (retrying)`;
  if (s === "online") onConnected();
});

client.addEventListener("fatal", (ev) => {
  notice(`The server closed the connection: ${describeError(ev.detail)}`);
});

client.addEventListener("push", (ev) => {
  const f = ev.detail;
  if (f.service === CMD.MESSAGE[0] && f.command === CMD.MESSAGE[1]) {
    onMessage(f.body, true);
  } else if (f.service === CMD.STATUS[0] && f.command === CMD.STATUS[1]) {
    onStatus(f.body.uid, !!f.body.online);
  } else if (is(f, CMD.READ)) {
    const c = convFor(f.body.conv);
    if (f.body.uid !== state.me?.uid) {
      c.peer_read = Math.max(c.peer_read || 0, f.body.seq);
      if (state.open === f.body.conv) renderMessages();
    }
  } else if (is(f, CMD.TYPING_NOTICE)) {
    // Shown for 5 s (renewed by the next notice, cleared by a message from them).
    state.typing.set(f.body.conv, { uid: f.body.uid, until: Date.now() + 5000 });
    renderTitle();
    setTimeout(renderTitle, 5100);
  } else if (is(f, CMD.UPDATED)) {
    const c = convFor(f.body.conv);
    if (c.messages.has(f.body.seq)) c.messages.set(f.body.seq, f.body);
    if (state.open === f.body.conv) renderMessages();
  } else if (is(f, CMD.DELETED)) {
    const c = state.convs.get(f.body.conv);
    if (c) c.messages.delete(f.body.seq);
    if (state.open === f.body.conv) renderMessages();
  } else if (is(f, CMD.FRIEND_EVENT)) {
    const who = f.body.name || nameOf(f.body.uid);
    if (f.body.event === "request") notice(`${who} asks to be your friend (Friends tab).`, false);
    if (f.body.event === "friends") notice(`${who} is now your friend.`, false);
    loadFriends();
  } else if (is(f, CMD.GROUP_EVENT)) {
    // Only changes of one's own membership change the group list.
    if (f.body.uid === state.me?.uid || f.body.event === "dissolved") loadGroups();
  } else if (f.service === CMD.KICKED[0] && f.command === CMD.KICKED[1]) {
    // The server closes the connection next; the app reconnects but, with the token
    // forgotten, does not log in again by itself (that would kick the other session).
    forgetSession();
    showLogin(`You were signed out: ${f.body.reason || "kicked"}. Log in again to continue here.`);
  }
});

async function onConnected() {
  const token = store.getItem("imbus.token");
  if (!token) {
    showLogin();
    return;
  }
  const r = await client.call(CMD.RESUME, { token, device });
  if (r.code === 0) {
    await enter({ uid: r.uid, name: r.name });
  } else if (r.code === 2) {
    forgetSession();
    showLogin("Your session has ended; please log in again.");
  } else {
    notice(`Resuming the session: ${describeError(r)}`);
  }
}

function forgetSession() {
  store.removeItem("imbus.token");
  state.me = null;
}

function showLogin(message = "") {
  $("main-view").hidden = true;
  $("logout-btn").hidden = true;
  $("me").textContent = "";
  $("login-view").hidden = false;
  if (message) $("login-error").textContent = message;
}

async function login(register) {
  const name = $("name").value.trim();
  const password = $("password").value;
  $("login-error").textContent = "";
  if (client.state !== "online") {
    $("login-error").textContent = "Not connected to the server yet; wait a moment.";
    return;
  }
  if (register) {
    const r = await client.call(CMD.REGISTER, { name, password });
    if (r.code !== 0) {
      $("login-error").textContent = `Register: ${describeError(r)}`;
      return;
    }
  }
  const r = await client.call(CMD.LOGIN, { name, password, device });
  if (r.code !== 0) {
    $("login-error").textContent = `Log in: ${describeError(r)}`;
    return;
  }
  store.setItem("imbus.token", r.token);
  $("password").value = "";
  await enter({ uid: r.uid, name: r.name });
}

async function logout() {
  await client.call(CMD.LOGOUT, {});
  forgetSession();
  for (const url of state.fileUrls.values()) URL.revokeObjectURL(url);
  state.fileUrls.clear();
  state.fileLoads.clear();
  state.convs.clear();
  state.open = null;
  showLogin("Logged out.");
}

// Logged in (by LOGIN or RESUME): catch up, then show everything.
async function enter(me) {
  state.me = me;
  client.markReady(); // uploads waiting for the reconnect go on
  state.names.set(me.uid, me.name);
  $("login-view").hidden = true;
  $("main-view").hidden = false;
  $("logout-btn").hidden = false;
  $("me").textContent = `${me.name} (uid ${me.uid})`;
  await loadConversations();
  await syncMessages();
  await Promise.all([loadFriends(), loadGroups(), loadUsers()]);
  await flushOutbox();
  renderConversations();
  if (state.open) await openConversation(state.open, state.openTarget, true);
}

// ---- conversations, SYNC, ACK ------------------------------------------------------

function convFor(id) {
  let c = state.convs.get(id);
  if (!c) {
    c = { conv: id, last_seq: 0, acked_seq: 0, messages: new Map(), oldest: 0, complete: false };
    state.convs.set(id, c);
  }
  return c;
}

function directConv(a, b) {
  return a <= b ? `d:${a}:${b}` : `d:${b}:${a}`;
}

function peerOf(conv) {
  if (!conv.startsWith("d:")) return null;
  const [, a, b] = conv.split(":").map(Number);
  return a === state.me.uid ? b : a;
}

function targetOf(conv) {
  return conv.startsWith("g:") ? { gid: Number(conv.slice(2)) } : { to: peerOf(conv) };
}

function titleOf(conv) {
  if (conv.startsWith("g:")) {
    const g = state.groups.get(Number(conv.slice(2)));
    return g ? `# ${g.name}` : `# group ${conv.slice(2)}`;
  }
  const uid = peerOf(conv);
  return nameOf(uid);
}

function nameOf(uid) {
  if (state.names.has(uid)) return state.names.get(uid);
  state.names.set(uid, `user ${uid}`);
  client.call(CMD.GET_USER, { uid }).then((r) => {
    if (r.code === 0) {
      state.names.set(uid, r.name);
      renderConversations();
      renderMessages();
    } else if (r.code === 4) {
      state.names.set(uid, "(deleted user)");
    }
  });
  return state.names.get(uid);
}

// Every page of MSG/CONVERSATIONS: last_seq and acked_seq give the unread counts.
async function loadConversations() {
  let after;
  for (;;) {
    const body = after === undefined ? {} : { after };
    const r = await call(CMD.CONVERSATIONS, body, "Loading conversations");
    if (!r) return;
    for (const c of r.convs) {
      const local = convFor(c.conv);
      local.last_seq = Math.max(local.last_seq, c.last_seq);
      local.acked_seq = Math.max(local.acked_seq, c.acked_seq);
      if (c.peer_acked_seq !== undefined) {
        local.peer_read = Math.max(local.peer_read || 0, c.peer_acked_seq);
      }
    }
    if (!r.more || r.convs.length === 0) break;
    after = r.convs[r.convs.length - 1].conv;
  }
}

// MSG/SYNC: what arrived while this browser was away. Not ACKed here (they count as
// unread until their conversation is opened), except to page past a full batch.
async function syncMessages() {
  for (let round = 0; round < 20; ++round) {
    const r = await call(CMD.SYNC, { limit: 500 }, "Fetching new messages");
    if (!r) return;
    const last = new Map();
    for (const m of r.messages) {
      onMessage(m, false);
      last.set(m.conv, Math.max(last.get(m.conv) || 0, m.seq));
    }
    if (!r.more) return;
    for (const [conv, seq] of last) await client.call(CMD.ACK, { conv, seq });
  }
}

async function ack(conv) {
  const c = state.convs.get(conv);
  if (!c || c.last_seq <= c.acked_seq) return;
  const seq = c.last_seq;
  const r = await client.call(CMD.ACK, { conv, seq });
  if (r.code === 0) c.acked_seq = Math.max(c.acked_seq, seq);
  renderConversations();
}

function onMessage(m, live) {
  const c = convFor(m.conv);
  if (!state.names.has(m.from) && m.from !== undefined) nameOf(m.from);
  c.messages.set(m.seq, m);
  c.last_seq = Math.max(c.last_seq, m.seq);
  if (m.from === state.me?.uid) c.acked_seq = Math.max(c.acked_seq, m.seq);
  if (!c.oldest || m.seq < c.oldest) c.oldest = c.oldest ? Math.min(c.oldest, m.seq) : m.seq;
  if (state.typing.get(m.conv)?.uid === m.from) {
    state.typing.delete(m.conv);
    renderTitle();
  }
  if (live && state.open === m.conv && document.visibilityState !== "hidden") ack(m.conv);
  renderConversations();
  if (state.open === m.conv) renderMessages(true);
}

function unreadOf(c) {
  return Math.max(0, c.last_seq - c.acked_seq);
}

function renderConversations() {
  const list = $("conv-list");
  list.replaceChildren();
  const convs = [...state.convs.values()].filter((c) => c.last_seq > 0 || c.conv === state.open);
  convs.sort((a, b) => lastTs(b) - lastTs(a) || (a.conv < b.conv ? -1 : 1));
  for (const c of convs) {
    const li = document.createElement("li");
    li.className = "conv" + (c.conv === state.open ? " open" : "");
    li.dataset.conv = c.conv;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = state.me ? titleOf(c.conv) : c.conv;
    const badge = document.createElement("span");
    badge.className = "unread";
    const n = unreadOf(c);
    badge.dataset.n = String(n);
    badge.textContent = n > 0 ? String(n) : "";
    li.append(name, badge);
    li.onclick = () => openConversation(c.conv, targetOf(c.conv));
    list.append(li);
  }
  $("conv-empty").hidden = convs.length > 0;
}

function lastTs(c) {
  let ts = 0;
  for (const m of c.messages.values()) ts = Math.max(ts, m.ts || 0);
  return ts;
}

// ---- the open conversation: history, sending -----------------------------------

async function openConversation(conv, target, reopen = false) {
  state.open = conv;
  state.openTarget = target;
  $("chat-title").textContent = titleOf(conv);
  $("composer-text").disabled = false;
  $("send-btn").disabled = false;
  $("file-input").disabled = false;
  $("attach-btn").classList.remove("disabled");
  const c = convFor(conv);
  if (!reopen) showTab("panel-chats");
  // The newest page of HISTORY when the newest known message is not loaded yet.
  if (c.messages.size === 0 || !c.messages.has(c.last_seq)) await loadHistory(conv, 0);
  renderConversations();
  renderMessages(true);
  await ack(conv);
  $("composer-text").focus();
}

async function loadHistory(conv, before) {
  const c = convFor(conv);
  const body = { conv, limit: 30 };
  if (before) body.before = before;
  const r = await client.call(CMD.HISTORY, body);
  if (r.code === 4 && c.last_seq === 0) {
    c.complete = true; // a new conversation: nothing stored yet
    return;
  }
  if (r.code !== 0) {
    notice(`Loading history: ${describeError(r)}`);
    return;
  }
  for (const m of r.messages) {
    c.messages.set(m.seq, m);
    c.last_seq = Math.max(c.last_seq, m.seq);
    if (!c.oldest || m.seq < c.oldest) c.oldest = m.seq;
    if (!state.names.has(m.from)) nameOf(m.from);
  }
  if (r.messages.length < 30 || c.oldest === 1) c.complete = true;
}

async function loadOlder() {
  const conv = state.open;
  if (!conv) return;
  const c = convFor(conv);
  if (c.complete) return;
  const box = $("messages");
  const fromBottom = box.scrollHeight - box.scrollTop;
  await loadHistory(conv, c.oldest || 0);
  renderMessages(false);
  box.scrollTop = box.scrollHeight - fromBottom; // keep the view where it was
}

function renderMessages(toBottom = false) {
  const list = $("message-list");
  const c = state.open ? state.convs.get(state.open) : null;
  list.replaceChildren();
  $("load-older").hidden = !c || c.complete;
  if (!c) return;
  const msgs = [...c.messages.values()].sort((a, b) => a.seq - b.seq);
  for (const m of msgs) list.append(messageItem(m, false));
  for (const [cmid, p] of state.outbox) {
    if (p.conv !== state.open) continue;
    const m = { from: state.me.uid, text: p.text, cmid };
    if (p.file) m.file = p.uploaded || { name: p.file.name, size: p.file.size, mime: p.file.type };
    list.append(messageItem(m, true));
  }
  if (toBottom) $("messages").scrollTop = $("messages").scrollHeight;
}

function messageItem(m, pending) {
  const li = document.createElement("li");
  const mine = state.me && m.from === state.me.uid;
  li.className = "msg" + (mine ? " mine" : "") + (pending ? " pending" : "");
  if (m.seq) li.dataset.seq = String(m.seq);
  const from = document.createElement("div");
  from.className = "from";
  from.textContent = mine ? "you" : nameOf(m.from);
  if (m.ts) {
    const t = document.createElement("span");
    t.className = "time";
    t.textContent = new Date(m.ts).toLocaleTimeString();
    from.append(t);
  }
  if (pending) from.append(" · sending…");
  const c = state.convs.get(m.conv);
  if (mine && !pending && c && m.seq <= (c.peer_read || 0)) from.append(" · read");
  if (m.edited_ts) from.append(" · edited");
  const text = document.createElement("div");
  text.className = "text" + (m.recalled ? " recalled" : "");
  text.textContent = m.recalled ? "(message recalled)" : m.text;
  // The server's text for a file sent without one ("[file] NAME") is not repeated.
  if (m.file && !m.recalled && (!m.text || m.text === `[file] ${m.file.name}`)) text.hidden = true;
  li.append(from, text);
  if (m.file && !m.recalled) li.append(pending ? uploadView(m) : fileView(m.file));
  if (mine && !pending && !m.recalled && m.seq) {
    // The server keeps the windows (2 min to recall, 24 h to edit) and says so.
    li.append(
      button("Edit", "edit", async () => {
        const t = window.prompt("Edit the message", m.text);
        if (t && t !== m.text) {
          const r = await call(CMD.EDIT, { conv: m.conv, seq: m.seq, text: t }, "Editing");
          if (r) onUpdated(r.message);
        }
      }),
      button("Recall", "recall", async () => {
        const r = await call(CMD.RECALL, { conv: m.conv, seq: m.seq }, "Recalling");
        if (r) onUpdated(r.message);
      }),
    );
  }
  return li;
}

function onUpdated(m) {
  convFor(m.conv).messages.set(m.seq, m);
  if (state.open === m.conv) renderMessages();
}

function renderTitle() {
  if (!state.open) return;
  const t = state.typing.get(state.open);
  const typing = t && t.until > Date.now() ? ` — ${nameOf(t.uid)} is typing…` : "";
  $("chat-title").textContent = titleOf(state.open) + typing;
}

// TYPING to the open conversation while the user types, at most every 3 s.
function noteTyping() {
  if (!state.open || !$("composer-text").value || Date.now() - state.lastTyping < 3000) return;
  state.lastTyping = Date.now();
  client.call(CMD.TYPING, { conv: state.open });
}

// ---- files ------------------------------------------------------------------------

// At most this many files download at once (each has several DOWNLOADs in flight):
// a conversation full of images does not flood the connection's request rate.
const DOWNLOADS_AT_ONCE = 2;
let downloading = 0;
const downloadQueue = [];

async function limitedDownload(f, onProgress) {
  while (downloading >= DOWNLOADS_AT_ONCE) await new Promise((go) => downloadQueue.push(go));
  downloading++;
  try {
    return await client.download(f, { onProgress });
  } finally {
    downloading--;
    if (downloadQueue.length) downloadQueue.shift()();
  }
}

// Downloads a file once (FILE/DOWNLOAD, checked against its sha256) into an object URL.
function loadFile(f, onProgress = () => {}) {
  if (state.fileUrls.has(f.file)) return Promise.resolve({ code: 0, url: state.fileUrls.get(f.file) });
  if (!state.fileLoads.has(f.file)) {
    const p = limitedDownload(f, onProgress).then((r) => {
      if (r.code !== 0) {
        state.fileLoads.delete(f.file); // try again on the next render or click
        return r;
      }
      const url = URL.createObjectURL(r.blob);
      state.fileUrls.set(f.file, url);
      return { code: 0, url };
    });
    state.fileLoads.set(f.file, p);
  }
  return state.fileLoads.get(f.file);
}

function isInlineImage(f) {
  return /^image\//.test(f.mime || "") && f.size <= INLINE_IMAGE_MAX;
}

// A file in a message: an image shown inline (its width/height reserve the space
// before the bytes are there), or a link that downloads the file.
function fileView(f) {
  const box = document.createElement("div");
  box.className = "file";
  box.dataset.file = f.file;
  const meta = document.createElement("div");
  meta.className = "meta";
  const link = document.createElement("a");
  link.className = "file-link";
  link.textContent = f.name;
  link.href = state.fileUrls.get(f.file) || "#";
  link.download = f.name;
  link.title = `${f.mime || "application/octet-stream"}, ${f.size} bytes`;
  const size = document.createElement("span");
  size.textContent = ` · ${formatSize(f.size)}`;
  const status = document.createElement("span");
  status.className = "status";
  meta.append(link, size, status);
  const failed = (r) => {
    status.className = "status error";
    status.textContent = ` · ${describeError(r, true)}`;
  };
  link.onclick = async (ev) => {
    if (state.fileUrls.has(f.file)) return; // the browser saves the object URL
    ev.preventDefault();
    status.className = "status";
    status.textContent = " · downloading…";
    const r = await loadFile(f, (got, size) => {
      status.textContent = ` · downloading ${size ? Math.floor((got * 100) / size) : 100}%`;
    });
    if (r.code !== 0) return failed(r);
    status.textContent = "";
    link.href = r.url;
    link.click();
  };
  if (isInlineImage(f)) {
    const img = document.createElement("img");
    img.alt = f.name;
    if (f.width > 0 && f.height > 0) {
      const scale = Math.min(1, IMAGE_BOX.w / f.width, IMAGE_BOX.h / f.height);
      img.width = Math.max(1, Math.round(f.width * scale));
      img.height = Math.max(1, Math.round(f.height * scale));
    } else {
      img.width = IMAGE_BOX.w / 2;
      img.height = IMAGE_BOX.h / 2;
    }
    img.onclick = () => link.click();
    img.onerror = () => {
      if (!img.src) return;
      img.hidden = true; // not an image a browser shows: the link stays
      status.textContent = " · cannot be shown";
    };
    box.append(img);
    if (state.fileUrls.has(f.file)) {
      img.src = state.fileUrls.get(f.file);
    } else {
      loadFile(f).then((r) => {
        if (r.code !== 0) return failed(r);
        img.src = r.url;
        link.href = r.url;
      });
    }
  }
  box.append(meta);
  return box;
}

// A file being sent: its name and a progress bar (updated in place by progressOf).
function uploadView(m) {
  const box = document.createElement("div");
  box.className = "file uploading";
  const p = state.outbox.get(m.cmid);
  const bar = document.createElement("progress");
  bar.id = `progress-${m.cmid}`;
  bar.max = 1;
  bar.value = p && p.progress ? p.progress : 0;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = ` ${m.file.name} · ${formatSize(m.file.size)} `;
  if (p && p.resumedAt) meta.textContent += `· resumed at ${formatSize(p.resumedAt)} `;
  box.append(bar, meta);
  if (p && !p.uploaded) {
    box.append(
      button("Cancel", "cancel", () => {
        p.abort.abort(); // a running upload stops at its next chunk and is discarded
        if (!p.uploading) {
          state.outbox.delete(m.cmid);
          renderMessages();
        }
      }),
    );
  }
  return box;
}

function progressOf(cmid, sent, size) {
  const p = state.outbox.get(cmid);
  if (!p) return;
  p.progress = size > 0 ? sent / size : 1;
  const bar = document.getElementById(`progress-${cmid}`);
  if (bar) bar.value = p.progress;
}

// Sends files as messages to the open conversation: each is uploaded (with a progress
// bar) and then sent with MSG/SEND `file`.
async function sendFiles(files) {
  const conv = state.open;
  if (!conv) return;
  for (const file of files) {
    const cmid = `web-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
    state.outbox.set(cmid, { conv, target: state.openTarget, text: "", file, abort: new AbortController() });
    renderMessages(true);
    trySend(cmid); // uploads one after another would wait; in parallel is fine
  }
}

// Uploads an outbox entry's file (once; upload() itself resumes after a reconnect).
// True when uploaded; else the entry is dropped with a notice, or kept to retry.
async function uploadOf(cmid) {
  const p = state.outbox.get(cmid);
  if (p.uploaded) return true;
  if (p.uploading) return false;
  p.uploading = true;
  const r = await client.upload(p.file, {
    onProgress: (sent, size) => progressOf(cmid, sent, size),
    onStart: (offset) => {
      if (offset > 0) {
        p.resumedAt = offset; // after a reconnect: the server had the bytes up to here
        renderMessages();
      }
    },
    signal: p.abort.signal,
  });
  p.uploading = false;
  if (r.code === 0) {
    p.uploaded = r;
    // This browser has the bytes: no need to download them again to show them.
    if (!state.fileUrls.has(r.file)) state.fileUrls.set(r.file, URL.createObjectURL(p.file));
    return true;
  }
  if (r.code === 7) {
    notice(`${p.file.name} is kept to send when the server is back: ${describeError(r, true)}`, false);
    return false;
  }
  state.outbox.delete(cmid);
  renderMessages();
  if (!r.cancelled) notice(`Sending ${p.file.name}: ${describeError(r, true)}`);
  return false;
}

async function send(text) {
  const conv = state.open;
  if (!conv || !text) return;
  const cmid = `web-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  state.outbox.set(cmid, { conv, target: state.openTarget, text });
  renderMessages(true);
  await trySend(cmid);
}

// Sends one outbox entry; kept for a retry (same cmid: never stored twice) when the
// connection or the service was not there.
async function trySend(cmid) {
  const p = state.outbox.get(cmid);
  if (!p) return;
  if (p.file && !(await uploadOf(cmid))) return;
  const body = { ...p.target, cmid };
  if (p.text) body.text = p.text;
  if (p.file) body.file = p.uploaded.file;
  const r = await client.call(CMD.SEND, body);
  if (!state.outbox.has(cmid)) return; // sent meanwhile (a reconnect's flush)
  if (r.code === 0) {
    state.outbox.delete(cmid);
    const m = { conv: r.conv, seq: r.seq, ts: r.ts, from: state.me.uid, text: p.text, cmid };
    if (p.file) {
      const { code, ...file } = p.uploaded;
      m.file = file;
      m.text = r.text || p.text || `[file] ${file.name}`;
    }
    onMessage(m, false);
    return;
  }
  if (r.code === 7 || r.code === 8 || r.code === 6) {
    notice(`Message kept to resend: ${describeError(r)}`, r.code !== 7);
    if (r.code === 6) {
      setTimeout(() => trySend(cmid), r.retry_ms || 1000);
    } else if (client.ready && (p.retries = (p.retries || 0) + 1) <= 5) {
      // No answer in time (or UNAVAILABLE, INTERNAL) on a live connection: ask again
      // soon (same cmid: never stored twice); after a drop, the reconnect resends.
      setTimeout(() => trySend(cmid), 1000 * p.retries);
    }
    return;
  }
  state.outbox.delete(cmid);
  renderMessages();
  notice(`Sending: ${describeError(r, !!p.file)}`);
}

async function flushOutbox() {
  for (const cmid of [...state.outbox.keys()]) await trySend(cmid);
}

// ---- friends, presence, users, groups --------------------------------------------

function onStatus(uid, online) {
  state.online.set(uid, online);
  const f = state.friends.get(uid);
  if (f) f.online = online;
  renderFriends();
  for (const li of document.querySelectorAll(`#user-list li[data-uid="${uid}"] .dot`)) {
    li.classList.toggle("on", online);
  }
}

async function loadRequests() {
  const r = await call(CMD.FRIEND_REQUESTS, { incoming: true }, "Loading friend requests");
  state.requests = r ? r.requests : [];
  const list = $("request-list");
  list.replaceChildren();
  for (const q of state.requests) {
    state.names.set(q.uid, q.name);
    const li = row(q.uid, `${q.name} asks to be your friend`, false);
    li.append(
      button("Accept", "accept", async () => {
        if (await call(CMD.ACCEPT_FRIEND, { uid: q.uid }, `Accepting ${q.name}`)) loadFriends();
      }),
      button("Decline", "decline", async () => {
        if (await call(CMD.DECLINE_FRIEND, { uid: q.uid }, `Declining ${q.name}`)) loadFriends();
      }),
    );
    list.append(li);
  }
}

async function loadFriends() {
  loadRequests();
  state.friends.clear();
  let after;
  for (;;) {
    const r = await call(CMD.LIST_FRIENDS, after === undefined ? {} : { after }, "Loading friends");
    if (!r) break;
    for (const f of r.friends) {
      state.friends.set(f.uid, f);
      state.names.set(f.uid, f.name);
    }
    if (!r.more || r.friends.length === 0) break;
    after = r.friends[r.friends.length - 1].uid;
  }
  renderFriends();
}

function renderFriends() {
  const list = $("friend-list");
  list.replaceChildren();
  for (const f of [...state.friends.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const li = row(f.uid, f.name, f.online);
    li.append(
      button("Chat", "chat", () => openConversation(directConv(state.me.uid, f.uid), { to: f.uid })),
      button("Remove", "remove", async () => {
        if (await call(CMD.REMOVE_FRIEND, { uid: f.uid }, `Removing ${f.name}`)) loadFriends();
      }),
    );
    list.append(li);
  }
}

function row(uid, name, online) {
  const li = document.createElement("li");
  li.dataset.uid = String(uid);
  const dot = document.createElement("span");
  dot.className = "dot" + (online ? " on" : "");
  dot.title = online ? "online" : "offline";
  const n = document.createElement("span");
  n.className = "name";
  n.textContent = name;
  li.append(dot, n);
  return li;
}

function button(label, cls, onclick) {
  const b = document.createElement("button");
  b.textContent = label;
  b.className = cls;
  b.type = "button";
  b.onclick = onclick;
  return b;
}

const USERS_PAGE = 20;
async function loadUsers(page = state.usersPage) {
  const r = await call(CMD.LIST_USERS, { page, size: USERS_PAGE }, "Loading users");
  if (!r) return;
  state.usersPage = r.page;
  const pages = Math.max(1, Math.ceil(r.total / USERS_PAGE));
  $("users-page").textContent = `page ${r.page} of ${pages} (${r.total} users)`;
  $("users-prev").disabled = r.page <= 1;
  $("users-next").disabled = r.page >= pages;
  const list = $("user-list");
  list.replaceChildren();
  for (const u of r.users) {
    state.names.set(u.uid, u.name);
    const li = row(u.uid, u.name + (u.uid === state.me.uid ? " (you)" : ""), u.online);
    if (u.uid !== state.me.uid) {
      if (!state.friends.has(u.uid)) {
        li.append(
          button("Add friend", "add-friend", async () => {
            const r = await call(CMD.ADD_FRIEND, { uid: u.uid }, `Adding ${u.name}`);
            if (r) {
              notice(r.pending ? `Friend request sent to ${u.name}.` : `${u.name} is now your friend.`, false);
              await loadFriends();
              loadUsers();
            }
          }),
        );
      }
      li.append(button("Chat", "chat", () => openConversation(directConv(state.me.uid, u.uid), { to: u.uid })));
    }
    list.append(li);
  }
}

async function loadGroups() {
  state.groups.clear();
  let after;
  for (;;) {
    const r = await call(CMD.LIST_GROUPS, after === undefined ? {} : { after }, "Loading groups");
    if (!r) break;
    for (const g of r.groups) state.groups.set(g.gid, g);
    if (!r.more || r.groups.length === 0) break;
    after = r.groups[r.groups.length - 1].gid;
  }
  renderGroups();
  renderConversations();
}

function renderGroups() {
  const list = $("group-list");
  list.replaceChildren();
  for (const g of state.groups.values()) {
    const li = document.createElement("li");
    li.dataset.gid = String(g.gid);
    const n = document.createElement("span");
    n.className = "name";
    n.textContent = `${g.name} (id ${g.gid})`;
    n.title = g.desc || "";
    li.append(
      n,
      button("Open", "open", () => openConversation(`g:${g.gid}`, { gid: g.gid })),
      button("Members", "members", () => showMembers(g.gid, true)),
      button("Leave", "leave", async () => {
        if (await call(CMD.LEAVE_GROUP, { gid: g.gid }, `Leaving ${g.name}`)) {
          notice(`You left ${g.name}.`, false);
          loadGroups();
        }
      }),
    );
    list.append(li);
  }
}

async function showMembers(gid, fresh) {
  if (fresh) {
    state.members = { gid, after: undefined };
    $("members-list").replaceChildren();
  }
  const body = { gid };
  if (state.members.after !== undefined) body.after = state.members.after;
  const r = await call(CMD.GROUP_MEMBERS, body, "Loading members");
  if (!r) return;
  const g = state.groups.get(gid);
  $("members-box").hidden = false;
  $("members-title").textContent = `Members of ${g ? g.name : gid}`;
  for (const m of r.members) {
    state.names.set(m.uid, m.name);
    const li = row(m.uid, `${m.name} · ${m.role}`, m.online);
    $("members-list").append(li);
  }
  if (r.members.length) state.members.after = r.members[r.members.length - 1].uid;
  $("members-more").hidden = !r.more;
}

// ---- tabs and forms ----------------------------------------------------------------

function showTab(panel) {
  for (const b of document.querySelectorAll(".tabs button")) {
    b.classList.toggle("active", b.dataset.panel === panel);
  }
  for (const p of document.querySelectorAll(".panel")) p.hidden = p.id !== panel;
}

for (const b of document.querySelectorAll(".tabs button")) {
  b.onclick = () => {
    showTab(b.dataset.panel);
    if (b.dataset.panel === "panel-users") loadUsers();
  };
}

$("login-form").onsubmit = (ev) => {
  ev.preventDefault();
  login(false);
};
$("register-btn").onclick = () => {
  if ($("login-form").reportValidity()) login(true);
};
$("logout-btn").onclick = logout;
$("users-prev").onclick = () => loadUsers(state.usersPage - 1);
$("users-next").onclick = () => loadUsers(state.usersPage + 1);
$("members-more").onclick = () => showMembers(state.members.gid, false);
$("load-older").onclick = loadOlder;
$("messages").addEventListener("scroll", () => {
  if ($("messages").scrollTop === 0) loadOlder();
});
$("composer-text").addEventListener("input", noteTyping);
$("file-input").onchange = () => {
  const files = [...$("file-input").files];
  $("file-input").value = ""; // the same file can be picked again
  sendFiles(files);
};
// Files dropped on the open conversation are sent like attached ones; dropped anywhere
// else they are ignored (the browser would leave the app to show the file).
for (const type of ["dragover", "drop"]) document.addEventListener(type, (ev) => ev.preventDefault());
$("chat").addEventListener("dragover", (ev) => {
  if (!state.open || !ev.dataTransfer.types.includes("Files")) return;
  ev.preventDefault();
  $("chat").classList.add("dropping");
});
$("chat").addEventListener("dragleave", () => $("chat").classList.remove("dropping"));
$("chat").addEventListener("drop", (ev) => {
  $("chat").classList.remove("dropping");
  if (!state.open || !ev.dataTransfer.files.length) return;
  ev.preventDefault();
  sendFiles([...ev.dataTransfer.files]);
});
$("composer").onsubmit = (ev) => {
  ev.preventDefault();
  const text = $("composer-text").value;
  $("composer-text").value = "";
  state.lastTyping = 0;  // the next keystroke starts a new notice
  send(text);
};
$("create-group-form").onsubmit = async (ev) => {
  ev.preventDefault();
  const name = $("group-name").value.trim();
  const desc = $("group-desc").value.trim();
  const r = await call(CMD.CREATE_GROUP, desc ? { name, desc } : { name }, "Creating the group");
  if (!r) return;
  $("group-name").value = "";
  $("group-desc").value = "";
  notice(`Group ${name} created with id ${r.gid}: others join it by that id.`, false);
  await loadGroups();
};
$("join-group-form").onsubmit = async (ev) => {
  ev.preventDefault();
  const gid = Number($("join-gid").value);
  if (await call(CMD.JOIN_GROUP, { gid }, `Joining group ${gid}`)) {
    $("join-gid").value = "";
    notice(`You joined group ${gid}.`, false);
    await loadGroups();
  }
};
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && state.open) ack(state.open);
});

client.start();

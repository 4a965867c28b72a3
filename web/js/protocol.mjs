// The imbus frame (docs/protocol.md section 2) for a WebSocket: one binary message is
// one frame, header included. msgpack from the npm package @msgpack/msgpack.
import { encode, decode } from "@msgpack/msgpack";

export const HEADER = 16;
export const FLAG_RESPONSE = 0x0001;
export const FLAG_PUSH = 0x0002;

export const SYS = 1, AUTH = 2, DIRECTORY = 3, PRESENCE = 4, MSG = 5, FILE = 8;

export const CMD = {
  PING: [SYS, 1], ROUTE: [SYS, 2], HELLO: [SYS, 3], ERROR: [SYS, 65535],
  REGISTER: [AUTH, 1], LOGIN: [AUTH, 2], RESUME: [AUTH, 3], LOGOUT: [AUTH, 4],
  KICKED: [AUTH, 100],
  LIST_USERS: [DIRECTORY, 1], GET_USER: [DIRECTORY, 2], ADD_FRIEND: [DIRECTORY, 3],
  REMOVE_FRIEND: [DIRECTORY, 4], LIST_FRIENDS: [DIRECTORY, 5], CREATE_GROUP: [DIRECTORY, 6],
  JOIN_GROUP: [DIRECTORY, 7], LEAVE_GROUP: [DIRECTORY, 8], LIST_GROUPS: [DIRECTORY, 9],
  GROUP_MEMBERS: [DIRECTORY, 10],
  FRIEND_REQUESTS: [DIRECTORY, 20], ACCEPT_FRIEND: [DIRECTORY, 21], DECLINE_FRIEND: [DIRECTORY, 22],
  FRIEND_EVENT: [DIRECTORY, 100], GROUP_EVENT: [DIRECTORY, 101],
  IS_ONLINE: [PRESENCE, 1], STATUS: [PRESENCE, 100],
  SEND: [MSG, 1], ACK: [MSG, 2], SYNC: [MSG, 3], HISTORY: [MSG, 4], CONVERSATIONS: [MSG, 5],
  MESSAGE: [MSG, 100],
  TYPING: [MSG, 10], RECALL: [MSG, 11], EDIT: [MSG, 12], DELETE: [MSG, 13],
  READ: [MSG, 101], TYPING_NOTICE: [MSG, 102], UPDATED: [MSG, 103], DELETED: [MSG, 104],
  // Files (section 6.9).
  UPLOAD_START: [FILE, 1], UPLOAD_CHUNK: [FILE, 2], UPLOAD_FINISH: [FILE, 3], UPLOAD_CANCEL: [FILE, 4],
  FILE_INFO: [FILE, 5], DOWNLOAD: [FILE, 6],
};

// Result codes (section 4), with what to tell a person.
export const CODES = {
  0: ["OK", "Done."],
  1: ["BAD_REQUEST", "The server did not accept that input."],
  2: ["UNAUTHENTICATED", "Wrong name or password, or your session has ended."],
  3: ["FORBIDDEN", "You are not allowed to do that (not a member, or not a friend)."],
  4: ["NOT_FOUND", "No such user, group or conversation."],
  5: ["CONFLICT", "That already exists (name taken, already a friend or a member)."],
  6: ["RATE_LIMITED", "Too fast: wait a moment and try again."],
  7: ["UNAVAILABLE", "The service is not reachable right now; try again shortly."],
  8: ["INTERNAL", "The server had a problem; it may or may not have been done."],
  9: ["TOO_LARGE", "That is too long."],
  10: ["UNSUPPORTED", "This server does not support that command."],
  11: ["QUOTA_EXCEEDED", "That would take you over your storage quota on the server."],
  12: ["MISMATCH", "The file arrived damaged (size or SHA-256 differ); send it again."],
};

// What some codes mean when the request was about a file (FILE service, MSG/SEND file).
const FILE_CODES = {
  4: "The file is gone, or you may not see it (expired, cancelled or never sent to you).",
  9: "The file is too large to send.",
  10: "This server does not store files.",
};

export function codeName(code) {
  return CODES[code] ? CODES[code][0] : `code ${code}`;
}

// A sentence for an error answer: what the code means, the server's detail, the wait.
// With file = true, the sentence for a request about a file.
export function describeError(body, file = false) {
  const code = body && typeof body.code === "number" ? body.code : -1;
  let [name, text] = CODES[code] || [`code ${code}`, "Unexpected answer from the server."];
  if (file && FILE_CODES[code]) text = FILE_CODES[code];
  let out = `${text} (${name}`;
  if (body && body.error) out += `: ${body.error}`;
  out += ")";
  if (code === 6 && body.retry_ms) out += ` Retry in ${Math.ceil(body.retry_ms / 1000)} s.`;
  return out;
}

export function encodeFrame(service, command, seq, body) {
  const payload = encode(body || {});
  const frame = new Uint8Array(HEADER + payload.length);
  const v = new DataView(frame.buffer);
  v.setUint32(0, frame.length);
  v.setUint16(4, 1);
  v.setUint16(6, 0);
  v.setUint16(8, service);
  v.setUint16(10, command);
  v.setUint32(12, seq);
  frame.set(payload, HEADER);
  return frame;
}

// -> {flags, service, command, seq, body}; throws on a malformed frame.
export function decodeFrame(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes.length < HEADER + 1) throw new Error("short frame");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = v.getUint32(0);
  if (length !== bytes.length) throw new Error("frame length does not match the message");
  return {
    flags: v.getUint16(6),
    service: v.getUint16(8),
    command: v.getUint16(10),
    seq: v.getUint32(12),
    body: decode(bytes.subarray(HEADER)),
  };
}

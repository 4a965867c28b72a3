// Public. Files (docs/protocol.md 6.9, service 8 FILE): typed calls for each command,
// and whole-file transfers on top of them — UploadFile (sha256 first, then chunks one
// at a time from the offset the server returns, resuming after a disconnect) and
// DownloadFile (FILE_INFO, pipelined DOWNLOADs into PATH.part, sha256 check, rename;
// resumes from an existing .part). Also the file object inside messages and
// MSG/SEND with `file`. Same threading as Client: the caller's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <msgpack.hpp>

#include "client/client.h"
#include "client/msg_api.h"
#include "codec/message.h"

namespace imbus::client {

// A file object (docs/protocol.md 6.9); messages carry one in Message::file.
using FileInfo = codec::FileObject;

// The `file` of a message map (SYNC/HISTORY entry, MESSAGE push body); nullopt when
// the message carries none or it is malformed.
std::optional<FileInfo> FileOfMessage(const msgpack::object& message);

// Lower-case hex of bytes ("e3b0c442...").
std::string HexOf(std::string_view bytes);
// A MIME type guessed from the file name's extension; application/octet-stream else.
std::string GuessMime(std::string_view name);
// The last path component (what UPLOAD_START's `name` gets).
std::string BaseName(const std::string& path);
// "1.5 MB", "312 B".
std::string HumanSize(uint64_t bytes);

// Streaming SHA-256 (libsodium) of the first `limit` bytes of a file (all of it by
// default). False with *error when it cannot be read. *size: the bytes hashed.
bool Sha256OfFile(const std::string& path, std::string* digest, uint64_t* size, std::string* error,
                  uint64_t limit = UINT64_MAX);

// --- One call per command ---
struct UploadStarted {
  std::string upload;
  uint64_t chunk = 0;
  uint64_t offset = 0;
};
struct ChunkData {
  std::string data;
  uint64_t offset = 0;
  uint64_t size = 0;  // the whole file's
};
Result<UploadStarted> UploadStart(Client& c, std::string_view name, uint64_t size,
                                  std::string_view sha256, std::string_view mime = {});
// The stored offset after the chunk. On CONFLICT the Result's value is the stored
// offset the server sent (continue from there).
Result<uint64_t> UploadChunk(Client& c, std::string_view upload, uint64_t offset,
                             std::string_view data);
Result<FileInfo> UploadFinish(Client& c, std::string_view upload);
Result<Empty> UploadCancel(Client& c, std::string_view upload);
Result<FileInfo> GetFileInfo(Client& c, std::string_view file);
// length 0: the server's default (its chunk size).
Result<ChunkData> Download(Client& c, std::string_view file, uint64_t offset, uint64_t length = 0);

// MSG/SEND with `file` (text optional: empty = none, the server writes "[file] name").
Result<SentMessage> SendFileToUser(Client& c, uint64_t uid, std::string_view cmid,
                                   std::string_view file, std::string_view text = {});
Result<SentMessage> SendFileToGroup(Client& c, uint64_t gid, std::string_view cmid,
                                    std::string_view file, std::string_view text = {});

// --- Whole files ---
// done of total bytes; called after each chunk (the caller throttles drawing).
using Progress = std::function<void(uint64_t done, uint64_t total)>;
// Called after a lost connection, a timeout or UNAVAILABLE: reconnect and log in
// again (RESUME). False: give up.
using Reconnect = std::function<bool()>;

struct TransferOptions {
  Progress progress;       // optional
  Reconnect reconnect;     // optional: without it, a lost connection ends the transfer
  int max_retries = 8;     // reconnects per transfer
  std::string name;        // upload: the name to give (default: the path's base name)
  std::string mime;        // upload: default GuessMime(name)
  size_t window = 8;       // download: DOWNLOADs in flight
  bool no_clobber = true;  // download: an existing PATH gets PATH.1, PATH.2, ... instead
};

// Uploads the file at `path` and returns its file object.
Result<FileInfo> UploadFile(Client& c, const std::string& path, const TransferOptions& options);

struct Downloaded {
  FileInfo info;
  std::string path;           // where the file now is
  uint64_t resumed_from = 0;  // bytes that were already in PATH.part
  uint64_t fetched = 0;       // bytes downloaded now
};
// Downloads file `file` to `path` through `path`.part (kept on failure, so a later
// call resumes). The whole content's sha256 is checked before the rename; on a
// mismatch the .part is removed and the result is MISMATCH.
Result<Downloaded> DownloadFile(Client& c, std::string_view file, const std::string& path,
                                const TransferOptions& options);

// PATH if it does not exist, else the first free of PATH.1, PATH.2, ...
std::string FreePath(const std::string& path);

}  // namespace imbus::client

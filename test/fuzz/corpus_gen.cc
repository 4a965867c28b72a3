// Test-only tool. Writes the seed corpus of the fuzz targets: a few small valid
// inputs per target, so fuzzing starts from real requests. Run from the repo root:
//   build-fuzz/test/fuzz/fuzz_corpus_gen test/fuzz/corpus
// Existing files of the same name are overwritten; others (saved crashes) are kept.
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <string>
#include <utility>

#include "codec/body.h"
#include "codec/commands.h"
#include "codec/frame.h"

namespace {

using imbus::codec::MapWriter;
using imbus::codec::ToWire;
namespace cmd = imbus::codec;

std::string g_root;

void Put(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::string path = g_root + "/" + target + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) std::fprintf(stderr, "cannot write %s\n", path.c_str());
}

// A map of string fields and unsigned fields, in the order given.
std::string Map(std::initializer_list<std::pair<const char*, std::string>> strs,
                std::initializer_list<std::pair<const char*, uint64_t>> uints = {}) {
  MapWriter w(static_cast<uint32_t>(strs.size() + uints.size()));
  for (const auto& [k, v] : strs) w.Key(k).Str(v);
  for (const auto& [k, v] : uints) w.Key(k).Uint(v);
  return w.Finish();
}

// A service-target input: command byte, caller byte, body.
std::string Req(uint8_t command, uint8_t caller, const std::string& body) {
  return std::string(1, static_cast<char>(command)) + static_cast<char>(caller) + body;
}

void Frames() {
  const uint16_t sys = ToWire(cmd::Service::kSys);
  const uint16_t auth = ToWire(cmd::Service::kAuth);
  const uint16_t msg = ToWire(cmd::Service::kMsg);
  const std::string hello = cmd::EncodeFrame(0, sys, cmd::sys::kHello, 1, cmd::EmptyBody());
  const std::string login = cmd::EncodeFrame(0, auth, cmd::auth::kLogin, 2,
                                             Map({{"name", "alice"}, {"password", "password1"}}));
  const std::string send = cmd::EncodeFrame(
      0, msg, cmd::msg::kSend, 3, Map({{"cmid", "c1"}, {"text", "hi \xc3\xa9"}}, {{"to", 2}}));
  Put("frame", "hello", std::string("\0\0", 2) + hello);
  Put("frame", "login_send", std::string("\0\x07", 2) + login + send);
  Put("frame", "ping_split",
      std::string("\0\x2a", 2) + hello +
          cmd::EncodeFrame(0, sys, cmd::sys::kPing, 9, cmd::EmptyBody()));
  Put("frame", "server_push",
      std::string("\x01\x03", 2) +
          cmd::EncodeFrame(cmd::kFlagPush, msg, cmd::msg::kMessage, 0,
                           Map({{"conv", "d:1:2"}, {"text", "x"}}, {{"seq", 1}, {"from", 1}})));
  Put("frame", "small_max", std::string("\x02\x05", 2) + hello);
  Put("frame", "error_body",
      std::string("\x01\x00", 2) + cmd::EncodeFrame(cmd::kFlagResponse, sys, cmd::sys::kError, 0,
                                                    cmd::ErrorBody(cmd::Code::kBadRequest, "x")));
  // The fatal SYS/ERROR as edges send it now (flags 0), and a client's request to
  // 1/65535 (answered UNSUPPORTED).
  Put("frame", "fatal_error",
      std::string("\x01\x00", 2) + cmd::EncodeFrame(0, sys, cmd::sys::kError, 0,
                                                    cmd::ErrorBody(cmd::Code::kBadRequest, "x")));
  Put("frame", "request_sys_error",
      std::string("\0\0", 2) + cmd::EncodeFrame(0, sys, cmd::sys::kError, 7, cmd::EmptyBody()));
  Put("frame", "hostile_strings",
      std::string("\0\0", 2) + cmd::EncodeFrame(0, auth, cmd::auth::kLogin, 4,
                                                Map({{"name", "Zo\xc3\xab"},
                                                     {"password", std::string("pw\0\xff\xfe", 5)},
                                                     {"device", "\xed\xa0\x80"}})));
}

// Strings every service target gets seeds with: invalid UTF-8 (bad continuation,
// truncated, surrogate, overlong, above U+10FFFF), NUL bytes, spaces around, empty.
const std::string kHostile[] = {
    "\xc3\x28",         "\xe2\x82",
    "\xed\xa0\x80",     "\xc0\xaf",
    "\xf4\x90\x80\x80", std::string("a\0b", 3),
    " padded ",         "",
    "Zo\xc3\xab",       "\xf0\x9f\x98\x80",
};

void Auth() {
  Put("auth", "register",
      Req(cmd::auth::kRegister, 0, Map({{"name", "bob"}, {"password", "secret12"}})));
  Put("auth", "login_name",
      Req(cmd::auth::kLogin, 0,
          Map({{"name", "alice"}, {"password", "password1"}, {"device", "phone"}})));
  Put("auth", "login_uid_p2p",
      Req(cmd::auth::kLogin, 0,
          Map({{"password", "password1"}, {"local_host", "10.0.0.5"}},
              {{"uid", 1}, {"p2p_port", 7000}})));
  Put("auth", "resume",
      Req(cmd::auth::kResume, 0, Map({{"token", "fuzz-token"}, {"device", "default"}})));
  Put("auth", "logout", Req(cmd::auth::kLogout, 1, cmd::EmptyBody()));
  Put("auth", "delete",
      Req(cmd::auth::kDeleteAccount, 1, Map({{"password", "password1"}}, {{"uid", 1}})));
  int i = 0;
  for (const std::string& h : kHostile) {
    const std::string n = std::to_string(i++);
    Put("auth", "hostile_login_" + n,
        Req(cmd::auth::kLogin, 0,
            Map({{"name", h}, {"password", "password1"}, {"device", h}, {"local_host", h}},
                {{"p2p_port", 7000}})));
    Put("auth", "hostile_resume_" + n,
        Req(cmd::auth::kResume, 0, Map({{"token", h}, {"device", h}, {"local_host", h}})));
  }
}

void Directory() {
  Put("directory", "list_users",
      Req(cmd::directory::kListUsers, 1, Map({}, {{"page", 1}, {"size", 2}})));
  Put("directory", "get_user", Req(cmd::directory::kGetUser, 1, Map({{"name", "bob"}})));
  Put("directory", "add_friend", Req(cmd::directory::kAddFriend, 1, Map({}, {{"uid", 3}})));
  Put("directory", "remove_friend", Req(cmd::directory::kRemoveFriend, 2, Map({}, {{"uid", 1}})));
  Put("directory", "list_friends", Req(cmd::directory::kListFriends, 1, cmd::EmptyBody()));
  Put("directory", "create_group",
      Req(cmd::directory::kCreateGroup, 1,
          Map({{"name", "\xe7\xbe\xa4 ops"}, {"desc", "on call"}})));
  Put("directory", "join_group", Req(cmd::directory::kJoinGroup, 3, Map({}, {{"gid", 1}})));
  Put("directory", "leave_group", Req(cmd::directory::kLeaveGroup, 1, Map({}, {{"gid", 1}})));
  Put("directory", "list_groups", Req(cmd::directory::kListGroups, 2, cmd::EmptyBody()));
  Put("directory", "group_members", Req(cmd::directory::kGroupMembers, 2, Map({}, {{"gid", 1}})));
  int i = 0;
  for (const std::string& h : kHostile) {
    const std::string n = std::to_string(i++);
    Put("directory", "hostile_group_" + n,
        Req(cmd::directory::kCreateGroup, 1, Map({{"name", h}, {"desc", h}})));
    Put("directory", "hostile_get_user_" + n, Req(cmd::directory::kGetUser, 1, Map({{"name", h}})));
  }
  std::string e_acute_64;  // 32 x U+00E9: 64 bytes, the limit
  for (int k = 0; k < 32; ++k) e_acute_64 += "\xc3\xa9";
  Put("directory", "group_name_max",
      Req(cmd::directory::kCreateGroup, 1, Map({{"name", e_acute_64}})));
}

void Presence() {
  Put("presence", "is_online", Req(cmd::presence::kIsOnline, 1, Map({}, {{"uid", 2}})));
  Put("presence", "peer_addr", Req(cmd::presence::kPeerAddr, 1, Map({}, {{"uid", 2}})));
  Put("presence", "peer_addr_offline", Req(cmd::presence::kPeerAddr, 2, Map({}, {{"uid", 3}})));
  Put("presence", "peer_addr_hostile_local",
      Req(cmd::presence::kPeerAddr, 1, Map({}, {{"uid", 4}})));
  MapWriter ev(2);
  ev.Key("uid").Uint(1);
  ev.Key("online").Bool(true);
  Put("presence", "session_event", Req(200, 4, ev.Finish()));
}

void Msg() {
  Put("msg", "send_direct",
      Req(cmd::msg::kSend, 1, Map({{"cmid", "c1"}, {"text", "hello"}}, {{"to", 2}})));
  Put("msg", "send_group",
      Req(cmd::msg::kSend, 1,
          Map({{"cmid", "c2"}, {"text", "\xf0\x9f\x98\x80 hi"}}, {{"gid", 1}})));
  Put("msg", "ack", Req(cmd::msg::kAck, 1, Map({{"conv", "d:1:2"}}, {{"seq", 3}})));
  Put("msg", "sync", Req(cmd::msg::kSync, 1, Map({}, {{"limit", 100}})));
  Put("msg", "history",
      Req(cmd::msg::kHistory, 1, Map({{"conv", "g:1"}}, {{"before", 10}, {"limit", 5}})));
  Put("msg", "raw_conv", Req(0, 0, "d:12:345"));
  int i = 0;
  for (const std::string& h : kHostile) {
    const std::string n = std::to_string(i++);
    Put("msg", "hostile_send_" + n,
        Req(cmd::msg::kSend, 1, Map({{"cmid", h}, {"text", h}}, {{"to", 2}})));
    Put("msg", "hostile_history_" + n, Req(cmd::msg::kHistory, 1, Map({{"conv", h}})));
    Put("msg", "raw_hostile_" + n, Req(0, 0, h));
  }
  Put("msg", "send_max",
      Req(cmd::msg::kSend, 1,
          Map({{"cmid", std::string(64, 'c')}, {"text", std::string(8192, 'x')}}, {{"to", 2}})));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  Frames();
  Auth();
  Directory();
  Presence();
  Msg();
  return 0;
}

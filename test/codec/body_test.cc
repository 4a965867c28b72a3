// Bodies: one msgpack map with string keys, unpacked with limits; typed getters.
#include <gtest/gtest.h>

#include <string>

#include "codec/body.h"
#include "codec/route_key.h"
#include "codec/codes.h"
#include "codec/commands.h"

namespace imbus::codec {
namespace {

bool Parses(const std::string& bytes, std::string* error = nullptr) {
  Body b;
  std::string e;
  const bool ok = Body::Parse(bytes, &b, &e);
  if (error != nullptr) *error = e;
  return ok;
}

TEST(BodyTest, EmptyMapParses) { EXPECT_TRUE(Parses(std::string("\x80", 1))); }

TEST(BodyTest, WriterRoundTrip) {
  MapWriter w(5);
  w.Key("name").Str("bob");
  w.Key("uid").Uint(18446744073709551615ull);
  w.Key("neg").Int(-5);
  w.Key("ok").Bool(true);
  w.Key("nil");
  w.packer().pack_nil();
  Body b;
  std::string e;
  ASSERT_TRUE(Body::Parse(w.Finish(), &b, &e)) << e;
  EXPECT_EQ(b.GetString("name"), "bob");
  EXPECT_EQ(b.GetUint("uid"), 18446744073709551615ull);
  EXPECT_EQ(b.GetInt("neg"), -5);
  EXPECT_EQ(b.GetBool("ok"), true);
  EXPECT_FALSE(b.Has("nil"));  // nil counts as absent
  EXPECT_FALSE(b.GetString("missing").has_value());
}

TEST(BodyTest, WrongTypesThrowBadField) {
  MapWriter w(2);
  w.Key("name").Uint(3);
  w.Key("uid").Int(-1);
  Body b;
  std::string e;
  ASSERT_TRUE(Body::Parse(w.Finish(), &b, &e));
  EXPECT_THROW(b.GetString("name"), BadField);
  EXPECT_THROW(b.GetUint("uid"), BadField);
  EXPECT_THROW(b.RequireString("password"), BadField);
  EXPECT_EQ(b.GetInt("name"), 3);
}

TEST(BodyTest, NotAMapIsRejected) {
  std::string e;
  EXPECT_FALSE(Parses(std::string("\x90", 1), &e));  // empty array
  EXPECT_NE(e.find("not a msgpack map"), std::string::npos);
  EXPECT_FALSE(Parses(std::string("\x01", 1), &e));  // an int
  EXPECT_FALSE(Parses(std::string("\xa3"
                                  "abc",
                                  4),
                      &e));  // a string
}

TEST(BodyTest, EmptyBodyIsRejected) {
  std::string e;
  EXPECT_FALSE(Parses("", &e));
  EXPECT_NE(e.find("empty"), std::string::npos);
}

TEST(BodyTest, TrailingBytesAreRejected) {
  std::string e;
  EXPECT_FALSE(Parses(std::string("\x80\x80", 2), &e));
  EXPECT_NE(e.find("trailing"), std::string::npos);
}

TEST(BodyTest, NonStringKeyIsRejected) {
  std::string e;
  EXPECT_FALSE(Parses(std::string("\x81\x01\x02", 3), &e));  // {1: 2}
  EXPECT_NE(e.find("key"), std::string::npos);
}

TEST(BodyTest, TruncatedIsRejected) {
  std::string e;
  EXPECT_FALSE(Parses(std::string("\x81\xa4na", 4), &e));
  EXPECT_NE(e.find("truncated"), std::string::npos);
}

TEST(BodyTest, ArrayHeaderClaimingTwoToThe32ElementsCostsNothing) {
  // {"a": array32 with 0xffffffff elements} and no elements following.
  const std::string bomb(
      "\x81\xa1"
      "a"
      "\xdd\xff\xff\xff\xff",
      8);
  std::string e;
  EXPECT_FALSE(Parses(bomb, &e));
  EXPECT_FALSE(e.empty());
  // A bare array32 header too.
  EXPECT_FALSE(Parses(std::string("\xdd\xff\xff\xff\xff", 5), &e));
  // And a map32 header.
  EXPECT_FALSE(Parses(std::string("\xdf\xff\xff\xff\xff", 5), &e));
}

TEST(BodyTest, DeepNestingIsRejected) {
  std::string deep(
      "\x81\xa1"
      "a",
      3);
  for (int i = 0; i < 100; ++i) deep += '\x91';  // 100 nested one-element arrays
  deep += '\x00';
  std::string e;
  EXPECT_FALSE(Parses(deep, &e));
}

TEST(BodyTest, StringBombIsRejected) {
  // str32 claiming 4 GiB.
  const std::string bomb(
      "\x81\xa1"
      "a"
      "\xdb\xff\xff\xff\xff",
      8);
  std::string e;
  EXPECT_FALSE(Parses(bomb, &e));
}

TEST(BodyTest, ErrorBodyHasCodeAndError) {
  Body b;
  std::string e;
  ASSERT_TRUE(Body::Parse(ErrorBody(Code::kNotFound, "no such user"), &b, &e));
  EXPECT_EQ(b.GetInt("code"), 4);
  EXPECT_EQ(b.GetString("error"), "no such user");
}

TEST(CodesTest, NamesMatchProtocol) {
  EXPECT_STREQ(CodeName(0), "OK");
  EXPECT_STREQ(CodeName(7), "UNAVAILABLE");
  EXPECT_STREQ(CodeName(10), "UNSUPPORTED");
  EXPECT_STREQ(CodeName(11), "QUOTA_EXCEEDED");
  EXPECT_STREQ(CodeName(12), "MISMATCH");
  EXPECT_STREQ(CodeName(13), "UNKNOWN");
  EXPECT_STREQ(CodeName(-1), "UNKNOWN");
}

TEST(CommandsTest, TableLookups) {
  const CommandInfo* login = FindCommand(2, 2);
  ASSERT_NE(login, nullptr);
  EXPECT_STREQ(login->name, "AUTH/LOGIN");
  EXPECT_FALSE(login->needs_login);
  const CommandInfo* logout = FindCommand(2, auth::kLogout);
  ASSERT_NE(logout, nullptr);
  EXPECT_TRUE(logout->needs_login);
  EXPECT_TRUE(FindCommand(3, directory::kListUsers)->needs_login);
  EXPECT_EQ(FindCommand(2, auth::kKicked)->kind, Kind::kPush);
  EXPECT_EQ(FindCommand(1, 4), nullptr);
  EXPECT_EQ(FindCommand(99, 1), nullptr);
  EXPECT_EQ(ServiceByName("msg"), Service::kMsg);
  EXPECT_STREQ(ServiceName(4), "presence");
  EXPECT_FALSE(ServiceByName("nope").has_value());
}

// MSG/SEND's route key names the conversation: the same for both directions of a
// direct conversation, different across conversations and from groups, 0 when the
// body names none.
TEST(RouteKeyTest, NamesTheConversation) {
  auto send = [](const char* field, uint64_t id) {
    MapWriter w(3);
    w.Key(field).Uint(id);
    w.Key("cmid").Str("c");
    w.Key("text").Str("t");
    return w.Finish();
  };
  const uint64_t ab = SendRouteKey(7, send("to", 9));
  EXPECT_NE(ab, 0u);
  EXPECT_EQ(SendRouteKey(9, send("to", 7)), ab);
  EXPECT_NE(SendRouteKey(7, send("to", 10)), ab);
  EXPECT_NE(SendRouteKey(8, send("to", 9)), ab);
  EXPECT_NE(SendRouteKey(7, send("gid", 9)), 0u);
  EXPECT_EQ(SendRouteKey(7, send("gid", 9)), SendRouteKey(123, send("gid", 9)));
  EXPECT_NE(SendRouteKey(7, send("gid", 9)), ab);
  EXPECT_EQ(SendRouteKey(7, send("to", 0)), 0u);
  EXPECT_EQ(SendRouteKey(7, send("cmid", 1)), 0u);
  EXPECT_EQ(SendRouteKey(7, "\xc1"), 0u);  // not msgpack
  MapWriter both(2);
  both.Key("to").Uint(1);
  both.Key("gid").Uint(2);
  EXPECT_EQ(SendRouteKey(7, both.Finish()), 0u);
  MapWriter wrong(1);
  wrong.Key("to").Str("x");
  EXPECT_EQ(SendRouteKey(7, wrong.Finish()), 0u);
}

}  // namespace
}  // namespace imbus::codec

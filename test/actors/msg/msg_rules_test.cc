// The pure MSG rules: conversation ids, UTF-8, SEND validation and limits.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "actors/msg/msg_rules.h"
#include "actors/service.h"

namespace imbus::actors::msg {
namespace {

using codec::Code;

codec::Body Parse(const std::string& bytes) {
  codec::Body b;
  std::string error;
  EXPECT_TRUE(codec::Body::Parse(bytes, &b, &error)) << error;
  return b;
}

std::string SendBody(std::optional<uint64_t> to, std::optional<uint64_t> gid,
                     std::optional<std::string> cmid, std::optional<std::string> text) {
  codec::MapWriter w(static_cast<uint32_t>(to.has_value() + gid.has_value() + cmid.has_value() +
                                           text.has_value()));
  if (to) w.Key("to").Uint(*to);
  if (gid) w.Key("gid").Uint(*gid);
  if (cmid) w.Key("cmid").Str(*cmid);
  if (text) w.Key("text").Str(*text);
  return w.Finish();
}

Code SendCode(const std::string& bytes) {
  codec::Body b = Parse(bytes);
  try {
    ParseSend(b);
    return Code::kOk;
  } catch (const RequestError& e) {
    return e.code();
  } catch (const codec::BadField&) {
    return Code::kBadRequest;
  }
}

TEST(ConvIdTest, DirectIsOrderIndependentAndSelfAllowed) {
  EXPECT_EQ(DirectConv(7, 3), "d:3:7");
  EXPECT_EQ(DirectConv(3, 7), "d:3:7");
  EXPECT_EQ(DirectConv(7, 7), "d:7:7");
  EXPECT_EQ(GroupConv(42), "g:42");
}

TEST(ConvIdTest, ParsesWhatItFormats) {
  auto d = ParseConv(DirectConv(18446744073709551615ull, 5));
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->group);
  EXPECT_EQ(d->lo, 5u);
  EXPECT_EQ(d->hi, 18446744073709551615ull);
  EXPECT_TRUE(d->HasMember(5));
  EXPECT_FALSE(d->HasMember(6));
  EXPECT_EQ(d->Peer(5), 18446744073709551615ull);
  auto self = ParseConv("d:7:7");
  ASSERT_TRUE(self);
  EXPECT_EQ(self->Peer(7), 7u);
  auto g = ParseConv("g:42");
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->group);
  EXPECT_EQ(g->gid, 42u);
}

TEST(ConvIdTest, RejectsMalformed) {
  for (const char* bad :
       {"", "d:", "g:", "d:7", "d:7:", "d::7", "d:9:3", "d:03:7", "d:0:7", "g:0", "g:01", "g:-1",
        "g:1x", "x:1", "d:1:2:3", "g:18446744073709551616", "d:+1:2", "D:1:2"}) {
    EXPECT_FALSE(ParseConv(bad)) << bad;
  }
}

TEST(Utf8Test, AcceptsWellFormed) {
  EXPECT_TRUE(IsValidUtf8("hello"));
  EXPECT_TRUE(IsValidUtf8("h\xC3\xA9llo"));              // é
  EXPECT_TRUE(IsValidUtf8("\xE4\xBD\xA0\xE5\xA5\xBD"));  // 你好
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));          // 😀
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));          // U+10FFFF
  EXPECT_TRUE(IsValidUtf8(std::string("a\0b", 3)));
}

TEST(Utf8Test, RejectsMalformed) {
  for (const char* bad :
       {"\x80", "\xC3", "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80",
        "\xF8\x88\x80\x80\x80", "\xFF", "ab\xE4\xBD", "\xC3\x28"}) {
    EXPECT_FALSE(IsValidUtf8(bad)) << bad;
  }
}

TEST(ParseSendTest, AcceptsUserOrGroup) {
  codec::Body b = Parse(SendBody(5, std::nullopt, "c1", "hi"));
  SendFields f = ParseSend(b);
  EXPECT_EQ(f.to_uid, 5u);
  EXPECT_EQ(f.gid, 0u);
  EXPECT_EQ(f.cmid, "c1");
  EXPECT_EQ(f.text, "hi");
  codec::Body g = Parse(SendBody(std::nullopt, 9, "c2", "yo"));
  EXPECT_EQ(ParseSend(g).gid, 9u);
}

// Issue 19: `file` (1-64 bytes) makes `text` optional; an empty text then is none.
TEST(ParseSendTest, FileMakesTextOptional) {
  auto body = [](std::optional<std::string> text, const std::string& file) {
    codec::MapWriter w(text ? 4 : 3);
    w.Key("to").Uint(5).Key("cmid").Str("c").Key("file").Str(file);
    if (text) w.Key("text").Str(*text);
    return w.Finish();
  };
  codec::Body b = Parse(body(std::nullopt, "abc"));
  SendFields f = ParseSend(b);
  EXPECT_EQ(f.file, "abc");
  EXPECT_EQ(f.text, "");
  EXPECT_EQ(SendCode(body("", "abc")), Code::kOk);
  EXPECT_EQ(SendCode(body("caption", std::string(64, 'f'))), Code::kOk);
  EXPECT_EQ(SendCode(body(std::nullopt, std::string(65, 'f'))), Code::kBadRequest);
  EXPECT_EQ(SendCode(body(std::nullopt, "")), Code::kBadRequest);
  EXPECT_EQ(SendCode(body(std::string(8193, 'x'), "abc")), Code::kTooLarge);
  EXPECT_EQ(SendCode(body("\xff", "abc")), Code::kBadRequest);
  codec::MapWriter num(3);
  num.Key("to").Uint(5).Key("cmid").Str("c").Key("file").Uint(7);
  EXPECT_EQ(SendCode(num.Finish()), Code::kBadRequest);
}

TEST(ParseSendTest, Limits) {
  EXPECT_EQ(SendCode(SendBody(5, std::nullopt, "c", std::string(8192, 'x'))), Code::kOk);
  EXPECT_EQ(SendCode(SendBody(5, std::nullopt, "c", std::string(8193, 'x'))), Code::kTooLarge);
  EXPECT_EQ(SendCode(SendBody(5, std::nullopt, std::string(64, 'c'), "t")), Code::kOk);
  EXPECT_EQ(SendCode(SendBody(5, std::nullopt, std::string(65, 'c'), "t")), Code::kBadRequest);
  EXPECT_EQ(SendCode(SendBody(5, std::nullopt, "", "t")), Code::kBadRequest);
  EXPECT_EQ(SendCode(SendBody(5, std::nullopt, "c", "")), Code::kBadRequest);
  EXPECT_EQ(SendCode(SendBody(5, std::nullopt, "c", "\xC3\x28")), Code::kBadRequest);
  // cmid goes back to recipients as a str: UTF-8 (NUL included), or BAD_REQUEST.
  EXPECT_EQ(SendCode(SendBody(5, std::nullopt, "\xff", "t")), Code::kBadRequest);
  EXPECT_EQ(SendCode(SendBody(5, std::nullopt, "\xed\xa0\x80", "t")), Code::kBadRequest);
  EXPECT_EQ(SendCode(SendBody(5, std::nullopt, std::string("c\0d", 3), "t")), Code::kOk);
  EXPECT_EQ(SendCode(SendBody(5, std::nullopt, "\xf0\x9f\x98\x80", "t")), Code::kOk);
  EXPECT_EQ(SendCode(SendBody(5, 9, "c", "t")), Code::kBadRequest);
  EXPECT_EQ(SendCode(SendBody(std::nullopt, std::nullopt, "c", "t")), Code::kBadRequest);
  EXPECT_EQ(SendCode(SendBody(0, std::nullopt, "c", "t")), Code::kBadRequest);
  EXPECT_EQ(SendCode(SendBody(5, std::nullopt, std::nullopt, "t")), Code::kBadRequest);
  EXPECT_EQ(SendCode(SendBody(5, std::nullopt, "c", std::nullopt)), Code::kBadRequest);
  codec::MapWriter w(3);  // to of the wrong type
  w.Key("to").Str("bob").Key("cmid").Str("c").Key("text").Str("t");
  EXPECT_EQ(SendCode(w.Finish()), Code::kBadRequest);
}

TEST(ParseLimitTest, DefaultAndRange) {
  EXPECT_EQ(ParseLimit(Parse(codec::EmptyBody()), 200, 500), 200u);
  codec::MapWriter ok(1);
  ok.Key("limit").Uint(500);
  EXPECT_EQ(ParseLimit(Parse(ok.Finish()), 200, 500), 500u);
  for (uint64_t bad : {uint64_t{0}, uint64_t{501}}) {
    codec::MapWriter w(1);
    w.Key("limit").Uint(bad);
    codec::Body b = Parse(w.Finish());
    EXPECT_THROW(ParseLimit(b, 200, 500), RequestError);
  }
}

// ACK and HISTORY validation, split out of MsgService so it runs (and is fuzzed)
// without a database: same fields, same order of errors as before.
TEST(ParseAckTest, FieldsAndErrors) {
  codec::MapWriter ok(2);
  ok.Key("conv").Str("d:3:9").Key("seq").Uint(4);
  const AckFields f = ParseAck(Parse(ok.Finish()));
  EXPECT_EQ(f.conv, "d:3:9");
  EXPECT_EQ(f.seq, 4u);
  EXPECT_FALSE(f.id.group);
  EXPECT_EQ(f.id.lo, 3u);
  EXPECT_EQ(f.id.hi, 9u);

  codec::MapWriter no_seq(1);
  no_seq.Key("conv").Str("d:3:9");
  codec::Body b = Parse(no_seq.Finish());
  EXPECT_THROW(ParseAck(b), codec::BadField);
  codec::MapWriter bad_conv(2);  // fields first: a missing seq wins over a bad conv
  bad_conv.Key("conv").Str("d:9:3").Key("seq").Uint(1);
  b = Parse(bad_conv.Finish());
  try {
    ParseAck(b);
    ADD_FAILURE() << "d:9:3 accepted";
  } catch (const RequestError& e) {
    EXPECT_EQ(e.code(), Code::kBadRequest);
    EXPECT_STREQ(e.what(), "malformed conv");
  }
}

TEST(ParseHistoryTest, DefaultsAndLimits) {
  codec::MapWriter ok(1);
  ok.Key("conv").Str("g:12");
  const HistoryFields f = ParseHistory(Parse(ok.Finish()));
  EXPECT_TRUE(f.id.group);
  EXPECT_EQ(f.id.gid, 12u);
  EXPECT_EQ(f.before, 0u);
  EXPECT_EQ(f.limit, kDefaultHistoryLimit);

  codec::MapWriter big(2);
  big.Key("conv").Str("g:12").Key("limit").Uint(kMaxHistoryLimit + 1);
  codec::Body b = Parse(big.Finish());
  EXPECT_THROW(ParseHistory(b), RequestError);
  codec::MapWriter bad(1);
  bad.Key("conv").Str("g:012");
  b = Parse(bad.Finish());
  EXPECT_THROW(ParseHistory(b), RequestError);
}

}  // namespace
}  // namespace imbus::actors::msg

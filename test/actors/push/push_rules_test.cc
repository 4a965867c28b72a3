// The push service's pure rules: the JSON a gateway gets, its signature (checked
// with OpenSSL's HMAC, not ours), the backoff, and the checks of a device token.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <gtest/gtest.h>

#include <cstring>

#include "actors/push/push_delivery.h"
#include "actors/push/push_service.h"

namespace imbus::actors::push {
namespace {

Notification Sample() {
  Notification n;
  n.key = OutboxKey{7, "d:3:7", 12};
  n.tries = 1;
  n.sender = 3;
  n.sender_name = "alice";
  n.ts = 1764500000000;
  n.text = std::string("say \"hi\"\\\n\x01 \xc3\xa9t\xc3\xa9");
  n.devices = {Device{"fcm", "tok1"}, Device{"apns", "tok2"}};
  return n;
}

TEST(PushRules, PayloadIsJsonWithEveryField) {
  EXPECT_EQ(PayloadJson(Sample(), 200),
            "{\"id\":\"7/d:3:7/12\",\"uid\":7,\"conv\":\"d:3:7\",\"seq\":12,\"sender\":3,"
            "\"sender_name\":\"alice\",\"ts\":1764500000000,"
            "\"preview\":\"say \\\"hi\\\"\\\\\\u000a\\u0001 \xc3\xa9t\xc3\xa9\","
            "\"devices\":[{\"platform\":\"fcm\",\"token\":\"tok1\"},"
            "{\"platform\":\"apns\",\"token\":\"tok2\"}]}");
}

TEST(PushRules, PreviewIsCutAtACharacterOrLeftOut) {
  Notification n = Sample();
  n.text = "\xc3\xa9\xc3\xa9\xc3\xa9";  // three 2-byte characters
  EXPECT_NE(PayloadJson(n, 5).find("\"preview\":\"\xc3\xa9\xc3\xa9\","), std::string::npos);
  EXPECT_NE(PayloadJson(n, 4).find("\"preview\":\"\xc3\xa9\xc3\xa9\","), std::string::npos);
  EXPECT_NE(PayloadJson(n, 3).find("\"preview\":\"\xc3\xa9\","), std::string::npos);
  n.text.reset();
  n.gid = 9;
  const std::string j = PayloadJson(n, 200);
  EXPECT_NE(j.find("\"preview\":null"), std::string::npos) << j;
  EXPECT_NE(j.find("\"gid\":9,"), std::string::npos) << j;
}

TEST(PushRules, SignatureIsHmacSha256OfTheBody) {
  const std::string secret =
      "a secret longer than a block of sha256, "
      "which HMAC hashes first: 0123456789abcdef";
  const std::string body = PayloadJson(Sample(), 200);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) {
    char b[3];
    std::snprintf(b, sizeof(b), "%02x", mac[i]);
    hex += b;
  }
  EXPECT_EQ(Signature(secret, body), "sha256=" + hex);
  EXPECT_NE(Signature(secret, body + " "), "sha256=" + hex);
}

TEST(PushRules, BackoffDoublesUpToTheCap) {
  EXPECT_EQ(BackoffMs(1, 1000, 600000), 1000);
  EXPECT_EQ(BackoffMs(2, 1000, 600000), 2000);
  EXPECT_EQ(BackoffMs(5, 1000, 600000), 16000);
  EXPECT_EQ(BackoffMs(11, 1000, 600000), 600000);
  EXPECT_EQ(BackoffMs(1000, 1000, 600000), 600000);  // no overflow
}

TEST(PushRules, DeviceTokensAreChecked) {
  auto parse = [](std::string platform, std::string token) {
    codec::MapWriter w(2);
    w.Key("platform").Str(platform).Key("token").Str(token);
    codec::Body b;
    std::string error;
    EXPECT_TRUE(codec::Body::Parse(w.Finish(), &b, &error));
    try {
      ParseDevice(b);
      return codec::Code::kOk;
    } catch (const RequestError& e) {
      return e.code();
    }
  };
  EXPECT_EQ(parse("fcm", "abc:DEF-123_x"), codec::Code::kOk);
  EXPECT_EQ(parse("", "abc"), codec::Code::kBadRequest);
  EXPECT_EQ(parse("fcm", ""), codec::Code::kBadRequest);
  EXPECT_EQ(parse("FCM", "abc"), codec::Code::kBadRequest);
  EXPECT_EQ(parse("fcm", "a b"), codec::Code::kBadRequest);
  EXPECT_EQ(parse("fcm", "\xc3\xa9"), codec::Code::kBadRequest);
  EXPECT_EQ(parse(std::string(17, 'a'), "abc"), codec::Code::kTooLarge);
  EXPECT_EQ(parse("fcm", std::string(513, 'a')), codec::Code::kTooLarge);
  EXPECT_EQ(parse("fcm", std::string(512, 'a')), codec::Code::kOk);
}

}  // namespace
}  // namespace imbus::actors::push

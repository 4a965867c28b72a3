// Dispatcher and offloaded work (Offload in actors/service.h) with a real
// OffloadPool: an offloaded request is answered later by TakeFinished (its pushes
// first) while other requests are answered at once; a full queue answers
// RATE_LIMITED with retry_ms; what `work` or `then` throws maps like Handle; without
// a pool everything finishes inline.
#include "actors/dispatcher.h"

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "actors/offload_pool.h"
#include "codec/body.h"
#include "codec/bus.h"

namespace imbus::actors {
namespace {

using codec::Code;

// Not a service of the protocol: the command table's login gate does not apply.
constexpr uint16_t kService = 77;
enum : uint16_t { kSlow = 1, kFast = 2, kWorkThrows = 3, kThenThrows = 4 };

// Holds offloaded work until the test opens it; counts the jobs that started.
class Gate {
 public:
  void Enter() {
    std::unique_lock<std::mutex> lock(mu_);
    ++entered_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
  }
  void WaitEntered(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [this, n] { return entered_ >= n; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  int entered_ = 0;
  bool open_ = false;
};

class GateService : public Service {
 public:
  explicit GateService(std::shared_ptr<Gate> gate) : gate_(std::move(gate)) {}

  void Handle(const Request& req, Reply* reply) override {
    const uint32_t seq = req.meta.seq;
    switch (req.meta.command) {
      case kSlow:
        reply->offload.work = [gate = gate_] { gate->Enter(); };
        reply->offload.then = [seq](const Request& r, Reply* out) {
          EXPECT_EQ(r.meta.seq, seq);  // the same request, kept by the dispatcher
          Push p;
          p.meta.uids = {7};
          p.body = codec::OkBody();
          out->pushes.push_back(std::move(p));
        };
        return;
      case kFast:
        return;
      case kWorkThrows:
        reply->offload.work = [] { throw std::runtime_error("out of memory"); };
        reply->offload.then = [](const Request&, Reply*) { ADD_FAILURE() << "then ran"; };
        return;
      case kThenThrows:
        reply->offload.work = [] {};
        reply->offload.then = [](const Request&, Reply*) {
          throw RequestError(Code::kConflict, "name is taken");
        };
        return;
      default:
        throw RequestError(Code::kUnsupported, "no such command");
    }
  }

 private:
  std::shared_ptr<Gate> gate_;
};

std::string Meta(uint16_t command, uint32_t seq) {
  codec::RequestMeta m;
  m.rid = seq;
  m.conn = 100 + seq;
  m.seq = seq;
  m.service = kService;
  m.command = command;
  return codec::PackMeta(m);
}

struct Answer {
  uint32_t seq = 0;
  int code = -1;
  int64_t retry_ms = -1;
};

Answer ReadReply(const OutMessage& m) {
  Answer a;
  EXPECT_EQ(m.type, codec::BusType::kReply);
  codec::ReplyMeta meta;
  EXPECT_TRUE(codec::UnpackMeta(m.meta, &meta));
  a.seq = meta.seq;
  codec::Body body;
  std::string error;
  EXPECT_TRUE(codec::Body::Parse(m.body, &body, &error)) << error;
  a.code = static_cast<int>(body.GetInt("code").value_or(-1));
  a.retry_ms = body.GetInt("retry_ms").value_or(-1);
  return a;
}

// Takes finished answers until `n` messages came out (or 10 s passed), as the
// worker loop does.
std::vector<OutMessage> TakeAtLeast(Dispatcher& d, size_t n) {
  std::vector<OutMessage> out;
  for (int i = 0; i < 2000 && out.size() < n; ++i) {
    d.TakeFinished(&out);
    if (out.size() < n) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return out;
}

class DispatcherOffloadTest : public ::testing::Test {
 protected:
  void SetUpPool(int threads, size_t queue) {
    pool_ = std::make_unique<OffloadPool>(threads, queue);
    dispatcher_ = std::make_unique<Dispatcher>(pool_.get());
    dispatcher_->Add(kService, std::make_unique<GateService>(gate_));
  }
  void TearDown() override {
    gate_->Open();  // never leave a pool thread waiting
  }

  std::shared_ptr<Gate> gate_ = std::make_shared<Gate>();
  std::unique_ptr<OffloadPool> pool_;
  std::unique_ptr<Dispatcher> dispatcher_;
};

TEST_F(DispatcherOffloadTest, OffloadedRequestAnsweredLaterOthersAtOnce) {
  SetUpPool(1, 4);
  std::vector<OutMessage> out;
  dispatcher_->HandleRequest(Meta(kSlow, 1), codec::EmptyBody(), &out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(dispatcher_->offloaded(), 1u);
  gate_->WaitEntered(1);

  dispatcher_->HandleRequest(Meta(kFast, 2), codec::EmptyBody(), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(ReadReply(out[0]).seq, 2u);
  out.clear();
  dispatcher_->TakeFinished(&out);
  EXPECT_TRUE(out.empty()) << "answered before its work finished";

  gate_->Open();
  out = TakeAtLeast(*dispatcher_, 2);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].type, codec::BusType::kPush);  // the request's push before its reply
  const Answer a = ReadReply(out[1]);
  EXPECT_EQ(a.seq, 1u);
  EXPECT_EQ(a.code, 0);
  EXPECT_EQ(dispatcher_->offloaded(), 0u);
}

TEST_F(DispatcherOffloadTest, FullQueueAnswersRateLimitedAtOnce) {
  SetUpPool(1, 1);
  std::vector<OutMessage> out;
  dispatcher_->HandleRequest(Meta(kSlow, 1), codec::EmptyBody(), &out);
  gate_->WaitEntered(1);  // running: the queue is empty again
  dispatcher_->HandleRequest(Meta(kSlow, 2), codec::EmptyBody(), &out);  // waits
  EXPECT_TRUE(out.empty());
  dispatcher_->HandleRequest(Meta(kSlow, 3), codec::EmptyBody(), &out);  // refused
  ASSERT_EQ(out.size(), 1u);
  const Answer refused = ReadReply(out[0]);
  EXPECT_EQ(refused.seq, 3u);
  EXPECT_EQ(refused.code, static_cast<int>(Code::kRateLimited));
  EXPECT_GE(refused.retry_ms, 100);
  EXPECT_EQ(dispatcher_->offloaded(), 2u);

  gate_->Open();
  out = TakeAtLeast(*dispatcher_, 4);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(ReadReply(out[1]).seq, 1u);
  EXPECT_EQ(ReadReply(out[3]).seq, 2u);
}

TEST_F(DispatcherOffloadTest, ErrorsOfWorkAndThenMapLikeHandle) {
  SetUpPool(2, 4);
  std::vector<OutMessage> out;
  dispatcher_->HandleRequest(Meta(kWorkThrows, 1), codec::EmptyBody(), &out);
  dispatcher_->HandleRequest(Meta(kThenThrows, 2), codec::EmptyBody(), &out);
  EXPECT_TRUE(out.empty());
  out = TakeAtLeast(*dispatcher_, 2);
  ASSERT_EQ(out.size(), 2u);
  for (const OutMessage& m : out) {
    const Answer a = ReadReply(m);
    EXPECT_EQ(a.code, static_cast<int>(a.seq == 1 ? Code::kInternal : Code::kConflict))
        << "seq " << a.seq;
  }
}

TEST(DispatcherInlineTest, WithoutPoolOffloadedWorkFinishesInPlace) {
  auto gate = std::make_shared<Gate>();
  gate->Open();
  Dispatcher d;
  d.Add(kService, std::make_unique<GateService>(gate));
  std::vector<OutMessage> out;
  d.HandleRequest(Meta(kSlow, 1), codec::EmptyBody(), &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].type, codec::BusType::kPush);
  EXPECT_EQ(ReadReply(out[1]).code, 0);
  out.clear();
  d.HandleRequest(Meta(kThenThrows, 2), codec::EmptyBody(), &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(ReadReply(out[0]).code, static_cast<int>(Code::kConflict));
  EXPECT_EQ(d.offloaded(), 0u);
}

}  // namespace
}  // namespace imbus::actors

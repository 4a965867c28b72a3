#include "actors/push/push_delivery.h"

#include <curl/curl.h>
#include <sodium.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "metrics/metrics.h"
#include "net/clock.h"

namespace imbus::actors::push {
namespace {

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(ch);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      *out += buf;
    } else {
      out->push_back(ch);  // UTF-8 as is (MSG/SEND checked it)
    }
  }
  out->push_back('"');
}

// At most `n` bytes of UTF-8 `s`, not cutting a character.
std::string_view Clip(std::string_view s, size_t n) {
  if (s.size() <= n) return s;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// Sleeps `ms`, waking early when `stop` becomes true.
void SleepFor(int64_t ms, const std::atomic<bool>& stop) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!stop.load(std::memory_order_relaxed) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(50), until - std::chrono::steady_clock::now()));
  }
}

size_t KeepSome(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  const size_t len = size * n;
  if (body->size() < 200) body->append(data, std::min(len, 200 - body->size()));
  return len;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

enum class Outcome { kAccepted, kRetry, kRefused };

struct PostResult {
  Outcome outcome;
  std::string what;  // for the row's last_error and the logs
};

// One POST with the handle's kept-alive connection.
PostResult Post(CURL* curl, const ServiceOptions& o, const std::string& key, uint32_t attempt,
                const std::string& body) {
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add = [&](const std::string& h) {
    headers.reset(curl_slist_append(headers.release(), h.c_str()));
  };
  add("Content-Type: application/json");
  add("Idempotency-Key: " + key);
  add("X-Imbus-Attempt: " + std::to_string(attempt));
  if (!o.push_secret.empty()) add("X-Imbus-Signature: " + Signature(o.push_secret, body));
  add("Expect:");  // no 100-continue round trip
  std::string answer;
  curl_easy_setopt(curl, CURLOPT_URL, o.push_url.c_str());
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(o.push_timeout_ms));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.push_timeout_ms));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, KeepSome);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
  const CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) return {Outcome::kRetry, curl_easy_strerror(rc)};
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300) return {Outcome::kAccepted, {}};
  std::string what = "HTTP " + std::to_string(status);
  if (!answer.empty()) what += ": " + answer;
  const bool permanent =
      status >= 400 && status < 500 && status != 408 && status != 425 && status != 429;
  return {permanent ? Outcome::kRefused : Outcome::kRetry, what};
}

std::string WorkerName(int index) {
  char host[128] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  unsigned char nonce[4];
  randombytes_buf(nonce, sizeof(nonce));
  char hex[9];
  sodium_bin2hex(hex, sizeof(hex), nonce, sizeof(nonce));
  return std::string(host).substr(0, 60) + "/" + std::to_string(::getpid()) + "/" +
         std::to_string(index) + "/" + hex;
}

}  // namespace

PushCounters& Counters() {
  static PushCounters counters;
  return counters;
}

std::string IdempotencyKey(const OutboxKey& k) {
  return std::to_string(k.uid) + "/" + k.conv + "/" + std::to_string(k.seq);
}

std::string PayloadJson(const Notification& n, size_t preview_bytes) {
  std::string j = "{\"id\":";
  AppendJsonString(&j, IdempotencyKey(n.key));
  j += ",\"uid\":" + std::to_string(n.key.uid);
  j += ",\"conv\":";
  AppendJsonString(&j, n.key.conv);
  j += ",\"seq\":" + std::to_string(n.key.seq);
  if (n.gid != 0) j += ",\"gid\":" + std::to_string(n.gid);
  j += ",\"sender\":" + std::to_string(n.sender);
  j += ",\"sender_name\":";
  AppendJsonString(&j, n.sender_name);
  j += ",\"ts\":" + std::to_string(n.ts);
  j += ",\"preview\":";
  if (n.text) {
    AppendJsonString(&j, Clip(*n.text, preview_bytes));
  } else {
    j += "null";
  }
  j += ",\"devices\":[";
  for (size_t i = 0; i < n.devices.size(); ++i) {
    if (i > 0) j += ",";
    j += "{\"platform\":";
    AppendJsonString(&j, n.devices[i].platform);
    j += ",\"token\":";
    AppendJsonString(&j, n.devices[i].token);
    j += "}";
  }
  j += "]}";
  return j;
}

std::string Signature(const std::string& secret, const std::string& body) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(secret.data()),
                              secret.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(body.data()),
                                body.size());
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_final(&st, mac);
  char hex[2 * sizeof(mac) + 1];
  sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
  return std::string("sha256=") + hex;
}

int64_t BackoffMs(uint32_t tries, int64_t base_ms, int64_t max_ms) {
  int64_t ms = base_ms;
  for (uint32_t i = 1; i < tries && ms < max_ms; ++i) ms *= 2;
  return std::min(ms, max_ms);
}

PushDelivery::PushDelivery(DbConfig db, ServiceOptions options)
    : db_(std::move(db)), o_(std::move(options)) {
  static std::once_flag once;
  std::call_once(once, [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    // Read at scrape time from the process-wide counters (docs/operations.md).
    metrics::AddCallback(
        "imbus_push_notifications_total",
        "Offline push notifications by outcome: delivered (the gateway answered 2xx), "
        "retried (a failed try scheduled again), dead_letter (given up), dropped (no "
        "device to send to)",
        metrics::Type::kCounter, [] {
          const PushCounters& c = Counters();
          auto sample = [](const char* result, const std::atomic<uint64_t>& v) {
            return metrics::Sample{{{"result", result}},
                                   static_cast<double>(v.load(std::memory_order_relaxed))};
          };
          return std::vector<metrics::Sample>{
              sample("delivered", c.delivered), sample("retried", c.retried),
              sample("dead_letter", c.dead), sample("dropped", c.dropped)};
        });
  });
}

void PushDelivery::Run(const std::atomic<bool>& stop) {
  spdlog::info(
      "push: delivering to {} with {} threads (max {} tries, backoff {}..{} ms, timeout {} ms, "
      "{})",
      o_.push_url, o_.push_threads, o_.push_max_tries, o_.push_backoff_ms, o_.push_backoff_max_ms,
      o_.push_timeout_ms, o_.push_secret.empty() ? "UNSIGNED" : "signed");
  std::vector<std::thread> threads;
  for (int i = 0; i < o_.push_threads; ++i) {
    threads.emplace_back([this, i, &stop] { Loop(i, stop); });
  }
  // The counters in the log: every 10 s when they moved, and at the end.
  uint64_t last[4] = {0, 0, 0, 0};
  auto report = [&] {
    const uint64_t now[4] = {counters_.delivered.load(), counters_.retried.load(),
                             counters_.dead.load(), counters_.dropped.load()};
    if (std::equal(now, now + 4, last)) return;
    spdlog::info("push: delivered {} retried {} dead_letters {} dropped {}", now[0], now[1], now[2],
                 now[3]);
    std::copy(now, now + 4, last);
  };
  while (!stop.load(std::memory_order_relaxed)) {
    SleepFor(10000, stop);
    report();
  }
  for (auto& t : threads) t.join();
  report();
}

void PushDelivery::Loop(int index, const std::atomic<bool>& stop) {
  const std::string me = WorkerName(index);
  Db db(db_);
  PushStore store(&db);
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) {
    spdlog::error("push thread {}: curl_easy_init failed; this thread delivers nothing", index);
    return;
  }
  thread_local std::minstd_rand rng{std::random_device{}()};
  std::vector<OutboxKey> delivered;  // accepted, the row not deleted yet (DB down)
  // A claim covers the whole batch, POSTed one after the other.
  const int64_t lease_ms = static_cast<int64_t>(o_.push_batch) * o_.push_timeout_ms + 2000;
  while (!stop.load(std::memory_order_relaxed)) {
    try {
      while (!delivered.empty()) {
        store.Delete(delivered.back());
        delivered.pop_back();
      }
      const int64_t now = net::WallNowMs();
      uint64_t spent = 0;
      std::vector<Notification> batch =
          store.Claim(me, now, now + lease_ms, o_.push_batch, o_.push_max_tries, &spent);
      if (spent > 0) {
        counters_.dead += spent;
        spdlog::warn("push: {} dead letters: their tries were spent by stopped workers", spent);
      }
      if (batch.empty()) {
        SleepFor(o_.push_poll_ms, stop);
        continue;
      }
      for (size_t i = 0; i < batch.size(); ++i) {
        const Notification& n = batch[i];
        if (stop.load(std::memory_order_relaxed)) {  // give the rest back at once
          store.Reschedule(n.key, me, net::WallNowMs(), "worker stopped");
          continue;
        }
        const std::string key = IdempotencyKey(n.key);
        if (n.devices.empty()) {
          store.Delete(n.key);
          ++counters_.dropped;
          continue;
        }
        const PostResult r =
            Post(curl.get(), o_, key, n.tries, PayloadJson(n, o_.push_preview_bytes));
        if (r.outcome == Outcome::kAccepted) {
          ++counters_.delivered;
          delivered.push_back(n.key);
          store.Delete(n.key);
          delivered.pop_back();
        } else if (r.outcome == Outcome::kRefused || n.tries >= o_.push_max_tries) {
          ++counters_.dead;
          spdlog::warn("push: dead letter {} after {} tries: {}", key, n.tries, r.what);
          store.Kill(n.key, me, r.what);
        } else {
          ++counters_.retried;
          const int64_t wait = BackoffMs(n.tries, o_.push_backoff_ms, o_.push_backoff_max_ms);
          std::uniform_int_distribution<int64_t> jitter(0, wait / 10);
          spdlog::debug("push: {} try {} failed ({}); next in {} ms", key, n.tries, r.what, wait);
          store.Reschedule(n.key, me, net::WallNowMs() + wait + jitter(rng), r.what);
        }
      }
    } catch (const std::exception& e) {
      // A DbError mostly (MariaDB down or restarting). The rows claimed and not
      // settled come back when their lease ends.
      spdlog::warn("push thread {}: {}; trying again in 1 s", index, e.what());
      SleepFor(1000, stop);
    }
  }
}

}  // namespace imbus::actors::push

#include "bench/imbus_bench/message_load.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "bench/imbus_bench/scenarios.h"
#include "codec/codes.h"
#include "codec/commands.h"

namespace imbus::bench {

namespace {
const uint16_t kMsg = codec::ToWire(codec::Service::kMsg);
constexpr size_t kMaxBurst = 2000;  // open loop: sends per loop round, so reads keep up
}  // namespace

MessageLoad::MessageLoad(Fleet* fleet, EventLoop* loop, MessageLoadOptions options,
                         std::vector<size_t> senders)
    : fleet_(fleet),
      loop_(loop),
      options_(options),
      senders_(std::move(senders)),
      rng_(options.seed) {
  text_ = "bench ";
  text_.resize(std::max<size_t>(options_.text_bytes, 1), 'x');
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%08llx",
                static_cast<unsigned long long>(std::random_device{}() ^ NowNs()) & 0xffffffffull);
  nonce_ = buf;
  words_per_msg_ = options_.gid ? (fleet_->size() + 63) / 64 : 0;
  if (!options_.gid && options_.contacts > 0) {
    // Each user's contacts depend only on the seed and its index, so two runs (two
    // builds) with the same --seed and --users talk over the same pairs.
    const size_t n = fleet_->size();
    const size_t k = std::min(options_.contacts, n - 1);
    contacts_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      std::mt19937_64 rng(options_.seed * 0x9e3779b97f4a7c15ull + i);
      std::uniform_int_distribution<size_t> pick(0, n - 2);
      while (contacts_[i].size() < k) {
        size_t to = pick(rng);
        if (to >= i) ++to;
        const auto c = static_cast<uint32_t>(to);
        if (std::find(contacts_[i].begin(), contacts_[i].end(), c) == contacts_[i].end()) {
          contacts_[i].push_back(c);
        }
      }
    }
  }
  for (size_t i = 0; i < fleet_->size(); ++i) {
    fleet_->conn(i).set_on_push([this, i](const codec::Frame& f, const codec::Body& body) {
      if (f.header.service == kMsg && f.header.command == codec::msg::kMessage) OnPush(i, body);
    });
  }
}

void MessageLoad::Send(size_t sender, int64_t scheduled_ns) {
  BenchConn& c = fleet_->conn(sender);
  if (c.state() != BenchConn::State::kOpen) return;
  Msg m;
  m.sent_ns = scheduled_ns;
  m.sender = static_cast<uint32_t>(sender);
  if (options_.gid) {
    seen_.resize(seen_.size() + words_per_msg_, 0);
  } else if (!contacts_.empty()) {
    const std::vector<uint32_t>& mine = contacts_[sender];
    m.to = mine[std::uniform_int_distribution<size_t>(0, mine.size() - 1)(rng_)];
  } else {
    std::uniform_int_distribution<size_t> pick(0, fleet_->size() - 2);
    size_t to = pick(rng_);
    if (to >= sender) ++to;  // anyone but the sender
    m.to = static_cast<uint32_t>(to);
  }
  msgs_.push_back(m);
  Issue(msgs_.size() - 1);
}

void MessageLoad::Issue(size_t index) {
  const size_t sender = msgs_[index].sender;
  BenchConn& c = fleet_->conn(sender);
  codec::MapWriter w(3);
  if (options_.gid) {
    w.Key("gid").Uint(options_.gid);
  } else {
    w.Key("to").Uint(fleet_->conn(msgs_[index].to).uid);
  }
  w.Key("cmid").Str(nonce_ + "-" + std::to_string(index));
  w.Key("text").Str(text_);
  c.Request(kMsg, codec::msg::kSend, w.Finish(),
            [this, index, sender](int code, const codec::Body& body) {
              Msg& msg = msgs_[index];
              if (code == static_cast<int>(codec::Code::kRateLimited) && sending_) {
                ++busy_;
                int64_t retry_ms = 0;
                try {
                  retry_ms = body.GetInt("retry_ms").value_or(0);
                } catch (const codec::BadField&) {
                }
                std::uniform_real_distribution<double> spread(1.0, 2.0);
                const double wait_ms =
                    static_cast<double>(std::clamp<int64_t>(retry_ms, 1, 10000)) * spread(rng_);
                retries_.emplace(NowNs() + static_cast<int64_t>(wait_ms * 1e6), index);
                return;
              }
              msg.answered = true;
              ++answered_;
              if (code == 0) {
                msg.acked_ns = NowNs();
                ++acked_;
                ack_ns_.Record(msg.acked_ns - msg.sent_ns);
                if (static_cast<double>(msg.acked_ns - msg.sent_ns) <= options_.deadline_ms * 1e6)
                  ++in_deadline_;
              } else {
                msg.failed = true;
                if (code == kConnLost) {
                  ++conn_lost_;
                  last_error_ = "connection lost";
                } else if (code == static_cast<int>(codec::Code::kRateLimited)) {
                  ++refused_;  // after the send phase: not retried, not stored
                } else {
                  ++errors_;
                  last_error_ = std::string("SEND: ") + codec::CodeName(code);
                }
              }
              if (sending_ && options_.rate <= 0 && code != kConnLost) Send(sender, NowNs());
            });
}

void MessageLoad::OnPush(size_t recipient, const codec::Body& body) {
  const int64_t now = NowNs();
  std::string cmid;
  uint64_t from = 0;
  try {
    cmid = body.GetString("cmid").value_or("");
    from = body.GetUint("from").value_or(0);
  } catch (const codec::BadField&) {
    ++foreign_;
    return;
  }
  size_t index = 0;
  const size_t dash = cmid.find('-');
  if (dash == std::string::npos || cmid.compare(0, dash, nonce_) != 0 ||
      std::from_chars(cmid.data() + dash + 1, cmid.data() + cmid.size(), index).ec != std::errc() ||
      index >= msgs_.size()) {
    ++foreign_;  // not sent by this run
    return;
  }
  Msg& m = msgs_[index];
  if (fleet_->conn(m.sender).uid != from) {
    ++misrouted_;
    return;
  }
  if (options_.gid) {
    if (recipient == m.sender) {
      ++misrouted_;  // the sender's own connection is skipped by the server
      return;
    }
    uint64_t& word = seen_[index * words_per_msg_ + recipient / 64];
    const uint64_t bit = uint64_t{1} << (recipient % 64);
    if (word & bit) {
      ++duplicates_;
      return;
    }
    word |= bit;
  } else {
    if (recipient != m.to) {
      ++misrouted_;
      return;
    }
    if (m.delivered > 0) {
      ++duplicates_;
      return;
    }
  }
  ++m.delivered;
  ++deliveries_;
  delivery_ns_.Record(now - m.sent_ns);
  if (m.delivered == expected()) {
    ++fully_delivered_;
    all_members_ns_.Record(now - m.sent_ns);
  }
}

bool MessageLoad::Settled() const {
  if (answered_ < msgs_.size()) return false;
  for (const Msg& m : msgs_) {
    if (m.acked_ns != 0 && m.delivered < expected()) return false;
  }
  return true;
}

std::vector<int64_t> MessageLoad::SampleCpu() const {
  std::vector<int64_t> us;
  for (const auto& [name, pid] : options_.cpu_pids) us.push_back(CpuUs(pid));
  return us;
}

void MessageLoad::Run() {
  sending_ = true;
  cpu_start_us_ = SampleCpu();
  const int64_t start = NowNs();
  const int64_t end = start + static_cast<int64_t>(options_.duration_s * 1e9);
  std::uniform_int_distribution<size_t> pick(0, senders_.size() - 1);
  int64_t next_ns = start;
  const double period_ns = options_.rate > 0 ? 1e9 / options_.rate : 0;
  double scheduled = 0;  // sends scheduled so far (open loop)
  if (options_.rate <= 0) {
    for (size_t s : senders_) {
      for (size_t k = 0; k < std::max<size_t>(options_.window, 1); ++k) Send(s, NowNs());
    }
  }
  Progress progress(options_.gid ? "group" : "chat");
  uint64_t last_acked = 0, last_delivered = 0;
  auto line = [&] {
    char buf[256];
    std::snprintf(buf, sizeof(buf),
                  "sent %zu  acked %llu (+%llu/s)  delivered %llu (+%llu/s)  errors %llu  "
                  "ack p99 %.2f ms  e2e p99 %.2f ms",
                  msgs_.size(), static_cast<unsigned long long>(acked_),
                  static_cast<unsigned long long>(acked_ - last_acked),
                  static_cast<unsigned long long>(deliveries_),
                  static_cast<unsigned long long>(deliveries_ - last_delivered),
                  static_cast<unsigned long long>(errors_ + conn_lost_),
                  static_cast<double>(ack_ns_.Quantile(0.99)) / 1e6,
                  static_cast<double>(delivery_ns_.Quantile(0.99)) / 1e6);
    last_acked = acked_;
    last_delivered = deliveries_;
    return std::string(buf);
  };
  loop_->RunUntil([] { return false; }, end,
                  [&] {
                    fleet_->Tick();
                    if (period_ns <= 0) RetryDue(NowNs());
                    if (period_ns > 0) {
                      const int64_t now = NowNs();
                      size_t burst = 0;
                      while (next_ns <= now && next_ns < end && burst++ < kMaxBurst) {
                        if (!retries_.empty() && retries_.top().first <= now) {
                          RetryDue(now, 1);
                        } else {
                          Send(senders_[pick(rng_)], next_ns);
                        }
                        scheduled += 1;
                        next_ns = start + static_cast<int64_t>(scheduled * period_ns);
                      }
                    }
                    progress.Maybe(line);
                  },
                  1);
  sending_ = false;
  send_phase_s_ = Seconds(NowNs() - start);
  cpu_end_us_ = SampleCpu();
  acked_in_window_ = acked_;
  // Messages waiting to be sent again are given up: the server stored none of them.
  for (; !retries_.empty(); retries_.pop()) {
    Msg& m = msgs_[retries_.top().second];
    m.answered = m.failed = true;
    ++answered_;
    ++refused_;
  }
  loop_->RunUntil([&] { return Settled(); }, NowNs() + static_cast<int64_t>(options_.drain_s * 1e9),
                  [&] {
                    fleet_->Tick();
                    progress.Maybe(line);
                  });
  total_s_ = Seconds(NowNs() - start);
}

void MessageLoad::RetryDue(int64_t now_ns, size_t max) {
  for (size_t n = 0; n < max && !retries_.empty() && retries_.top().first <= now_ns; ++n) {
    const size_t index = retries_.top().second;
    retries_.pop();
    if (fleet_->conn(msgs_[index].sender).state() == BenchConn::State::kOpen) {
      Issue(index);
    } else {
      msgs_[index].answered = msgs_[index].failed = true;
      ++answered_;
      ++conn_lost_;
    }
  }
}

bool MessageLoad::Fill(Report* report) const {
  uint64_t lost = 0, unacked_delivered = 0, unanswered = 0;
  for (const Msg& m : msgs_) {
    if (!m.answered) ++unanswered;
    if (m.acked_ns != 0 && m.delivered < expected()) lost += expected() - m.delivered;
    if (m.acked_ns == 0 && m.delivered > 0) ++unacked_delivered;
  }
  if (options_.rate > 0) {
    report->Set("target_rate", options_.rate, "msg/s");
  } else {
    report->Set("window", static_cast<uint64_t>(options_.window), "per sender");
  }
  report->Set("senders", static_cast<uint64_t>(senders_.size()));
  report->Set("send_phase_s", send_phase_s_, "s");
  report->Set("sent", static_cast<uint64_t>(msgs_.size()));
  report->Set("acked", acked_);
  report->Set("errors", errors_);
  report->Set("busy_retries", busy_);
  report->Set("refused", refused_);
  report->Set("conn_lost", conn_lost_);
  report->Set("unanswered", unanswered);
  report->Set("acked_rate", static_cast<double>(acked_) / send_phase_s_, "msg/s");
  if (!contacts_.empty())
    report->Set("contacts", static_cast<uint64_t>(options_.contacts), "per user");
  report->Set("deadline_ms", options_.deadline_ms, "ms");
  report->Set("acked_in_deadline", in_deadline_);
  report->Set(
      "in_deadline_share",
      msgs_.empty() ? 0.0 : static_cast<double>(in_deadline_) / static_cast<double>(msgs_.size()),
      "of sent");
  if (!options_.cpu_pids.empty()) {
    // CPU over the send phase per message acked in it (clock ticks: 10 ms resolution).
    report->Set("acked_in_window", acked_in_window_);
    int64_t total = 0;
    bool all = true;
    for (size_t i = 0; i < options_.cpu_pids.size(); ++i) {
      const std::string& name = options_.cpu_pids[i].first;
      if (cpu_start_us_[i] < 0 || cpu_end_us_[i] < 0 || acked_in_window_ == 0) {
        all = false;
        report->SetText("cpu_us_per_msg_" + name, "-");
        continue;
      }
      const int64_t used = cpu_end_us_[i] - cpu_start_us_[i];
      total += used;
      report->Set("cpu_s_" + name, static_cast<double>(used) / 1e6, "s");
      report->Set("cpu_us_per_msg_" + name,
                  static_cast<double>(used) / static_cast<double>(acked_in_window_), "us");
    }
    if (all) {
      report->Set("cpu_us_per_msg_total",
                  static_cast<double>(total) / static_cast<double>(acked_in_window_), "us");
    }
  }
  report->Set("expected_per_msg", static_cast<uint64_t>(expected()));
  report->Set("delivered", deliveries_);
  report->Set("delivery_rate", static_cast<double>(deliveries_) / total_s_, "pushes/s");
  report->Set("fully_delivered", fully_delivered_);
  report->Set("lost", lost);
  report->Set("duplicates", duplicates_);
  report->Set("misrouted", misrouted_);
  report->Set("delivered_not_acked", unacked_delivered);
  report->Set("foreign_pushes", foreign_);
  if (!last_error_.empty()) report->SetText("last_error", last_error_);
  report->AddLatency("ack", ack_ns_);
  report->AddLatency(options_.gid ? "delivery_each" : "end_to_end", delivery_ns_);
  if (options_.gid) report->AddLatency("delivery_all", all_members_ns_);
  return lost == 0 && duplicates_ == 0 && misrouted_ == 0 && acked_ > 0;
}

}  // namespace imbus::bench

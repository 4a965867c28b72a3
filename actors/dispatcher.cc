#include "actors/dispatcher.h"

#include <spdlog/spdlog.h>

#include "actors/db/db.h"
#include "actors/sessions.h"
#include "codec/commands.h"
#include "codec/frame.h"

#include <exception>
#include <tuple>
#include <utility>

namespace imbus::actors {

using codec::Code;

namespace {
std::string RequestName(const codec::RequestMeta& m) {
  if (const codec::CommandInfo* c = codec::FindCommand(m.service, m.command)) return c->name;
  return std::to_string(m.service) + "/" + std::to_string(m.command);
}
}  // namespace

Dispatcher::Dispatcher(OffloadPool* pool)
    : pool_(pool), finished_(pool != nullptr ? std::make_shared<CompletionQueue>() : nullptr) {}

void Dispatcher::Add(uint16_t wire_service, std::unique_ptr<Service> service) {
  services_[wire_service] = std::move(service);
  const char* name = codec::ServiceName(wire_service);
  const metrics::Labels labels{{"service", name != nullptr ? name : "unknown"}};
  batch_sizes_[wire_service] =
      metrics::GetHistogram("imbus_actor_batch_size",
                            "Requests handed to a service in one batch (one commit for many "
                            "MSG/SENDs), by service.",
                            labels, metrics::SizeBuckets());
  handled_by_service_[wire_service] = metrics::GetCounter(
      "imbus_actor_requests_total", "Requests handled by this worker, by service.", labels);
}

namespace {

// The error policy, in one place: what an exception out of a service answers.
std::pair<Code, std::string> MapException(std::exception_ptr e, const std::string& what_request) {
  try {
    std::rethrow_exception(e);
  } catch (const RequestError& ex) {
    return {ex.code(), ex.what()};
  } catch (const codec::BadField& ex) {
    return {Code::kBadRequest, ex.what()};
  } catch (const DbUnavailable& ex) {
    spdlog::warn("actor: {} failed: database unavailable ({})", what_request, ex.what());
    return {Code::kUnavailable, "database unavailable"};
  } catch (const SessionsUnavailable& ex) {
    spdlog::warn("actor: {} failed: {}", what_request, ex.what());
    return {Code::kUnavailable, "session table unavailable"};
  } catch (const std::exception& ex) {
    spdlog::error("actor: {} failed: {}", what_request, ex.what());
    return {Code::kInternal, "internal error"};
  } catch (...) {
    spdlog::error("actor: {} failed with an unknown exception", what_request);
    return {Code::kInternal, "internal error"};
  }
}

// The largest body that still fits a client frame of the default max_frame. Every
// answer is built to fit (lists are paged, SYNC and HISTORY cut by size); one that
// does not is a server bug, and it is answered and logged here rather than sent into
// a frame the client cannot read (or over the bus's message limit, where it would be
// dropped and leave the client waiting for its timeout).
constexpr size_t kMaxBody = codec::kDefaultMaxFrame - codec::kHeaderSize;

void Emit(const codec::RequestMeta& meta, Reply& reply, Code code, const std::string& error,
          std::vector<OutMessage>* out) {
  if (code == Code::kOk && reply.body.size() > kMaxBody) {
    spdlog::error("actor: {} answer of {} bytes does not fit a frame; answered INTERNAL",
                  RequestName(meta), reply.body.size());
    Emit(meta, reply, Code::kInternal, "answer too large for one frame", out);
    return;
  }
  if (code != Code::kOk) reply = Reply{};
  for (Push& p : reply.pushes) {
    if (p.body.size() > kMaxBody) {
      spdlog::error("actor: {} push of {} bytes does not fit a frame; not sent", RequestName(meta),
                    p.body.size());
      continue;
    }
    if (p.skip_requester) p.meta.skip_rid = meta.rid;
    out->push_back({codec::BusType::kPush, codec::PackMeta(p.meta), std::move(p.body)});
  }
  codec::ReplyMeta rm = codec::ReplyMetaFor(meta);
  rm.action = static_cast<uint8_t>(reply.action);
  rm.session = std::move(reply.session);
  rm.kick_uid = reply.kick_uid;
  rm.kick_reason = std::move(reply.kick_reason);
  std::string body = code != Code::kOk    ? codec::ErrorBody(code, error)
                     : reply.body.empty() ? codec::OkBody()
                                          : std::move(reply.body);
  out->push_back({codec::BusType::kReply, codec::PackMeta(rm), std::move(body)});
}

}  // namespace

void Dispatcher::HandleRequest(std::string_view meta_bytes, std::string_view body_bytes,
                               std::vector<OutMessage>* out) {
  HandleRequests({InRequest{meta_bytes, body_bytes}}, out);
}

void Dispatcher::HandleRequests(const std::vector<InRequest>& requests,
                                std::vector<OutMessage>* out) {
  struct Parsed {
    codec::RequestMeta meta;
    codec::Body body;
    Service* service = nullptr;
    Code code = Code::kOk;  // not kOk: refused before reaching the service
    std::string error;
  };
  std::vector<Parsed> parsed;
  parsed.reserve(requests.size());
  for (const InRequest& in : requests) {
    Parsed p;
    if (!codec::UnpackMeta(in.meta, &p.meta)) {
      spdlog::warn("actor: dropping a REQUEST whose meta is not a RequestMeta");
      continue;
    }
    ++handled_;
    auto it = services_.find(p.meta.service);
    if (it != services_.end()) handled_by_service_[p.meta.service].Inc();
    std::string parse_error;
    if (it == services_.end()) {
      p.code = Code::kUnsupported;
      p.error = "this worker does not serve service " + std::to_string(p.meta.service);
    } else if (LoginMissing(p.meta)) {
      p.code = Code::kUnauthenticated;
      p.error = kLoginRequired;
    } else if (!codec::Body::Parse(in.body, &p.body, &parse_error)) {
      p.code = Code::kBadRequest;
      p.error = parse_error;
    } else {
      p.service = it->second.get();
    }
    parsed.push_back(std::move(p));
  }

  // Checked again before each service call: a batch can take long enough for the
  // requests behind it to expire meanwhile.
  auto expire_passed = [this](Parsed& p) {
    if (p.service == nullptr || p.meta.deadline_ms == 0 || now_ms_() < p.meta.deadline_ms) {
      return;
    }
    ++expired_;
    p.service = nullptr;
    p.code = Code::kUnavailable;
    p.error = "deadline passed before the request was handled; not carried out";
  };
  for (size_t i = 0; i < parsed.size();) {
    Parsed& first = parsed[i];
    expire_passed(first);
    if (first.service == nullptr) {
      Reply none;
      Emit(first.meta, none, first.code, first.error, out);
      ++i;
      continue;
    }
    if (!first.service->Batchable(first.meta.command)) {
      Reply reply;
      Code code = Code::kOk;
      std::string error;
      try {
        const Request req{first.meta, first.body};
        first.service->Handle(req, &reply);
        if (pool_ == nullptr) FinishInline(req, &reply);
      } catch (...) {
        std::tie(code, error) = MapException(std::current_exception(), RequestName(first.meta));
      }
      if (code == Code::kOk && reply.offload.work) {
        StartOffload(std::move(first.meta), std::move(first.body), std::move(reply), out);
      } else {
        Emit(first.meta, reply, code, error, out);
      }
      ++i;
      continue;
    }
    // A run of the same batchable command on the same service (an expired request
    // ends it: it is answered on its own turn).
    size_t end = i + 1;
    while (end < parsed.size()) {
      expire_passed(parsed[end]);
      if (parsed[end].service != first.service || parsed[end].meta.command != first.meta.command) {
        break;
      }
      ++end;
    }
    std::vector<Request> reqs;
    reqs.reserve(end - i);
    for (size_t k = i; k < end; ++k) reqs.push_back(Request{parsed[k].meta, parsed[k].body});
    std::vector<BatchItem> items;
    items.reserve(reqs.size());
    for (const Request& r : reqs) items.push_back(BatchItem{&r, Reply{}, Code::kOk, {}});
    if (auto h = batch_sizes_.find(first.meta.service); h != batch_sizes_.end()) {
      h->second.Observe(static_cast<double>(items.size()));
    }
    try {
      first.service->HandleBatch(items);
    } catch (...) {
      auto [code, error] = MapException(std::current_exception(), RequestName(first.meta));
      for (BatchItem& item : items) {
        item.code = code;
        item.error = error;
      }
    }
    for (size_t k = i; k < end; ++k) {
      BatchItem& item = items[k - i];
      Emit(parsed[k].meta, item.reply, item.code, item.error, out);
    }
    i = end;
  }
}

void Dispatcher::StartOffload(codec::RequestMeta meta, codec::Body body, Reply reply,
                              std::vector<OutMessage>* out) {
  const uint64_t id = ++last_job_id_;
  std::function<void()> work = std::move(reply.offload.work);
  std::function<void(const Request&, Reply*)> then = std::move(reply.offload.then);
  reply.offload = Offload{};
  const bool queued = pool_->TrySubmit([work = std::move(work), id, finished = finished_] {
    std::exception_ptr error;
    try {
      work();
    } catch (...) {
      error = std::current_exception();
    }
    finished->Post({id, error});
  });
  if (!queued) {
    // Refused before anything happened (Handle changes nothing before offloading),
    // so the client may simply try again.
    const int64_t retry_ms = pool_->RetryAfterMs();
    uint64_t suppressed = 0;
    if (busy_log_.Allow(&suppressed)) {
      spdlog::warn(
          "actor: offload queue full ({} waiting): {} answered RATE_LIMITED, retry in {} "
          "ms ({} more refusals not logged)",
          pool_->max_queued(), RequestName(meta), retry_ms, suppressed);
    }
    Reply busy;
    busy.body = codec::RateLimitedBody(
        retry_ms, "server busy: too many password hashes queued; retry after retry_ms");
    Emit(meta, busy, Code::kOk, {}, out);  // kOk: send busy.body as it is
    return;
  }
  offloaded_.emplace(id,
                     Waiting{std::move(meta), std::move(body), std::move(reply), std::move(then)});
}

void Dispatcher::TakeFinished(std::vector<OutMessage>* out) {
  if (!finished_) return;
  done_.clear();
  finished_->TakeAll(&done_);
  for (CompletionQueue::Done& d : done_) {
    auto it = offloaded_.find(d.id);
    if (it == offloaded_.end()) continue;  // cannot happen: every job is registered
    Waiting& w = it->second;
    Code code = Code::kOk;
    std::string error;
    try {
      if (d.error) std::rethrow_exception(d.error);
      if (w.then) w.then(Request{w.meta, w.body}, &w.reply);
    } catch (...) {
      std::tie(code, error) = MapException(std::current_exception(), RequestName(w.meta));
    }
    Emit(w.meta, w.reply, code, error, out);
    offloaded_.erase(it);
  }
}

int64_t Dispatcher::TakeDeferred(std::vector<OutMessage>* out) {
  int64_t next = -1;
  for (auto& [wire, service] : services_) {
    std::vector<Push> pushes;
    int64_t wait = -1;
    try {
      wait = service->TakeDeferred(now_ms_(), &pushes);
    } catch (const std::exception& e) {
      spdlog::warn("actor: deferred pushes of service {} dropped: {}", wire, e.what());
      pushes.clear();
      wait = 1000;  // try again later: the service keeps what it could not send
    }
    for (Push& p : pushes) {
      if (p.body.size() > kMaxBody) continue;
      out->push_back({codec::BusType::kPush, codec::PackMeta(p.meta), std::move(p.body)});
    }
    if (wait >= 0 && (next < 0 || wait < next)) next = wait;
  }
  return next;
}

}  // namespace imbus::actors

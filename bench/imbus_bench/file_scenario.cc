// `file` (issue 19): one logged-in client uploads a file of --file-mb MB through the
// stack (FILE/UPLOAD_START, then UPLOAD_CHUNKs one at a time as docs/protocol.md 6.9
// asks, then UPLOAD_FINISH) and downloads it again with --download-window DOWNLOADs in
// flight, checking size and sha256; reports MB/s of each direction and, with
// --cpu-pid, the server CPU (utime+stime) per MB. With --loop it only uploads, one
// file after another (fresh bytes each time, so nothing is deduplicated), until
// --duration-s has passed: the background load of the "chat beside file traffic" run.
#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bench/imbus_bench/fleet.h"
#include "bench/imbus_bench/scenarios.h"
#include "codec/commands.h"

namespace imbus::bench {
namespace {

constexpr double kMB = 1024.0 * 1024.0;

uint16_t FileService() { return codec::ToWire(codec::Service::kFile); }

void PackBin(codec::MapWriter& w, std::string_view bytes) {
  w.packer().pack_bin(static_cast<uint32_t>(bytes.size()));
  w.packer().pack_bin_body(bytes.data(), static_cast<uint32_t>(bytes.size()));
}

std::string Sha256(std::string_view bytes) {
  std::string out(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(out.data()),
                     reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return out;
}

// Fresh pseudo-random content for round `round` of run `run`.
std::string Content(size_t size, const std::string& run, uint64_t round) {
  std::seed_seq seq(run.begin(), run.end());
  std::mt19937_64 rng(seq);
  rng.discard(round);
  const uint64_t salt = rng() ^ (round * 0x9e3779b97f4a7c15ull);
  std::mt19937_64 gen(salt);
  std::string out(size, '\0');
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    const uint64_t v = gen();
    std::memcpy(out.data() + i, &v, 8);
  }
  for (; i < size; ++i) out[i] = static_cast<char>(gen());
  return out;
}

// CPU of the --cpu-pid processes over one phase.
struct CpuSpan {
  std::vector<int64_t> start, end;
};
std::vector<int64_t> SampleCpu(const BenchOptions& o) {
  std::vector<int64_t> us;
  for (const auto& [name, pid] : o.cpu_pids) us.push_back(CpuUs(pid));
  return us;
}
void ReportCpu(const BenchOptions& o, const CpuSpan& span, double mb, const std::string& phase,
               Report* report) {
  double total = 0;
  bool all = !o.cpu_pids.empty();
  for (size_t i = 0; i < o.cpu_pids.size(); ++i) {
    const std::string key = phase + "_cpu_ms_per_mb_" + o.cpu_pids[i].first;
    if (span.start[i] < 0 || span.end[i] < 0 || mb <= 0) {
      report->SetText(key, "-");
      all = false;
      continue;
    }
    const double ms = static_cast<double>(span.end[i] - span.start[i]) / 1e3 / mb;
    total += ms;
    report->Set(key, ms, "ms/MB");
  }
  if (all) report->Set(phase + "_cpu_ms_per_mb_total", total, "ms/MB");
}

// One upload (or one download) driven by callbacks on the loop; `done` is set when it
// finished or failed (`error` says why).
class Transfer {
 public:
  Transfer(BenchConn* conn, Histogram* rtt) : conn_(conn), rtt_(rtt) {}

  void Upload(const std::string& name, const std::string* content) {
    content_ = content;
    codec::MapWriter w(4);
    w.Key("name")
        .Str(name)
        .Key("size")
        .Uint(content->size())
        .Key("mime")
        .Str("application/octet-stream");
    w.Key("sha256");
    PackBin(w, Sha256(*content));
    conn_->Request(FileService(), codec::file::kUploadStart, w.Finish(),
                   [this](int code, const codec::Body& body) {
                     if (!Ok("UPLOAD_START", code, body)) return;
                     upload_ = body.GetString("upload").value_or("");
                     chunk_ = body.GetUint("chunk").value_or(32768);
                     SendChunk(body.GetUint("offset").value_or(0));
                   });
  }

  void Download(const std::string& file, size_t size, size_t window, size_t length) {
    file_ = file;
    size_ = size;
    length_ = length;
    received_.assign(size, '\0');
    for (size_t k = 0; k < window && next_ < size_; ++k) RequestNext();
    if (size_ == 0) done = true;
  }  // Sends what a RATE_LIMITED answer put off, once its retry_ms has passed; call
  // from the loop's tick.
  void Tick() {
    const int64_t now = NowNs();
    std::vector<std::pair<int64_t, uint64_t>> due;
    for (auto it = retries_.begin(); it != retries_.end();) {
      if (it->first <= now) {
        due.push_back(*it);
        it = retries_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [at, offset] : due) {
      if (done) return;
      if (content_ != nullptr) {
        SendChunk(offset);
      } else {
        RequestAt(offset);
      }
    }
  }

  bool done = false;
  std::string error;
  uint64_t rate_limited = 0;  // RATE_LIMITED answers (each asked again later)
  std::string file_id;        // after an upload
  std::string downloaded;     // after a download
  uint64_t chunks = 0;        // frames of data sent or received

 private:  // RATE_LIMITED (the edge's per-connection frame rate): the same request again
  // after the answer's retry_ms. True when it was that.
  bool PutOff(int code, const codec::Body& body, uint64_t offset) {
    if (code != static_cast<int>(codec::Code::kRateLimited)) return false;
    ++rate_limited;
    int64_t ms = 1;
    try {
      ms = std::max<int64_t>(1, body.GetInt("retry_ms").value_or(1));
    } catch (const codec::BadField&) {
    }
    retries_.emplace_back(NowNs() + ms * 1'000'000, offset);
    return true;
  }

  bool Ok(const char* what, int code, const codec::Body& body) {
    if (code == 0) return true;
    std::string why;
    try {
      why = body.GetString("error").value_or("");
    } catch (const codec::BadField&) {
    }
    error = std::string(what) + ": code " + std::to_string(code) + " " + why;
    done = true;
    return false;
  }

  void SendChunk(uint64_t offset) {
    if (offset >= content_->size()) return Finish();
    const size_t n = std::min<size_t>(chunk_, content_->size() - offset);
    codec::MapWriter w(3);
    w.Key("upload").Str(upload_).Key("offset").Uint(offset).Key("data");
    PackBin(w, std::string_view(*content_).substr(offset, n));
    const int64_t start = NowNs();
    conn_->Request(FileService(), codec::file::kUploadChunk, w.Finish(),
                   [this, start, offset](int code, const codec::Body& body) {
                     rtt_->Record(NowNs() - start);
                     if (PutOff(code, body, offset)) return;
                     if (!Ok("UPLOAD_CHUNK", code, body)) return;
                     ++chunks;
                     SendChunk(body.GetUint("offset").value_or(0));
                   });
  }

  void Finish() {
    codec::MapWriter w(1);
    w.Key("upload").Str(upload_);
    conn_->Request(FileService(), codec::file::kUploadFinish, w.Finish(),
                   [this](int code, const codec::Body& body) {
                     if (!Ok("UPLOAD_FINISH", code, body)) return;
                     file_id = body.GetString("file").value_or("");
                     done = true;
                   });
  }
  void RequestNext() {
    const uint64_t offset = next_;
    next_ += std::min<size_t>(length_, size_ - next_);
    RequestAt(offset);
  }

  void RequestAt(uint64_t offset) {
    ++in_flight_;
    codec::MapWriter w(3);
    w.Key("file").Str(file_).Key("offset").Uint(offset).Key("length").Uint(length_);
    const int64_t start = NowNs();
    conn_->Request(FileService(), codec::file::kDownload, w.Finish(),
                   [this, offset, start](int code, const codec::Body& body) {
                     rtt_->Record(NowNs() - start);
                     --in_flight_;
                     if (done) return;
                     if (PutOff(code, body, offset)) return;
                     if (!Ok("DOWNLOAD", code, body)) return;
                     const std::string data = body.GetString("data").value_or("");
                     if (offset + data.size() > size_ ||
                         (data.size() != std::min<size_t>(length_, size_ - offset))) {
                       error = "DOWNLOAD: " + std::to_string(data.size()) + " bytes at " +
                               std::to_string(offset);
                       done = true;
                       return;
                     }
                     std::memcpy(received_.data() + offset, data.data(), data.size());
                     got_ += data.size();
                     ++chunks;
                     if (next_ < size_) RequestNext();
                     if (got_ == size_ && in_flight_ == 0) {
                       downloaded = std::move(received_);
                       done = true;
                     }
                   });
  }

  BenchConn* conn_;
  Histogram* rtt_;
  const std::string* content_ = nullptr;
  std::string upload_;
  uint64_t chunk_ = 32768;
  std::string file_;
  size_t size_ = 0, length_ = 32768, next_ = 0, got_ = 0, in_flight_ = 0;
  std::string received_;
  std::vector<std::pair<int64_t, uint64_t>> retries_;  // (due ns, offset)
};

}  // namespace

int RunFile(const BenchOptions& o, Report* report) {
  if (sodium_init() < 0) {
    report->SetText("error", "libsodium failed to start");
    return 2;
  }
  const size_t size = static_cast<size_t>(o.file_mb * kMB);
  EventLoop loop;
  Fleet fleet(&loop, FleetOptionsFor(o, 1, "f"));
  if (!fleet.Establish(o.setup_timeout_s)) {
    report->SetText("error", "setup failed: " + fleet.stats().last_error);
    return 1;
  }
  BenchConn& conn = fleet.conn(0);
  report->Set("file_mb", o.file_mb, "MB");
  Histogram upload_rtt, download_rtt;
  const int64_t give_up = NowNs() + static_cast<int64_t>(o.setup_timeout_s) * 1'000'000'000;
  // Runs one transfer to its end; false (with the report's error) when it failed.
  auto run = [&](Transfer& t, const char* phase) {
    Progress progress(phase);
    loop.RunUntil([&] { return t.done || conn.state() != BenchConn::State::kOpen; }, give_up,
                  [&] {
                    fleet.Tick();
                    t.Tick();
                    progress.Maybe([&] {
                      return std::to_string(t.chunks) + " chunks (" +
                             std::to_string(static_cast<double>(t.chunks) * 32768 / kMB) + " MB)";
                    });
                  });
    if (t.done && t.error.empty()) return true;
    report->SetText("error", t.error.empty() ? std::string(phase) + " did not finish" : t.error);
    return false;
  };

  if (o.loop) {
    // Uploads only, back to back, until the duration is over (the last one finishes).
    const int64_t end = NowNs() + static_cast<int64_t>(o.duration_s * 1e9);
    const int64_t start = NowNs();
    CpuSpan cpu;
    cpu.start = SampleCpu(o);
    uint64_t files = 0;
    double mb = 0;
    while (NowNs() < end) {
      const std::string content = Content(size, o.run, files);
      Transfer up(&conn, &upload_rtt);
      up.Upload("bench-" + o.run + "-" + std::to_string(files) + ".bin", &content);
      if (!run(up, "upload")) return 1;
      ++files;
      mb += static_cast<double>(size) / kMB;
    }
    cpu.end = SampleCpu(o);
    const double s = Seconds(NowNs() - start);
    report->Set("files_uploaded", files);
    report->Set("duration_s", s, "s");
    report->Set("upload_mb_s", mb / s, "MB/s");
    ReportCpu(o, cpu, mb, "upload", report);
    report->AddLatency("upload_chunk", upload_rtt);
    return 0;
  }

  const std::string content = Content(size, o.run, 0);
  const std::string sha = Sha256(content);
  Transfer up(&conn, &upload_rtt);
  CpuSpan up_cpu;
  up_cpu.start = SampleCpu(o);
  int64_t start = NowNs();
  up.Upload("bench-" + o.run + ".bin", &content);
  if (!run(up, "upload")) return 1;
  const double up_s = Seconds(NowNs() - start);
  up_cpu.end = SampleCpu(o);

  Transfer down(&conn, &download_rtt);
  CpuSpan down_cpu;
  down_cpu.start = SampleCpu(o);
  start = NowNs();
  down.Download(up.file_id, size, std::max<size_t>(o.download_window, 1), o.chunk_bytes);
  if (!run(down, "download")) return 1;
  const double down_s = Seconds(NowNs() - start);
  down_cpu.end = SampleCpu(o);
  const bool intact = Sha256(down.downloaded) == sha;

  const double mb = static_cast<double>(size) / kMB;
  report->Set("upload_s", up_s, "s");
  report->Set("upload_mb_s", mb / up_s, "MB/s");
  report->Set("upload_chunks", up.chunks);
  report->Set("upload_rate_limited", up.rate_limited);
  ReportCpu(o, up_cpu, mb, "upload", report);
  report->Set("download_window", static_cast<uint64_t>(o.download_window));
  report->Set("download_s", down_s, "s");
  report->Set("download_mb_s", mb / down_s, "MB/s");
  report->Set("download_chunks", down.chunks);
  report->Set("download_rate_limited", down.rate_limited);
  ReportCpu(o, down_cpu, mb, "download", report);
  report->SetText("sha256_match", intact ? "yes" : "NO");
  report->AddLatency("upload_chunk", upload_rtt);
  report->AddLatency("download_chunk", download_rtt);
  return intact ? 0 : 1;
}

}  // namespace imbus::bench

#include "actors/db/db.h"

#include <errmsg.h>
#include <mysqld_error.h>

#include <charconv>
#include <cstring>
#include <map>
#include <mutex>

#include <spdlog/spdlog.h>

namespace imbus::actors {
namespace {

// mysql_library_init is not thread-safe; every Db calls this before mysql_init.
void InitLibraryOnce() {
  static std::once_flag once;
  std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
}

constexpr unsigned kConnectTimeoutS = 3;

// A failed mysql_stmt_* step, turned into DbError/DbUnavailable after cleanup.
struct StmtFailure {
  unsigned code;
  std::string what;
};

// Endpoints found unreachable or unhealthy, shared by every Db of the process: when
// the writer node dies, the first worker to notice spares the others a connection
// attempt each (up to kConnectTimeoutS on a host that drops packets). A listed
// endpoint is tried after the others, and again once kDownFor has passed.
class DownList {
 public:
  static DownList& Get() {
    static DownList list;
    return list;
  }
  void Mark(const std::string& endpoint, std::chrono::seconds for_how_long = kDownFor) {
    std::lock_guard<std::mutex> lock(mu_);
    until_[endpoint] = std::chrono::steady_clock::now() + for_how_long;
  }
  // True for one caller per endpoint per `period`: the one Db of the process that
  // probes whether an earlier node is back (each probe of a hung node costs its
  // worker up to kConnectTimeoutS).
  bool ClaimProbe(const std::string& endpoint, std::chrono::seconds period) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    auto [it, inserted] = probed_.try_emplace(endpoint, now);
    if (!inserted && now < it->second + period) return false;
    it->second = now;
    return true;
  }
  void Clear(const std::string& endpoint) {
    std::lock_guard<std::mutex> lock(mu_);
    until_.erase(endpoint);
  }
  bool IsDown(const std::string& endpoint) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = until_.find(endpoint);
    return it != until_.end() && std::chrono::steady_clock::now() < it->second;
  }

 private:
  static constexpr std::chrono::seconds kDownFor{3};
  std::mutex mu_;
  std::map<std::string, std::chrono::steady_clock::time_point> until_, probed_;
};

// A SHOW statement's (name, value) rows; false with *error set if it failed. SHOW is
// one of the few statements a Galera node outside the primary component still answers.
bool Show(MYSQL* m, const char* sql, std::map<std::string, std::string>* out, std::string* error) {
  if (mysql_real_query(m, sql, std::strlen(sql)) != 0) {
    *error = std::string("health check: ") + mysql_error(m);
    return false;
  }
  ResultHandle r(mysql_store_result(m));
  if (!r) {
    *error = std::string("health check: ") + mysql_error(m);
    return false;
  }
  while (MYSQL_ROW row = mysql_fetch_row(r.get())) {
    if (row[0] != nullptr && row[1] != nullptr) (*out)[row[0]] = row[1];
  }
  return true;
}

// Empty if the node may take reads and writes, else why not. A server without
// wsrep_on (not a Galera node; its wsrep status reads "Disconnected") is healthy.
std::string Unhealthy(MYSQL* m) {
  std::map<std::string, std::string> vars, status;
  std::string error;
  if (!Show(m, "SHOW GLOBAL VARIABLES LIKE 'wsrep_on'", &vars, &error)) return error;
  if (vars["wsrep_on"] != "ON") return "";
  if (!Show(m,
            "SHOW GLOBAL STATUS WHERE Variable_name IN "
            "('wsrep_ready', 'wsrep_local_state', 'wsrep_cluster_status')",
            &status, &error)) {
    return error;
  }
  const std::string ready = status["wsrep_ready"], state = status["wsrep_local_state"],
                    cluster = status["wsrep_cluster_status"];
  if (ready == "ON" && state == "4" && cluster == "Primary") return "";
  return "not a healthy Galera node (wsrep_ready " + ready + ", wsrep_local_state " + state +
         ", wsrep_cluster_status " + cluster + ")";
}

// Binds a statement's parameters; lives while the statement executes.
class ParamBinds {
 public:
  explicit ParamBinds(const std::vector<DbParam>& params)
      : binds_(params.size()), lengths_(params.size()) {
    for (size_t i = 0; i < params.size(); ++i) Bind(params[i], &binds_[i], &lengths_[i]);
  }
  MYSQL_BIND* data() { return binds_.data(); }
  bool empty() const { return binds_.empty(); }

 private:
  static void Bind(const DbParam& p, MYSQL_BIND* b, unsigned long* length) {
    static char empty[1] = {0};
    std::memset(b, 0, sizeof(*b));
    if (std::holds_alternative<std::nullptr_t>(p)) {
      b->buffer_type = MYSQL_TYPE_NULL;
    } else if (const auto* s = std::get_if<int64_t>(&p)) {
      b->buffer_type = MYSQL_TYPE_LONGLONG;
      b->buffer = const_cast<int64_t*>(s);
    } else if (const auto* u = std::get_if<uint64_t>(&p)) {
      b->buffer_type = MYSQL_TYPE_LONGLONG;
      b->buffer = const_cast<uint64_t*>(u);
      b->is_unsigned = 1;
    } else {
      const auto& sv = std::get<std::string_view>(p);
      b->buffer_type = MYSQL_TYPE_STRING;
      b->buffer = sv.empty() ? empty : const_cast<char*>(sv.data());
      b->buffer_length = *length = static_cast<unsigned long>(sv.size());
      b->length = length;
    }
  }

  std::vector<MYSQL_BIND> binds_;
  std::vector<unsigned long> lengths_;
};

// The output buffers of a result set: integers as integers, the rest as bytes (256
// per column, a longer value fetched again whole).
class ResultColumns {
 public:
  explicit ResultColumns(MYSQL_RES* meta) : n_(mysql_num_fields(meta)), cols_(n_), binds_(n_) {
    const MYSQL_FIELD* fields = mysql_fetch_fields(meta);
    for (unsigned i = 0; i < n_; ++i) Bind(fields[i], &cols_[i], &binds_[i]);
  }
  MYSQL_BIND* data() { return binds_.data(); }

  // The row just fetched into the buffers; `fail` throws a StmtFailure.
  template <class Fail>
  DbRow Read(MYSQL_STMT* st, Fail&& fail) {
    std::vector<DbValue> values(n_);
    for (unsigned i = 0; i < n_; ++i) {
      const Col& c = cols_[i];
      DbValue& v = values[i];
      v.is_null = c.is_null != 0;
      if (v.is_null) continue;
      v.is_int = c.is_int;
      if (c.is_int) {
        v.bits = c.bits;
      } else if (c.length <= c.buf.size()) {
        v.str.assign(c.buf.data(), c.length);
      } else if (!FetchWhole(st, i, c.length, &v.str)) {  // MYSQL_DATA_TRUNCATED
        fail("fetch_column");
      }
    }
    return DbRow(std::move(values));
  }

 private:
  struct Col {
    uint64_t bits = 0;
    std::vector<char> buf;
    unsigned long length = 0;
    my_bool is_null = 0;
    my_bool error = 0;
    bool is_int = false;
  };

  static void Bind(const MYSQL_FIELD& field, Col* c, MYSQL_BIND* b) {
    std::memset(b, 0, sizeof(*b));
    switch (field.type) {
      case MYSQL_TYPE_TINY:
      case MYSQL_TYPE_SHORT:
      case MYSQL_TYPE_LONG:
      case MYSQL_TYPE_INT24:
      case MYSQL_TYPE_LONGLONG:
      case MYSQL_TYPE_YEAR:
        c->is_int = true;
        b->buffer_type = MYSQL_TYPE_LONGLONG;
        b->buffer = &c->bits;
        b->is_unsigned = (field.flags & UNSIGNED_FLAG) != 0;
        break;
      default:
        c->buf.resize(256);
        b->buffer_type = MYSQL_TYPE_STRING;
        b->buffer = c->buf.data();
        b->buffer_length = static_cast<unsigned long>(c->buf.size());
    }
    b->length = &c->length;
    b->is_null = &c->is_null;
    b->error = &c->error;
  }

  static bool FetchWhole(MYSQL_STMT* st, unsigned column, unsigned long length, std::string* out) {
    out->resize(length);
    MYSQL_BIND b;
    std::memset(&b, 0, sizeof(b));
    unsigned long len = 0;
    b.buffer_type = MYSQL_TYPE_STRING;
    b.buffer = out->data();
    b.buffer_length = length;
    b.length = &len;
    return mysql_stmt_fetch_column(st, &b, column, 0) == 0;
  }

  unsigned n_;
  std::vector<Col> cols_;
  std::vector<MYSQL_BIND> binds_;
};

}  // namespace

bool IsServerUnavailable(unsigned code) {
  return IsConnectionLost(code) || code == ER_UNKNOWN_COM_ERROR;
}

bool IsConnectionLost(unsigned code) {
  switch (code) {
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_SERVER_LOST_EXTENDED:
    case ER_CON_COUNT_ERROR:
    case ER_SERVER_SHUTDOWN:
    case ER_CONNECTION_KILLED:
      return true;
    default:
      return false;
  }
}

std::string QuoteDatabaseName(const std::string& name) {
  if (name.empty() || name.size() > 64) {
    throw std::invalid_argument("database name must be 1-64 characters");
  }
  for (char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) throw std::invalid_argument("database name '" + name + "' must be [A-Za-z0-9_]");
  }
  return "`" + name + "`";
}

std::optional<uint64_t> DbRow::Uint(size_t i) const {
  const DbValue& v = values_.at(i);
  if (v.is_null) return std::nullopt;
  if (v.is_int) return v.bits;
  uint64_t out = 0;
  auto [p, ec] = std::from_chars(v.str.data(), v.str.data() + v.str.size(), out);
  if (ec != std::errc()) throw DbError(0, "column " + std::to_string(i) + " is not an integer");
  return out;
}

std::optional<int64_t> DbRow::Int(size_t i) const {
  const DbValue& v = values_.at(i);
  if (v.is_null) return std::nullopt;
  if (v.is_int) return static_cast<int64_t>(v.bits);
  int64_t out = 0;
  auto [p, ec] = std::from_chars(v.str.data(), v.str.data() + v.str.size(), out);
  if (ec != std::errc()) throw DbError(0, "column " + std::to_string(i) + " is not an integer");
  return out;
}

std::optional<std::string> DbRow::Str(size_t i) const {
  const DbValue& v = values_.at(i);
  if (v.is_null) return std::nullopt;
  if (v.is_int) return std::to_string(v.bits);
  return v.str;
}

Db::Db(DbConfig config)
    : config_(std::move(config)),
      endpoints_(config_.Endpoints()),
      query_seconds_(metrics::GetHistogram(
          "imbus_actor_db_query_duration_seconds",
          "MariaDB statements (queries, START TRANSACTION, COMMIT), reconnects included.", {},
          metrics::LatencyBuckets())),
      deadlocks_(metrics::GetCounter("imbus_actor_db_deadlocks_total",
                                     "Statements that failed with ER_LOCK_DEADLOCK (on Galera "
                                     "also certification conflicts).")),
      lock_wait_timeouts_(
          metrics::GetCounter("imbus_actor_db_lock_wait_timeouts_total",
                              "Statements that failed with ER_LOCK_WAIT_TIMEOUT.")) {}
Db::~Db() { Disconnect(); }
Db::Db(Db&&) noexcept = default;
Db& Db::operator=(Db&&) noexcept = default;

std::string Db::endpoint() const { return endpoints_.at(current_).ToString(); }

void Db::Disconnect() {
  statements_.clear();  // statements first: closing one needs its connection
  mysql_.reset();
}

void Db::Fail(unsigned code, const std::string& what) {
  if (code == ER_LOCK_DEADLOCK) deadlocks_.Inc();
  if (code == ER_LOCK_WAIT_TIMEOUT) lock_wait_timeouts_.Inc();
  if (IsServerUnavailable(code)) throw DbUnavailable(code, what);
  throw DbError(code, what);
}

MysqlHandle Db::Open(size_t i, bool select_database) const {
  const DbEndpoint& ep = endpoints_.at(i);
  MysqlHandle m(mysql_init(nullptr));
  if (!m) throw DbError(CR_OUT_OF_MEMORY, "mysql_init failed");
  mysql_options(m.get(), MYSQL_OPT_CONNECT_TIMEOUT, &kConnectTimeoutS);
  mysql_options(m.get(), MYSQL_OPT_READ_TIMEOUT, &config_.timeout_s);
  mysql_options(m.get(), MYSQL_OPT_WRITE_TIMEOUT, &config_.timeout_s);
  mysql_options(m.get(), MYSQL_SET_CHARSET_NAME, "utf8mb4");
  const bool use_socket = !ep.socket.empty();
  // The health check runs before the database is selected: a node outside the
  // primary component refuses even that.
  if (mysql_real_connect(m.get(), use_socket ? nullptr : ep.host.c_str(), config_.user.c_str(),
                         config_.password.c_str(), nullptr, use_socket ? 0 : ep.port,
                         use_socket ? ep.socket.c_str() : nullptr, 0) == nullptr) {
    const unsigned code = mysql_errno(m.get());
    const std::string what = std::string("connect: ") + mysql_error(m.get());
    // Refused, timed out, too many connections: the server is (for now) unreachable.
    if (IsServerUnavailable(code) || code == CR_UNKNOWN_HOST) throw DbUnavailable(code, what);
    throw DbError(code, what);
  }
  if (std::string why = Unhealthy(m.get()); !why.empty()) {
    throw DbUnavailable(ER_UNKNOWN_COM_ERROR, ep.ToString() + ": " + why);
  }
  if (select_database && mysql_select_db(m.get(), config_.database.c_str()) != 0) {
    const unsigned code = mysql_errno(m.get());
    const std::string what = std::string("connect: ") + mysql_error(m.get());
    if (IsServerUnavailable(code)) throw DbUnavailable(code, what);
    throw DbError(code, what);
  }
  return m;
}

void Db::Connect(bool select_database) {
  select_database_ = select_database;
  if (mysql_) return;
  InitLibraryOnce();
  // In order of preference; endpoints another Db found down lately go last.
  std::vector<size_t> order;
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < endpoints_.size(); ++i) {
      if (DownList::Get().IsDown(endpoints_[i].ToString()) == (pass == 1)) order.push_back(i);
    }
  }
  std::string errors;
  unsigned last_code = 0;
  for (size_t i : order) {
    const std::string name = endpoints_[i].ToString();
    try {
      MysqlHandle m = Open(i, select_database);
      DownList::Get().Clear(name);
      if (i != current_) {
        spdlog::warn("db: connected to {} (was {})", name, endpoints_[current_].ToString());
      }
      mysql_ = std::move(m);
      current_ = i;
      next_fail_back_ = std::chrono::steady_clock::now() + kFailBackPeriod;
      return;
    } catch (const DbUnavailable& e) {
      if (endpoints_.size() == 1) throw;
      DownList::Get().Mark(name);
      errors += (errors.empty() ? "" : "; ") + name + ": " + e.what();
      last_code = e.code();
    }
  }
  throw DbUnavailable(last_code, "no healthy database node (" + errors + ")");
}

void Db::MaybeFailBack() {
  if (!mysql_ || in_transaction_ || current_ == 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_fail_back_) return;
  next_fail_back_ = now + kFailBackPeriod;
  for (size_t i = 0; i < current_; ++i) {
    const std::string name = endpoints_[i].ToString();
    if (DownList::Get().IsDown(name) || !DownList::Get().ClaimProbe(name, kFailBackPeriod)) {
      continue;
    }
    try {
      MysqlHandle m = Open(i, select_database_);
      spdlog::info("db: {} is healthy again; moving back to it from {}", name,
                   endpoints_[current_].ToString());
      Disconnect();
      mysql_ = std::move(m);
      current_ = i;
      return;
    } catch (const DbUnavailable&) {
      DownList::Get().Mark(name);
    } catch (const DbError&) {
      // Not usable now (e.g. its database not created yet); stay where we are.
    }
  }
}

template <class F>
auto Db::WithReconnect(F&& f) -> decltype(f()) {
  for (int attempt = 0;; ++attempt) {
    try {
      MaybeFailBack();
      Connect(select_database_);
      return f();
    } catch (const DbUnavailable& e) {
      const bool was_connected = connected();
      Disconnect();
      if (was_connected) DownList::Get().Mark(endpoint());
      if (in_transaction_) {
        in_transaction_ = false;  // the server rolls it back with the connection
        throw;
      }
      if (attempt >= 1) throw;
      if (was_connected)
        spdlog::warn("db: connection to {} lost ({}); reconnecting", endpoint(), e.what());
    }
  }
}

MYSQL_STMT* Db::Prepare(std::string_view sql) {
  auto it = statements_.find(std::string(sql));
  if (it != statements_.end()) return it->second.get();
  StmtHandle stmt(mysql_stmt_init(mysql_.get()));
  if (!stmt)
    Fail(mysql_errno(mysql_.get()), std::string("stmt_init: ") + mysql_error(mysql_.get()));
  if (mysql_stmt_prepare(stmt.get(), sql.data(), static_cast<unsigned long>(sql.size())) != 0) {
    Fail(mysql_stmt_errno(stmt.get()), std::string("prepare: ") + mysql_stmt_error(stmt.get()));
  }
  MYSQL_STMT* raw = stmt.get();
  statements_.emplace(std::string(sql), std::move(stmt));
  return raw;
}

DbResult Db::Query(std::string_view sql, std::initializer_list<DbParam> params) {
  const metrics::ScopedTimer timer(query_seconds_);
  const std::vector<DbParam> copy(params);  // stable addresses for the binds
  return WithReconnect([&] { return QueryOnce(sql, copy); });
}

DbResult Db::Query(std::string_view sql, const std::vector<DbParam>& params) {
  const metrics::ScopedTimer timer(query_seconds_);
  return WithReconnect([&] { return QueryOnce(sql, params); });
}

void Db::Begin(bool read_only, Isolation isolation) {
  if (in_transaction_) throw DbError(0, "Begin: a transaction is already open");
  // May reconnect: nothing of the transaction ran yet.
  WithReconnect([&] {
    if (isolation == Isolation::kReadCommitted) {
      ExecOnce("SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
    }
    ExecOnce(read_only ? "START TRANSACTION READ ONLY" : "START TRANSACTION");
  });
  in_transaction_ = true;
}

void Db::Commit() {
  Exec("COMMIT");
  in_transaction_ = false;
}

void Db::Rollback() {
  if (!in_transaction_) return;
  in_transaction_ = false;
  if (!mysql_) return;
  if (mysql_real_query(mysql_.get(), "ROLLBACK", 8) != 0) Disconnect();  // gone: rolled back
}

DbResult Db::QueryOnce(std::string_view sql, const std::vector<DbParam>& params) {
  MYSQL_STMT* st = Prepare(sql);
  auto fail = [this, st](const char* step) {
    // An error that ends a result set midway (an INSERT ... RETURNING that meets a
    // deadlock after sending rows) may be kept on the connection, not the statement.
    if (mysql_stmt_errno(st) == 0 && mysql_errno(mysql_.get()) != 0) {
      throw StmtFailure{mysql_errno(mysql_.get()),
                        std::string(step) + ": " + mysql_error(mysql_.get())};
    }
    throw StmtFailure{mysql_stmt_errno(st), std::string(step) + ": " + mysql_stmt_error(st)};
  };
  try {
    if (mysql_stmt_param_count(st) != params.size()) {
      throw DbError(0, "statement expects " + std::to_string(mysql_stmt_param_count(st)) +
                           " parameters, got " + std::to_string(params.size()));
    }
    ParamBinds binds(params);
    if (!binds.empty() && mysql_stmt_bind_param(st, binds.data()) != 0) fail("bind");
    if (mysql_stmt_execute(st) != 0) fail("execute");

    DbResult result;
    ResultHandle meta(mysql_stmt_result_metadata(st));
    if (!meta) {  // no result set: INSERT, UPDATE, ...
      result.affected_rows = mysql_stmt_affected_rows(st);
      result.insert_id = mysql_stmt_insert_id(st);
      return result;
    }
    ResultColumns columns(meta.get());
    if (mysql_stmt_bind_result(st, columns.data()) != 0) fail("bind_result");
    for (;;) {
      const int rc = mysql_stmt_fetch(st);
      if (rc == MYSQL_NO_DATA) break;
      if (rc == 1) fail("fetch");
      result.rows.push_back(columns.Read(st, fail));
    }
    mysql_stmt_free_result(st);
    return result;
  } catch (const StmtFailure& e) {
    mysql_stmt_free_result(st);
    mysql_stmt_reset(st);
    Fail(e.code, e.what);
  }
}

void Db::ExecOnce(std::string_view sql) {
  MYSQL* m = mysql_.get();
  if (mysql_real_query(m, sql.data(), static_cast<unsigned long>(sql.size())) != 0) {
    Fail(mysql_errno(m), std::string("query: ") + mysql_error(m));
  }
  do {
    ResultHandle r(mysql_store_result(m));
  } while (mysql_next_result(m) == 0);
}

void Db::Exec(std::string_view sql) {
  const metrics::ScopedTimer timer(query_seconds_);
  WithReconnect([&] { ExecOnce(sql); });
}

}  // namespace imbus::actors

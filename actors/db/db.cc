#include "actors/db/db.h"

#include <errmsg.h>
#include <mysqld_error.h>

#include <charconv>
#include <cstring>
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
constexpr unsigned kReadWriteTimeoutS = 30;

// A failed mysql_stmt_* step, turned into DbError/DbUnavailable after cleanup.
struct StmtFailure {
  unsigned code;
  std::string what;
};

}  // namespace

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

Db::Db(DbConfig config) : config_(std::move(config)) {}
Db::~Db() { Disconnect(); }
Db::Db(Db&&) noexcept = default;
Db& Db::operator=(Db&&) noexcept = default;

void Db::Disconnect() {
  statements_.clear();  // statements first: closing one needs its connection
  mysql_.reset();
}

void Db::Fail(unsigned code, const std::string& what) {
  if (IsConnectionLost(code)) throw DbUnavailable(code, what);
  throw DbError(code, what);
}

void Db::Connect(bool select_database) {
  select_database_ = select_database;
  if (mysql_) return;
  InitLibraryOnce();
  MysqlHandle m(mysql_init(nullptr));
  if (!m) throw DbError(CR_OUT_OF_MEMORY, "mysql_init failed");
  mysql_options(m.get(), MYSQL_OPT_CONNECT_TIMEOUT, &kConnectTimeoutS);
  mysql_options(m.get(), MYSQL_OPT_READ_TIMEOUT, &kReadWriteTimeoutS);
  mysql_options(m.get(), MYSQL_OPT_WRITE_TIMEOUT, &kReadWriteTimeoutS);
  mysql_options(m.get(), MYSQL_SET_CHARSET_NAME, "utf8mb4");
  const bool use_socket = !config_.socket.empty();
  if (mysql_real_connect(m.get(), use_socket ? nullptr : config_.host.c_str(), config_.user.c_str(),
                         config_.password.c_str(),
                         select_database ? config_.database.c_str() : nullptr,
                         use_socket ? 0 : config_.port,
                         use_socket ? config_.socket.c_str() : nullptr, 0) == nullptr) {
    const unsigned code = mysql_errno(m.get());
    const std::string what = std::string("connect: ") + mysql_error(m.get());
    // Refused, timed out, too many connections: the server is (for now) unreachable.
    if (IsConnectionLost(code) || code == CR_UNKNOWN_HOST) throw DbUnavailable(code, what);
    throw DbError(code, what);
  }
  mysql_ = std::move(m);
}

template <class F>
auto Db::WithReconnect(F&& f) -> decltype(f()) {
  for (int attempt = 0;; ++attempt) {
    try {
      Connect(select_database_);
      return f();
    } catch (const DbUnavailable& e) {
      const bool was_connected = connected();
      Disconnect();
      if (in_transaction_) {
        in_transaction_ = false;  // the server rolls it back with the connection
        throw;
      }
      if (attempt >= 1) throw;
      if (was_connected) spdlog::warn("db: connection lost ({}); reconnecting", e.what());
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
  const std::vector<DbParam> copy(params);  // stable addresses for the binds
  return WithReconnect([&] { return QueryOnce(sql, copy); });
}

DbResult Db::Query(std::string_view sql, const std::vector<DbParam>& params) {
  return WithReconnect([&] { return QueryOnce(sql, params); });
}

void Db::Begin() {
  if (in_transaction_) throw DbError(0, "Begin: a transaction is already open");
  Exec("START TRANSACTION");  // may reconnect: nothing of the transaction ran yet
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
  auto fail = [st](const char* step) {
    throw StmtFailure{mysql_stmt_errno(st), std::string(step) + ": " + mysql_stmt_error(st)};
  };
  try {
    if (mysql_stmt_param_count(st) != params.size()) {
      throw DbError(0, "statement expects " + std::to_string(mysql_stmt_param_count(st)) +
                           " parameters, got " + std::to_string(params.size()));
    }
    std::vector<MYSQL_BIND> binds(params.size());
    std::vector<unsigned long> lengths(params.size());
    static char empty[1] = {0};
    for (size_t i = 0; i < params.size(); ++i) {
      MYSQL_BIND& b = binds[i];
      std::memset(&b, 0, sizeof(b));
      const DbParam& p = params[i];
      if (std::holds_alternative<std::nullptr_t>(p)) {
        b.buffer_type = MYSQL_TYPE_NULL;
      } else if (const auto* s = std::get_if<int64_t>(&p)) {
        b.buffer_type = MYSQL_TYPE_LONGLONG;
        b.buffer = const_cast<int64_t*>(s);
      } else if (const auto* u = std::get_if<uint64_t>(&p)) {
        b.buffer_type = MYSQL_TYPE_LONGLONG;
        b.buffer = const_cast<uint64_t*>(u);
        b.is_unsigned = 1;
      } else {
        const auto& sv = std::get<std::string_view>(p);
        b.buffer_type = MYSQL_TYPE_STRING;
        b.buffer = sv.empty() ? empty : const_cast<char*>(sv.data());
        b.buffer_length = lengths[i] = static_cast<unsigned long>(sv.size());
        b.length = &lengths[i];
      }
    }
    if (!binds.empty() && mysql_stmt_bind_param(st, binds.data()) != 0) fail("bind");
    if (mysql_stmt_execute(st) != 0) fail("execute");

    DbResult result;
    ResultHandle meta(mysql_stmt_result_metadata(st));
    if (!meta) {
      result.affected_rows = mysql_stmt_affected_rows(st);
      result.insert_id = mysql_stmt_insert_id(st);
      return result;
    }
    const unsigned n = mysql_num_fields(meta.get());
    const MYSQL_FIELD* fields = mysql_fetch_fields(meta.get());
    struct Col {
      uint64_t bits = 0;
      std::vector<char> buf;
      unsigned long length = 0;
      my_bool is_null = 0;
      my_bool error = 0;
      bool is_int = false;
    };
    std::vector<Col> cols(n);
    std::vector<MYSQL_BIND> out(n);
    for (unsigned i = 0; i < n; ++i) {
      MYSQL_BIND& b = out[i];
      std::memset(&b, 0, sizeof(b));
      Col& c = cols[i];
      switch (fields[i].type) {
        case MYSQL_TYPE_TINY:
        case MYSQL_TYPE_SHORT:
        case MYSQL_TYPE_LONG:
        case MYSQL_TYPE_INT24:
        case MYSQL_TYPE_LONGLONG:
        case MYSQL_TYPE_YEAR:
          c.is_int = true;
          b.buffer_type = MYSQL_TYPE_LONGLONG;
          b.buffer = &c.bits;
          b.is_unsigned = (fields[i].flags & UNSIGNED_FLAG) != 0;
          break;
        default:
          c.buf.resize(256);
          b.buffer_type = MYSQL_TYPE_STRING;
          b.buffer = c.buf.data();
          b.buffer_length = static_cast<unsigned long>(c.buf.size());
      }
      b.length = &c.length;
      b.is_null = &c.is_null;
      b.error = &c.error;
    }
    if (mysql_stmt_bind_result(st, out.data()) != 0) fail("bind_result");
    for (;;) {
      const int rc = mysql_stmt_fetch(st);
      if (rc == MYSQL_NO_DATA) break;
      if (rc == 1) fail("fetch");
      std::vector<DbValue> values(n);
      for (unsigned i = 0; i < n; ++i) {
        Col& c = cols[i];
        DbValue& v = values[i];
        v.is_null = c.is_null != 0;
        if (v.is_null) continue;
        v.is_int = c.is_int;
        if (c.is_int) {
          v.bits = c.bits;
        } else if (c.length <= c.buf.size()) {
          v.str.assign(c.buf.data(), c.length);
        } else {  // MYSQL_DATA_TRUNCATED: fetch the whole column
          v.str.resize(c.length);
          MYSQL_BIND b;
          std::memset(&b, 0, sizeof(b));
          unsigned long len = 0;
          b.buffer_type = MYSQL_TYPE_STRING;
          b.buffer = v.str.data();
          b.buffer_length = c.length;
          b.length = &len;
          if (mysql_stmt_fetch_column(st, &b, i, 0) != 0) fail("fetch_column");
        }
      }
      result.rows.emplace_back(std::move(values));
    }
    mysql_stmt_free_result(st);
    return result;
  } catch (const StmtFailure& e) {
    mysql_stmt_free_result(st);
    mysql_stmt_reset(st);
    Fail(e.code, e.what);
  }
}

void Db::Exec(std::string_view sql) {
  WithReconnect([&] {
    MYSQL* m = mysql_.get();
    if (mysql_real_query(m, sql.data(), static_cast<unsigned long>(sql.size())) != 0) {
      Fail(mysql_errno(m), std::string("query: ") + mysql_error(m));
    }
    do {
      ResultHandle r(mysql_store_result(m));
    } while (mysql_next_result(m) == 0);
  });
}

}  // namespace imbus::actors

// Public. Db: one MariaDB connection with cached prepared statements, reconnect on a
// lost connection, and typed parameters/rows. Prepared statements only for data.
//
// With several endpoints (the nodes of a Galera cluster, DbConfig::hosts) a Db
// connects to the first one, in the configured order, that answers and is healthy:
// wsrep_ready ON, wsrep_local_state 4 (Synced), wsrep_cluster_status Primary. A
// server without wsrep counts as healthy. Every Db of every actor follows the same
// order, so all write through one node (no certification conflicts between actors
// in the normal case). When that node dies, or answers "WSREP has not yet prepared
// node for application use" (it left the primary component), the statement fails
// as DbUnavailable if a transaction was open (the host answers UNAVAILABLE and the
// client retries with its idempotency key), else it is retried once on the next
// healthy node. While on a later node, a Db looks every kFailBackPeriod (between
// transactions) whether an earlier one is healthy again, and moves back to it.
//
// Not thread-safe: each actor worker thread owns its own Db.
//
// Errors: DbUnavailable when no server can be reached (after one reconnect and
// one retry of the statement) — the host answers UNAVAILABLE; DbError for any other
// server error (code() is the MariaDB error number, e.g. ER_DUP_ENTRY; on Galera a
// certification conflict is ER_LOCK_DEADLOCK, often on COMMIT: retry the
// transaction).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "actors/db/db_config.h"
#include "actors/db/mysql_handles.h"
#include "metrics/metrics.h"

namespace imbus::actors {

class DbError : public std::runtime_error {
 public:
  DbError(unsigned code, const std::string& what) : std::runtime_error(what), code_(code) {}
  unsigned code() const { return code_; }

 private:
  unsigned code_;
};

class DbUnavailable : public DbError {
 public:
  using DbError::DbError;
};

// A statement parameter. string_view values must outlive the call.
using DbParam = std::variant<std::nullptr_t, int64_t, uint64_t, std::string_view>;

// One column value of a result row: integers as integers, everything else as bytes.
struct DbValue {
  bool is_null = true;
  bool is_int = false;
  uint64_t bits = 0;  // the integer's bits (signed columns: two's complement)
  std::string str;
};

class DbRow {
 public:
  explicit DbRow(std::vector<DbValue> values) : values_(std::move(values)) {}
  size_t size() const { return values_.size(); }
  bool IsNull(size_t i) const { return values_.at(i).is_null; }
  // nullopt for NULL; integers read from string columns are parsed.
  std::optional<uint64_t> Uint(size_t i) const;
  std::optional<int64_t> Int(size_t i) const;
  std::optional<std::string> Str(size_t i) const;

 private:
  std::vector<DbValue> values_;
};

struct DbResult {
  std::vector<DbRow> rows;
  uint64_t affected_rows = 0;
  uint64_t insert_id = 0;
};

class Db {
 public:
  // Does not connect; the first statement (or Connect()) does.
  explicit Db(DbConfig config);
  ~Db();
  Db(Db&&) noexcept;
  Db& operator=(Db&&) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Connects if not connected. `select_database` false connects without a default
  // database (used once at startup to CREATE DATABASE). Throws DbUnavailable on a
  // connection failure, DbError for e.g. an unknown database or bad credentials.
  void Connect(bool select_database = true);
  bool connected() const { return static_cast<bool>(mysql_); }
  void Disconnect();

  // Runs a prepared statement (prepared once per connection and cached by text).
  DbResult Query(std::string_view sql, std::initializer_list<DbParam> params = {});
  // Same with a parameter list built at run time (multi-row inserts).
  DbResult Query(std::string_view sql, const std::vector<DbParam>& params);
  // Runs SQL text without parameters (DDL, schema). Never for data from clients.
  void Exec(std::string_view sql);

  // Transactions. Between Begin() and Commit()/Rollback() a lost connection is NOT
  // retried on a new one (the statement would run outside its transaction): it
  // throws DbUnavailable and the transaction is over. Commit() throwing
  // DbUnavailable means the outcome is unknown. Rollback() never throws.
  // `isolation` is set for this transaction together with its START (a reconnect before
  // the START sets it again on the new connection, which a separate SET TRANSACTION
  // statement before Begin() would lose).
  enum class Isolation { kDefault, kReadCommitted };
  void Begin(bool read_only = false, Isolation isolation = Isolation::kDefault);
  void Commit();
  void Rollback();
  bool in_transaction() const { return in_transaction_; }

  const DbConfig& config() const { return config_; }
  // The endpoint connected to (or last connected to), e.g. "127.0.0.1:3306".
  std::string endpoint() const;

  // How often a Db on a later endpoint checks whether an earlier one is back.
  static constexpr std::chrono::seconds kFailBackPeriod{5};

 private:
  template <class F>
  auto WithReconnect(F&& f) -> decltype(f());
  // Opens a connection to endpoint `i` and checks the node's health; throws
  // DbUnavailable if it cannot be reached or is not healthy.
  MysqlHandle Open(size_t i, bool select_database) const;
  void MaybeFailBack();
  DbResult QueryOnce(std::string_view sql, const std::vector<DbParam>& params);
  void ExecOnce(std::string_view sql);
  MYSQL_STMT* Prepare(std::string_view sql);
  [[noreturn]] void Fail(unsigned code, const std::string& what);

  DbConfig config_;
  std::vector<DbEndpoint> endpoints_;
  size_t current_ = 0;  // index into endpoints_ of the connection (or the last one)
  std::chrono::steady_clock::time_point next_fail_back_{};
  bool select_database_ = true;
  bool in_transaction_ = false;
  MysqlHandle mysql_;
  std::unordered_map<std::string, StmtHandle> statements_;
  // Taken at construction (empty when metrics are off): every Query/Exec's time,
  // and the errors that make callers retry a transaction.
  metrics::Histogram query_seconds_;
  metrics::Counter deadlocks_;
  metrics::Counter lock_wait_timeouts_;
};

// True for the client error numbers that mean "the connection is gone".
bool IsConnectionLost(unsigned code);
// IsConnectionLost, or the server cannot serve us now: ER_UNKNOWN_COM_ERROR, which a
// Galera node answers while it is not in the primary component ("WSREP has not yet
// prepared node for application use"). Both are DbUnavailable.
bool IsServerUnavailable(unsigned code);

// Quotes a database identifier after checking it is [A-Za-z0-9_]+; throws
// std::invalid_argument otherwise (startup error).
std::string QuoteDatabaseName(const std::string& name);

}  // namespace imbus::actors

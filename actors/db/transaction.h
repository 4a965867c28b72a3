// Public, header-only. Transaction: a scope guard around START TRANSACTION on one Db
// connection, for stores that write several rows at once.
#pragma once

#include <mysqld_error.h>

#include "actors/db/db.h"

namespace imbus::actors {

// Runs `f` (a whole transaction) again when it lost a deadlock: the server rolled it
// back whole (on Galera also a certification conflict), so going again is safe. Up
// to 5 tries; DbUnavailable and other errors pass at once.
template <class F>
auto RetryDeadlock(F f) {
  for (int attempt = 1;; ++attempt) {
    try {
      return f();
    } catch (const DbUnavailable&) {
      throw;
    } catch (const DbError& e) {
      if (e.code() != ER_LOCK_DEADLOCK || attempt >= 5) throw;
    }
  }
}

// A transaction for the life of the scope: rolled back unless Commit() ran (also
// when an exception leaves the scope). A lost connection ends it on the server, and
// the statement that found it lost throws DbUnavailable (Db::Begin: it is never
// retried on a new connection, where it would run outside the transaction).
class Transaction {
 public:
  explicit Transaction(Db* db, bool read_only = false) : db_(db) { db_->Begin(read_only); }
  ~Transaction() {
    if (!done_) db_->Rollback();
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void Commit() {
    db_->Commit();
    done_ = true;
  }

 private:
  Db* db_;
  bool done_ = false;
};

}  // namespace imbus::actors

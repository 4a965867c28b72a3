// Public, header-only. Transaction: a scope guard around START TRANSACTION on one Db
// connection, for stores that write several rows at once.
#pragma once

#include "actors/db/db.h"

namespace imbus::actors {

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

// Public, header-only. Transaction: a scope guard around START TRANSACTION on one Db
// connection, for stores that write several rows at once.
#pragma once

#include <exception>

#include "actors/db/db.h"

namespace imbus::actors {

// A transaction for the life of the scope: rolled back unless Commit() ran (also
// when an exception leaves the scope). A lost connection ends it on the server.
class Transaction {
 public:
  explicit Transaction(Db* db, bool read_only = false) : db_(db) {
    db_->Query(read_only ? "START TRANSACTION READ ONLY" : "START TRANSACTION");
  }
  ~Transaction() {
    if (done_) return;
    try {
      db_->Query("ROLLBACK");
    } catch (const std::exception&) {
      // The connection is gone, and the transaction with it.
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void Commit() {
    db_->Query("COMMIT");
    done_ = true;
  }

 private:
  Db* db_;
  bool done_ = false;
};

}  // namespace imbus::actors

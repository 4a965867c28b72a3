// Internal. Move-only owners of the MariaDB Connector/C handles. Each handle belongs
// to the thread that uses its connection (the mysqlclient API is not thread-safe per
// connection).
#pragma once

#include <mysql.h>

#include <utility>

namespace imbus::actors {

template <class T, void (*Free)(T*)>
class CHandle {
 public:
  CHandle() = default;
  explicit CHandle(T* p) : p_(p) {}
  ~CHandle() { reset(); }
  CHandle(CHandle&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  CHandle& operator=(CHandle&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  CHandle(const CHandle&) = delete;
  CHandle& operator=(const CHandle&) = delete;

  T* get() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }
  void reset() {
    if (p_ != nullptr) Free(std::exchange(p_, nullptr));
  }

 private:
  T* p_ = nullptr;
};

namespace internal {
inline void CloseMysql(MYSQL* m) { mysql_close(m); }
inline void CloseStmt(MYSQL_STMT* s) { mysql_stmt_close(s); }
inline void FreeResult(MYSQL_RES* r) { mysql_free_result(r); }
}  // namespace internal

using MysqlHandle = CHandle<MYSQL, internal::CloseMysql>;
using StmtHandle = CHandle<MYSQL_STMT, internal::CloseStmt>;
using ResultHandle = CHandle<MYSQL_RES, internal::FreeResult>;

}  // namespace imbus::actors

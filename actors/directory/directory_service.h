// Public. DirectoryService: PROTOCOL.md service 3 (LIST_USERS, GET_USER, friends,
// groups). Business rules only; storage is a DirectoryStore and `online` flags come
// from Sessions at the moment of each answer (one lookup per answer). One instance
// per worker thread.
//
// LEAVE_GROUP by the owner passes ownership to the longest-standing live member;
// the group is deleted when its last live member leaves.
#pragma once

#include <memory>

#include "actors/directory/directory_store.h"
#include "actors/service.h"
#include "actors/sessions.h"

namespace imbus::actors {

class DirectoryService : public Service {
 public:
  DirectoryService(std::unique_ptr<DirectoryStore> store, Sessions* sessions);

  static constexpr uint64_t kDefaultPageSize = 20;
  static constexpr uint64_t kMaxPageSize = 100;
  static constexpr size_t kMaxGroupName = 64;
  static constexpr size_t kMaxGroupDesc = 512;

 private:
  void ListUsers(const Request& req, Reply* reply);
  void GetUser(const Request& req, Reply* reply);
  void AddFriend(const Request& req, Reply* reply);
  void RemoveFriend(const Request& req, Reply* reply);
  void ListFriends(const Request& req, Reply* reply);
  void CreateGroup(const Request& req, Reply* reply);
  void JoinGroup(const Request& req, Reply* reply);
  void LeaveGroup(const Request& req, Reply* reply);
  void ListGroups(const Request& req, Reply* reply);
  void GroupMembers(const Request& req, Reply* reply);

  std::vector<bool> OnlineFlags(const std::vector<uint64_t>& uids);

  std::unique_ptr<DirectoryStore> store_;
  Sessions* sessions_;  // not owned; the worker's
};

}  // namespace imbus::actors

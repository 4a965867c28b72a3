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
  struct Options {
    // Legacy (--immediate-friends): ADD_FRIEND befriends at once, no request.
    bool immediate_friends = false;
  };
  DirectoryService(std::unique_ptr<DirectoryStore> store, Sessions* sessions, Options options);
  DirectoryService(std::unique_ptr<DirectoryStore> store, Sessions* sessions)
      : DirectoryService(std::move(store), sessions, Options{}) {}

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

  void FriendRequests(const Request& req, Reply* reply);
  void AcceptFriend(const Request& req, Reply* reply);
  void DeclineFriend(const Request& req, Reply* reply);
  void Block(const Request& req, Reply* reply);
  void Unblock(const Request& req, Reply* reply);
  void ListBlocked(const Request& req, Reply* reply);

  // Online flags as `viewer` may see them: users who block the viewer show offline.
  std::vector<bool> OnlineFlags(uint64_t viewer, const std::vector<uint64_t>& uids);
  // A DIRECTORY/FRIEND_EVENT push to `to` about `about`.
  void FriendEvent(Reply* reply, uint64_t to, uint64_t about, const std::string& event,
                   bool skip_requester);

  std::unique_ptr<DirectoryStore> store_;
  Sessions* sessions_;  // not owned; the worker's
  Options options_;
};

}  // namespace imbus::actors

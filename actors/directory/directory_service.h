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

  // Groups with roles and policies (directory_groups.cc, issue 18).
  void SetGroup(const Request& req, Reply* reply);
  void Invite(const Request& req, Reply* reply);
  void Approve(const Request& req, Reply* reply);
  void Reject(const Request& req, Reply* reply);
  void RemoveMember(const Request& req, Reply* reply);
  void SetRole(const Request& req, Reply* reply);
  void TransferOwner(const Request& req, Reply* reply);
  void Dissolve(const Request& req, Reply* reply);
  void GroupPending(const Request& req, Reply* reply);
  // The caller's role in gid: NOT_FOUND (no group), FORBIDDEN (not a member, or
  // below `least`: "admin" or "owner").
  std::string RequireRole(uint64_t gid, uint64_t uid, const char* least);
  // Adds uid as a member (drops its pending join) and pushes "joined".
  void Admit(Reply* reply, uint64_t gid, uint64_t uid, uint64_t by);
  // A DIRECTORY/GROUP_EVENT push to every member (and `extra`, e.g. one who left).
  struct GroupEventFields {
    uint64_t uid = 0;
    uint64_t by = 0;
    std::string role;
    const GroupSettings* settings = nullptr;
  };
  void GroupEvent(Reply* reply, uint64_t gid, const std::string& event, const GroupEventFields& f,
                  std::vector<uint64_t> extra = {});

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

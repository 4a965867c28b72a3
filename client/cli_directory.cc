// `imbus users`, `imbus user`, `imbus friends ...`, `imbus groups ...`: the
// DIRECTORY service. Every command logs in first (cli_session.h).
#include <iostream>
#include <memory>

#include "client/cli.h"
#include "client/cli_session.h"
#include "client/directory_api.h"

namespace imbus::client::cli {

namespace {

const char* OnlineText(bool online) { return online ? "online" : "-"; }

void PrintUsers(const std::vector<UserInfo>& users) {
  std::vector<std::vector<std::string>> rows;
  for (const UserInfo& u : users)
    rows.push_back({std::to_string(u.uid), u.name, OnlineText(u.online)});
  PrintTable({"UID", "NAME", "ONLINE"}, rows);
}

struct UsersArgs {
  SessionArgs session;
  uint64_t page = 1;
  uint64_t size = 20;
};

int RunUsers(const GlobalOptions& g, const UsersArgs& a) {
  Client client;
  if (int rc = LoginForCommand(g, a.session, &client); rc != kExitOk) return rc;
  Result<UserPage> r = ListUsers(client, a.page, a.size);
  if (!r.ok()) return ReportFailure("users", r.code, r.error);
  const uint64_t pages = (r.value.total + a.size - 1) / a.size;
  std::cout << "page " << r.value.page << " of " << pages << " (" << r.value.total << " users, "
            << a.size << " per page)\n";
  PrintUsers(r.value.users);
  return kExitOk;
}

struct UserArgs {
  SessionArgs session;
  std::string who;
};

int RunUser(const GlobalOptions& g, const UserArgs& a) {
  Client client;
  if (int rc = LoginForCommand(g, a.session, &client); rc != kExitOk) return rc;
  uint64_t uid = 0;
  const bool by_uid = !a.who.empty() && a.who.find_first_not_of("0123456789") == std::string::npos;
  Result<UserInfo> r;
  if (by_uid) {
    if (int rc = ResolveUser(client, a.who, &uid); rc != kExitOk) return rc;
    r = GetUser(client, uid);
  } else {
    r = GetUserByName(client, a.who);
  }
  if (!r.ok()) return ReportFailure("user " + a.who, r.code, r.error);
  PrintUsers({r.value});
  return kExitOk;
}

struct FriendsArgs {
  SessionArgs session;
  CLI::App* add = nullptr;
  CLI::App* remove = nullptr;
  CLI::App* accept = nullptr;
  CLI::App* decline = nullptr;
  CLI::App* block = nullptr;
  CLI::App* unblock = nullptr;
  CLI::App* requests = nullptr;
  CLI::App* blocked = nullptr;
  std::string who;
};

int RunFriendRequests(Client& client) {
  std::vector<std::vector<std::string>> rows;
  for (bool incoming : {true, false}) {
    Result<std::vector<FriendRequestInfo>> r = FriendRequests(client, incoming);
    if (!r.ok()) return ReportFailure("friends requests", r.code, r.error);
    for (const FriendRequestInfo& f : r.value) {
      rows.push_back({std::to_string(f.uid), f.name, incoming ? "asks you" : "asked by you"});
    }
  }
  if (rows.empty()) {
    std::cout << "no pending friend requests\n";
    return kExitOk;
  }
  PrintTable({"UID", "NAME", "REQUEST"}, rows);
  return kExitOk;
}

int RunFriends(const GlobalOptions& g, const FriendsArgs& a) {
  Client client;
  if (int rc = LoginForCommand(g, a.session, &client); rc != kExitOk) return rc;
  if (a.requests->parsed()) return RunFriendRequests(client);
  if (a.blocked->parsed()) {
    Result<std::vector<UserInfo>> r = ListBlocked(client);
    if (!r.ok()) return ReportFailure("friends blocked", r.code, r.error);
    std::vector<std::vector<std::string>> rows;
    for (const UserInfo& u : r.value) rows.push_back({std::to_string(u.uid), u.name});
    if (rows.empty()) std::cout << "nobody blocked\n";
    if (!rows.empty()) PrintTable({"UID", "NAME"}, rows);
    return kExitOk;
  }
  if (a.add->parsed()) {
    uint64_t uid = 0;
    if (int rc = ResolveUser(client, a.who, &uid); rc != kExitOk) return rc;
    Result<bool> r = RequestFriend(client, uid);
    if (!r.ok()) return ReportFailure("friends add", r.code, r.error);
    std::cout << (r.value ? "friend request sent to " : "now friends with ") << a.who << " (uid "
              << uid << ")\n";
    return kExitOk;
  }
  struct Action {
    CLI::App* sub;
    const char* what;
    Result<Empty> (*call)(Client&, uint64_t);
    const char* done;
  };
  const Action actions[] = {
      {a.remove, "friends remove", RemoveFriend, "no longer friends with "},
      {a.accept, "friends accept", AcceptFriend, "now friends with "},
      {a.decline, "friends decline", DeclineFriend, "declined the request of "},
      {a.block, "friends block", Block, "blocked "},
      {a.unblock, "friends unblock", Unblock, "unblocked "},
  };
  for (const Action& act : actions) {
    if (!act.sub->parsed()) continue;
    uint64_t uid = 0;
    if (int rc = ResolveUser(client, a.who, &uid); rc != kExitOk) return rc;
    Result<Empty> r = act.call(client, uid);
    if (!r.ok()) return ReportFailure(act.what, r.code, r.error);
    std::cout << act.done << a.who << " (uid " << uid << ")\n";
    return kExitOk;
  }
  Result<std::vector<UserInfo>> r = ListFriends(client);
  if (!r.ok()) return ReportFailure("friends", r.code, r.error);
  if (r.value.empty()) {
    std::cout << "no friends yet (imbus friends add UID|NAME)\n";
    return kExitOk;
  }
  PrintUsers(r.value);
  return kExitOk;
}

struct GroupsArgs {
  SessionArgs session;
  CLI::App* create = nullptr;
  CLI::App* join = nullptr;
  CLI::App* leave = nullptr;
  CLI::App* members = nullptr;
  // Issue 18: administration.
  CLI::App* settings = nullptr;
  CLI::App* invite = nullptr;
  CLI::App* approve = nullptr;
  CLI::App* reject = nullptr;
  CLI::App* remove = nullptr;
  CLI::App* role = nullptr;
  CLI::App* transfer = nullptr;
  CLI::App* dissolve = nullptr;
  CLI::App* pending = nullptr;
  std::string name;
  std::string desc;
  std::string policy;
  std::optional<bool> muted;
  std::string who;
  std::string role_name;
  uint64_t gid = 0;
};

// The administration subcommands of `groups` (issue 18); -1 when none was given.
int RunGroupAdmin(Client& client, const GroupsArgs& a) {
  if (a.settings->parsed()) {
    Result<GroupSettingsInfo> r = SetGroup(client, a.gid, a.policy, a.muted);
    if (!r.ok()) return ReportFailure("groups settings", r.code, r.error);
    std::cout << "group " << a.gid << ": policy " << r.value.policy
              << (r.value.muted ? ", muted (only admins write)" : "") << "\n";
    return kExitOk;
  }
  if (a.dissolve->parsed()) {
    Result<Empty> r = Dissolve(client, a.gid);
    if (!r.ok()) return ReportFailure("groups dissolve", r.code, r.error);
    std::cout << "dissolved group " << a.gid << "\n";
    return kExitOk;
  }
  if (a.pending->parsed()) {
    Result<std::vector<PendingJoinInfo>> r = GroupPending(client, a.gid);
    if (!r.ok()) return ReportFailure("groups pending", r.code, r.error);
    std::vector<std::vector<std::string>> rows;
    for (const PendingJoinInfo& p : r.value) {
      rows.push_back({std::to_string(p.uid), p.name, p.kind == "invite" ? "invited" : "asks"});
    }
    if (rows.empty()) std::cout << "nothing pending\n";
    if (!rows.empty()) PrintTable({"UID", "NAME", "PENDING"}, rows);
    return kExitOk;
  }
  CLI::App* const with_who[] = {a.invite, a.approve, a.reject, a.remove, a.role, a.transfer};
  for (CLI::App* sub : with_who) {
    if (!sub->parsed()) continue;
    uint64_t uid = 0;
    if (int rc = ResolveUser(client, a.who, &uid); rc != kExitOk) return rc;
    Result<Empty> r;
    std::string done;
    if (sub == a.invite) {
      Result<bool> inv = Invite(client, a.gid, uid);
      r = {inv.code, inv.error, inv.retry_ms, {}};
      done = inv.ok() && !inv.value ? "admitted " : "invited ";
    } else if (sub == a.approve) {
      r = Approve(client, a.gid, uid);
      done = "admitted ";
    } else if (sub == a.reject) {
      r = Reject(client, a.gid, uid);
      done = "rejected ";
    } else if (sub == a.remove) {
      r = RemoveMember(client, a.gid, uid);
      done = "removed ";
    } else if (sub == a.role) {
      r = SetRole(client, a.gid, uid, a.role_name);
      done = "made " + a.role_name + ": ";
    } else {
      r = TransferOwner(client, a.gid, uid);
      done = "new owner: ";
    }
    if (!r.ok()) return ReportFailure("groups " + sub->get_name(), r.code, r.error);
    std::cout << "group " << a.gid << ": " << done << a.who << " (uid " << uid << ")\n";
    return kExitOk;
  }
  return -1;
}

int RunGroups(const GlobalOptions& g, const GroupsArgs& a) {
  Client client;
  if (int rc = LoginForCommand(g, a.session, &client); rc != kExitOk) return rc;
  if (int rc = RunGroupAdmin(client, a); rc >= 0) return rc;
  if (a.create->parsed()) {
    Result<uint64_t> r = CreateGroupWithPolicy(client, a.name, a.desc, a.policy);
    if (!r.ok()) return ReportFailure("groups create", r.code, r.error);
    std::cout << "created group " << a.name << " (gid " << r.value << "), you are its owner\n";
    return kExitOk;
  }
  if (a.join->parsed()) {
    Result<bool> r = JoinGroupAsk(client, a.gid);
    if (!r.ok()) return ReportFailure("groups join", r.code, r.error);
    std::cout << (r.value ? "asked to join group " : "joined group ") << a.gid << "\n";
    return kExitOk;
  }
  if (a.leave->parsed()) {
    Result<Empty> r = LeaveGroup(client, a.gid);
    if (!r.ok()) return ReportFailure("groups leave", r.code, r.error);
    std::cout << "left group " << a.gid << "\n";
    return kExitOk;
  }
  if (a.members->parsed()) {
    Result<std::vector<MemberInfo>> r = GroupMembers(client, a.gid);
    if (!r.ok()) return ReportFailure("groups members", r.code, r.error);
    std::vector<std::vector<std::string>> rows;
    for (const MemberInfo& m : r.value) {
      rows.push_back({std::to_string(m.uid), m.name, m.role, OnlineText(m.online)});
    }
    PrintTable({"UID", "NAME", "ROLE", "ONLINE"}, rows);
    return kExitOk;
  }
  Result<std::vector<GroupInfo>> r = ListGroups(client);
  if (!r.ok()) return ReportFailure("groups", r.code, r.error);
  if (r.value.empty()) {
    std::cout << "no groups yet (imbus groups create NAME | imbus groups join GID)\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const GroupInfo& gi : r.value) {
    rows.push_back({std::to_string(gi.gid), gi.name, gi.role, gi.desc});
  }
  PrintTable({"GID", "NAME", "ROLE", "DESCRIPTION"}, rows);
  return kExitOk;
}

}  // namespace

Command AddUsers(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("users", "List users, a page at a time, by uid");
  auto args = std::make_shared<UsersArgs>();
  sub->add_option("PAGE", args->page, "page number, from 1")->check(CLI::PositiveNumber);
  sub->add_option("--size", args->size, "users per page (1-100)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  AddSessionOptions(sub, &args->session);
  return {sub, [&g, args] { return RunUsers(g, *args); }};
}

Command AddUser(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand("user", "Show one user by name or uid");
  auto args = std::make_shared<UserArgs>();
  sub->add_option("WHO", args->who, "UID (all digits) or NAME")->required();
  AddSessionOptions(sub, &args->session);
  return {sub, [&g, args] { return RunUser(g, *args); }};
}

Command AddFriends(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub = app.add_subcommand(
      "friends",
      "List friends; `friends add|accept|decline|remove|block|unblock UID|NAME`, "
      "`friends requests|blocked`");
  auto args = std::make_shared<FriendsArgs>();
  sub->require_subcommand(0, 1);
  sub->fallthrough();
  AddSessionOptions(sub, &args->session);
  struct Sub {
    CLI::App** field;
    const char* name;
    const char* help;
  };
  const Sub with_who[] = {
      {&args->add, "add", "Ask a user to be your friend (they accept; at once if they asked you)"},
      {&args->accept, "accept", "Accept a user's friend request"},
      {&args->decline, "decline", "Decline a friend request (or withdraw yours)"},
      {&args->remove, "remove", "End a friendship"},
      {&args->block, "block", "Block a user: no messages, requests or presence from them"},
      {&args->unblock, "unblock", "Unblock a user"},
  };
  for (const Sub& s : with_who) {
    *s.field = sub->add_subcommand(s.name, s.help);
    (*s.field)->add_option("WHO", args->who, "UID (all digits) or NAME")->required();
    (*s.field)->fallthrough();
  }
  args->requests = sub->add_subcommand("requests", "List pending friend requests, both ways");
  args->requests->fallthrough();
  args->blocked = sub->add_subcommand("blocked", "List the users you block");
  args->blocked->fallthrough();
  return {sub, [&g, args] { return RunFriends(g, *args); }};
}

Command AddGroups(CLI::App& app, const GlobalOptions& g) {
  CLI::App* sub =
      app.add_subcommand("groups",
                         "List your groups; `groups create|join|leave|members|settings|invite|"
                         "approve|reject|remove|role|transfer|dissolve|pending ...`");
  auto args = std::make_shared<GroupsArgs>();
  sub->require_subcommand(0, 1);
  sub->fallthrough();
  AddSessionOptions(sub, &args->session);
  args->create = sub->add_subcommand("create", "Create a group; you become its owner");
  args->create->add_option("NAME", args->name, "group name (1-64 bytes)")->required();
  args->create->add_option("--desc", args->desc, "description (up to 512 bytes)");
  args->create
      ->add_option("--policy", args->policy, "who may join: open (default), request, invite")
      ->check(CLI::IsMember({"open", "request", "invite"}));
  args->join = sub->add_subcommand("join", "Join a group");
  args->join->add_option("GID", args->gid, "group id")->required();
  args->leave = sub->add_subcommand(
      "leave", "Leave a group (an owner hands it to the longest-standing member)");
  args->leave->add_option("GID", args->gid, "group id")->required();
  args->members = sub->add_subcommand("members", "List a group's members");
  args->members->add_option("GID", args->gid, "group id")->required();
  args->settings = sub->add_subcommand("settings", "Show or change a group's policy and muting");
  args->settings->add_option("GID", args->gid, "group id")->required();
  args->settings->add_option("--policy", args->policy, "open, request or invite (admins)")
      ->check(CLI::IsMember({"open", "request", "invite"}));
  args->settings->add_option("--muted", args->muted, "true: only admins write (admins)");
  struct WithWho {
    CLI::App** field;
    const char* name;
    const char* help;
  };
  const WithWho with_who[] = {
      {&args->invite, "invite", "Invite a user (admins)"},
      {&args->approve, "approve", "Admit a user who asked to join (admins)"},
      {&args->reject, "reject", "Reject a request or withdraw an invitation (admins)"},
      {&args->remove, "remove", "Remove a member (admins; the owner also admins)"},
      {&args->role, "role", "Make a member admin or member (the owner)"},
      {&args->transfer, "transfer", "Hand the group to a member (the owner)"},
  };
  for (const WithWho& w : with_who) {
    *w.field = sub->add_subcommand(w.name, w.help);
    (*w.field)->add_option("GID", args->gid, "group id")->required();
    (*w.field)->add_option("WHO", args->who, "UID (all digits) or NAME")->required();
  }
  args->role->add_option("ROLE", args->role_name, "admin or member")
      ->required()
      ->check(CLI::IsMember({"admin", "member"}));
  args->dissolve = sub->add_subcommand("dissolve", "Delete the group (the owner)");
  args->dissolve->add_option("GID", args->gid, "group id")->required();
  args->pending = sub->add_subcommand("pending", "Join requests and invitations (admins)");
  args->pending->add_option("GID", args->gid, "group id")->required();
  for (CLI::App* s : {args->create, args->join, args->leave, args->members, args->settings,
                      args->invite, args->approve, args->reject, args->remove, args->role,
                      args->transfer, args->dissolve, args->pending}) {
    s->fallthrough();
  }
  return {sub, [&g, args] { return RunGroups(g, *args); }};
}

}  // namespace imbus::client::cli

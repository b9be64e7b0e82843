// Recording fakes for the two OS boundaries of the network faults: an in-memory qdisc
// table behind NetlinkClient and an in-memory `inet chaosdrill` table behind
// NftablesClient. They record every call ("add netem 7 root cd00:") so tests assert on
// what would have been done, and can be told to fail or to misbehave (lose a qdisc).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "injector/netlink_client.h"
#include "injector/nftables_client.h"

namespace chaosdrill::injector::testing {

class FakeNetlinkClient : public NetlinkClient {
 public:
  // Shared state, so a test can keep a pointer after handing the client to a fault.
  struct State {
    std::map<std::string, int> interfaces{{"veth0", 7}};
    std::vector<QdiscInfo> qdiscs;
    std::vector<std::string> calls;
    std::optional<QdiscRequest> last_add;
    absl::Status add_error;         // returned by AddQdisc when not OK
    bool lose_added_qdisc = false;  // AddQdisc succeeds but nothing is there
    bool ignore_delete = false;     // DeleteQdisc succeeds but nothing is removed
  };

  explicit FakeNetlinkClient(State* state) : s_(state) {}

  absl::StatusOr<int> InterfaceIndex(absl::string_view name) override {
    s_->calls.push_back(absl::StrCat("index ", name));
    auto it = s_->interfaces.find(std::string(name));
    if (it == s_->interfaces.end()) {
      return absl::NotFoundError(absl::StrCat("interface ", name, " not found"));
    }
    return it->second;
  }

  absl::StatusOr<std::vector<QdiscInfo>> ListQdiscs(int ifindex) override {
    s_->calls.push_back(absl::StrCat("list ", ifindex));
    std::vector<QdiscInfo> out;
    for (const QdiscInfo& q : s_->qdiscs) {
      if (q.ifindex == ifindex) out.push_back(q);
    }
    return out;
  }

  absl::Status AddQdisc(const QdiscRequest& r) override {
    const char* kind = std::holds_alternative<NetemOptions>(r.options) ? "netem" : "tbf";
    s_->calls.push_back(absl::StrCat("add ", kind, " ", r.ifindex, " ", TcHandleToString(r.parent),
                                     " ", TcHandleToString(r.handle)));
    s_->last_add = r;
    if (!s_->add_error.ok()) return s_->add_error;
    for (const QdiscInfo& q : s_->qdiscs) {
      if (q.ifindex == r.ifindex && q.parent == r.parent && q.handle != 0) {
        return absl::AlreadyExistsError("Object exists");
      }
    }
    if (!s_->lose_added_qdisc) {
      s_->qdiscs.push_back(
          {.ifindex = r.ifindex, .kind = kind, .handle = r.handle, .parent = r.parent});
    }
    return absl::OkStatus();
  }

  absl::Status DeleteQdisc(int ifindex, uint32_t parent, uint32_t handle) override {
    s_->calls.push_back(absl::StrCat("delete ", ifindex, " ", TcHandleToString(parent), " ",
                                     TcHandleToString(handle)));
    for (auto it = s_->qdiscs.begin(); it != s_->qdiscs.end(); ++it) {
      if (it->ifindex == ifindex && it->parent == parent && it->handle == handle) {
        if (!s_->ignore_delete) s_->qdiscs.erase(it);
        return absl::OkStatus();
      }
    }
    return absl::NotFoundError("Object not found");
  }

 private:
  State* s_;
};

// Understands the commands network.partition sends: add table/chain/rule, delete
// chain/table. Anything else fails the call loudly.
class FakeNftablesClient : public NftablesClient {
 public:
  struct State {
    std::optional<nlohmann::json> table;  // {"chains": {name: [rules...]}, "other": bool}
    std::vector<nlohmann::json> runs;     // every batch passed to Run
    absl::Status run_error;
    int next_handle = 1;
  };

  explicit FakeNftablesClient(State* state) : s_(state) {}

  absl::Status Run(const nlohmann::json& batch) override {
    s_->runs.push_back(batch);
    if (!s_->run_error.ok()) return s_->run_error;
    std::optional<nlohmann::json> t = s_->table;  // all or nothing
    for (const nlohmann::json& cmd : batch.at("nftables")) {
      if (cmd.contains("add")) {
        const nlohmann::json& a = cmd["add"];
        if (a.contains("table")) {
          if (!t) t = nlohmann::json{{"chains", nlohmann::json::object()}, {"other", false}};
        } else if (a.contains("chain")) {
          if (!t) return absl::NotFoundError("No such file or directory");
          std::string name = a["chain"]["name"];
          if (!(*t)["chains"].contains(name)) (*t)["chains"][name] = nlohmann::json::array();
        } else if (a.contains("rule")) {
          std::string chain = a["rule"]["chain"];
          if (!t || !(*t)["chains"].contains(chain)) {
            return absl::NotFoundError("No such file or directory");
          }
          nlohmann::json rule = a["rule"];
          rule["handle"] = s_->next_handle++;
          (*t)["chains"][chain].push_back(rule);
        } else {
          return absl::InvalidArgumentError(absl::StrCat("fake: unexpected add ", cmd.dump()));
        }
      } else if (cmd.contains("delete")) {
        const nlohmann::json& d = cmd["delete"];
        if (d.contains("chain")) {
          std::string name = d["chain"]["name"];
          if (!t || !(*t)["chains"].contains(name)) {
            return absl::NotFoundError("No such file or directory");
          }
          (*t)["chains"].erase(name);
        } else if (d.contains("table")) {
          if (!t) return absl::NotFoundError("No such file or directory");
          t.reset();
        } else {
          return absl::InvalidArgumentError(absl::StrCat("fake: unexpected delete ", cmd.dump()));
        }
      } else {
        return absl::InvalidArgumentError(absl::StrCat("fake: unexpected command ", cmd.dump()));
      }
    }
    s_->table = t;
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<nlohmann::json>> ListTable(absl::string_view family,
                                                          absl::string_view name) override {
    if (!s_->table) return std::optional<nlohmann::json>();
    nlohmann::json items = nlohmann::json::array();
    items.push_back({{"metainfo", {{"version", "fake"}}}});
    items.push_back({{"table", {{"family", family}, {"name", name}}}});
    for (const auto& [chain, rules] : (*s_->table)["chains"].items()) {
      items.push_back({{"chain", {{"family", family}, {"table", name}, {"name", chain}}}});
      for (const nlohmann::json& r : rules) items.push_back({{"rule", r}});
    }
    if ((*s_->table)["other"].get<bool>()) items.push_back({{"set", {{"name", "foreign"}}}});
    return std::optional<nlohmann::json>(nlohmann::json{{"nftables", items}});
  }

 private:
  State* s_;
};

}  // namespace chaosdrill::injector::testing

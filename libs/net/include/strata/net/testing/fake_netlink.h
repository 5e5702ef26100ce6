#pragma once

// An in-memory kernel for unit tests: namespaces (by path; "" is the host) holding links, root
// qdiscs, VF settings and bonds. Thread-compatible (tests drive it from one thread).

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "strata/net/netlink.h"

namespace strata::net::testing {

struct FakeLink {
  LinkInfo info;
  std::optional<RootQdisc> root;  // nullopt: the kernel default
  BondState bond;                 // kind == "bond"
  BridgeState bridge;             // kind == "bridge"
  LinkStats stats;
  std::set<std::string> addresses;  // CIDRs
  std::vector<std::string> routes;  // "DST" or "DST via GW"
};

class FakeKernel final : public NetlinkFactory {
 public:
  FakeKernel() { namespaces_[""]; }

  Result<NetlinkManagerPtr> Open(const std::string& netns_path) override;

  // Test setup.
  void AddNetns(const std::string& path) { namespaces_[path]; }
  void RemoveNetns(const std::string& path) { namespaces_.erase(path); }
  // A veth pair: `a` in ns_a, `b` in ns_b.
  void AddVeth(const std::string& ns_a, const std::string& a, const std::string& ns_b,
               const std::string& b, int mtu = 1500);
  void AddLink(const std::string& ns, const std::string& name, const std::string& kind,
               int mtu = 1500);
  FakeLink* Find(const std::string& ns, const std::string& name);
  std::map<std::string, FakeLink>& Links(const std::string& ns) { return namespaces_.at(ns); }
  // Makes a call of `op` (e.g. "ChangeLink") fail with INTERNAL after `skip` calls succeed.
  void FailNext(const std::string& op, int skip = 0) { fail_after_[op] = skip; }
  bool ShouldFail(const std::string& op) {
    auto it = fail_after_.find(op);
    if (it == fail_after_.end()) return false;
    if (it->second-- > 0) return false;
    fail_after_.erase(it);
    return true;
  }

  std::map<std::pair<std::string, int>, VfState> vfs;  // (pf, index) -> state (host namespace)
  int next_index = 10;
  // Calls per mutating operation ("CreateBond", "EnslaveLink", ...): tests check that a
  // converged state is left alone.
  std::map<std::string, int> calls;
  int TotalCalls() const {
    int n = 0;
    for (const auto& [op, c] : calls) n += c;
    return n;
  }
  int moves = 0;  // namespace moves so far

 private:
  std::map<std::string, std::map<std::string, FakeLink>> namespaces_;
  std::map<std::string, int> fail_after_;
};

}  // namespace strata::net::testing

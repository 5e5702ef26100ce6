// The path checker of the node plugin (see NodeServer's class comment): probes every
// path of every staged volume, fails and reinstates paths in dm-multipath, reconnects
// nbd devices, adds portals that were missing at stage time, follows a LUN that moved to
// another device, and switches a volume without any path from queueing to failing I/O.
#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "node_server.h"
#include "stage_state.h"

namespace strata::csi {

void NodeServer::StartPathChecker(std::chrono::milliseconds interval) {
  checker_ = std::thread([this, interval] {
    std::unique_lock<std::mutex> lock(checker_mu_);
    while (!checker_cv_.wait_for(lock, interval, [this] { return stopping_; })) {
      lock.unlock();
      for (const auto& a : CheckPaths()) spdlog::info("path checker: {}", a);
      lock.lock();
    }
  });
}

void NodeServer::CheckVolume(const std::string& staging, std::vector<std::string>* actions) {
  auto st = ReadStageState(staging);
  if (!st.ok()) return;
  // 1. The LUN moved to another device: swap to that device's portals.
  if (!st->device_address.empty()) {
    auto lun = Device(st->device_address)->GetLun(st->export_name);
    if (lun.ok() && !lun->moved_to().empty()) {
      auto moved = Device(lun->moved_to())->GetLun(st->export_name);
      if (moved.ok() && moved->portals_size() > 0) {
        std::vector<std::string> portals(moved->portals().begin(), moved->portals().end());
        const std::string from = st->device_address;
        st->device_address = lun->moved_to();
        Status s = SwapPaths(staging, &*st, portals);
        if (s.ok()) {
          actions->push_back("swap " + st->dm_name + " from device " + from + " to " +
                             lun->moved_to());
        } else {
          st->device_address = from;
          actions->push_back("swap " + st->dm_name + " to " + lun->moved_to() +
                             " failed: " + s.ToString());
        }
        return;
      }
    }
  }
  // 2. Portals that were not reachable at stage time.
  if (!st->missing.empty()) AddMissingPaths(staging, &*st, actions);
  // 3. Probe each path; fail dead ones in dm, reconnect and reinstate returning ones.
  auto dm_paths = host_->DmPaths(st->dm_name);
  if (!dm_paths.ok()) return;
  for (const auto& p : st->paths) {
    bool dm_active = true;
    for (const auto& d : *dm_paths) {
      if (d.dev == p.dev) dm_active = d.active;
    }
    Status probe = host_->ProbeNbd(p.nbd);
    if (probe.ok()) {
      if (!dm_active && host_->DmMessage(st->dm_name, "reinstate_path " + p.dev).ok()) {
        actions->push_back("reinstate_path " + st->dm_name + " " + p.dev);
      }
      continue;
    }
    if (dm_active && host_->DmMessage(st->dm_name, "fail_path " + p.dev).ok()) {
      actions->push_back("fail_path " + st->dm_name + " " + p.dev + " (" + probe.message() + ")");
    }
    if (Status r = host_->ReconnectNbd(p.nbd, p.portal, st->export_name); !r.ok()) continue;
    if (host_->ProbeNbd(p.nbd).ok() &&
        host_->DmMessage(st->dm_name, "reinstate_path " + p.dev).ok()) {
      actions->push_back("reinstate_path " + st->dm_name + " " + p.dev + " (reconnected to " +
                         p.portal + ")");
    }
  }
  // 4. No path at all for too long: fail I/O instead of queueing it.
  CheckNoPath(st->dm_name, actions);
}

void NodeServer::CheckNoPath(const std::string& dm_name, std::vector<std::string>* actions) {
  auto paths = host_->DmPaths(dm_name);
  if (!paths.ok()) return;
  bool any_active = false;
  for (const auto& d : *paths) any_active |= d.active;
  const auto now = options_.clock ? options_.clock() : std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(no_path_mu_);
  auto it = no_path_.find(dm_name);
  if (any_active) {
    if (it == no_path_.end()) return;
    if (it->second.failing && host_->DmMessage(dm_name, "queue_if_no_path").ok()) {
      actions->push_back("queue_if_no_path " + dm_name + " (a path is back)");
    }
    no_path_.erase(it);
    return;
  }
  if (it == no_path_.end()) it = no_path_.emplace(dm_name, NoPath{now, false}).first;
  if (!it->second.failing && now - it->second.since >= options_.no_path_queue &&
      host_->DmMessage(dm_name, "fail_if_no_path").ok()) {
    it->second.failing = true;
    actions->push_back(
        "fail_if_no_path " + dm_name + " (no path for " +
        std::to_string(
            std::chrono::duration_cast<std::chrono::seconds>(now - it->second.since).count()) +
        " s: I/O now fails instead of queueing)");
  }
}

void NodeServer::AddMissingPaths(const std::string& staging, StageState* st,
                                 std::vector<std::string>* actions) {
  StageState next = *st;
  next.missing.clear();
  std::vector<StagePath> added;
  for (const auto& portal : st->missing) {
    auto a = host_->ConnectNbd(portal, st->export_name);
    if (!a.ok()) {
      next.missing.push_back(portal);
      continue;
    }
    if (a->size != st->size) {
      (void)host_->DisconnectNbd(a->index);
      next.missing.push_back(portal);
      continue;
    }
    added.push_back(StagePath{a->index, a->dev, portal});
  }
  if (added.empty()) return;
  next.paths.insert(next.paths.end(), added.begin(), added.end());
  std::vector<std::string> devs;
  for (const auto& p : next.paths) devs.push_back(p.dev);
  Status s = WriteStageState(staging, next);
  if (s.ok()) s = host_->DmReload(st->dm_name, MultipathTable(st->size, devs), st->readonly);
  if (!s.ok()) {
    for (const auto& p : added) (void)host_->DisconnectNbd(p.nbd);
    (void)WriteStageState(staging, *st);
    actions->push_back("add paths to " + st->dm_name + " failed: " + s.ToString());
    return;
  }
  for (const auto& p : added) {
    actions->push_back("add_path " + st->dm_name + " " + p.dev + " (" + p.portal + ")");
  }
  *st = std::move(next);
}

std::vector<std::string> NodeServer::CheckPaths() {
  std::vector<std::string> actions;
  std::map<std::string, std::string> staged;
  {
    std::lock_guard<std::mutex> lock(registry_mu_);
    staged = staged_;
  }
  // Without mu_: a probe of a hung path takes up to the nbd request timeout and must not
  // hold up calls on other volumes. A volume with a call in progress is left for the
  // next pass.
  for (const auto& [dm, staging] : staged) {
    auto st = ReadStageState(staging);
    if (!st.ok()) continue;
    InFlightGuard guard(&in_flight_, st->volume_id.empty() ? dm : st->volume_id);
    if (!guard.status().ok()) continue;
    CheckVolume(staging, &actions);
  }
  return actions;
}

}  // namespace strata::csi

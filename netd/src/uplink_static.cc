#include "strata/netd/uplink_static.h"

#include <spdlog/spdlog.h>

#include "strata/kube/conditions.h"
#include "strata/kube/yaml.h"

namespace strata::netd {

Status RunStaticUplinks(UplinkAgent* agent, Env* env, const StaticUplinkOptions& options,
                        kube::Clock* clock, std::stop_token stop) {
  kube::Json entry = kube::Json::object();
  std::string name;
  auto next_resync = clock->Now();
  while (!stop.stop_requested()) {
    std::optional<kube::Condition> ready;
    if (clock->Now() >= next_resync) {
      next_resync = clock->Now() + options.resync_interval;
      Result<api::NodeNetworkPolicy> policy = NotFoundError("");
      auto text = env->ReadFile(options.policy_file);
      if (!text.ok()) {
        policy = text.status();
      } else {
        auto json = kube::YamlToJson(*text);
        policy = json.ok() ? api::NodeNetworkPolicyFromJson(*json)
                           : Result<api::NodeNetworkPolicy>(json.status());
      }
      int64_t generation = 0;
      Status s = policy.status();
      if (s.code() == StatusCode::kNotFound && !name.empty()) {
        // The file was removed: like a static pod, its policy goes (what it created, only).
        spdlog::info("{} is gone: removing NodeNetworkPolicy {}", options.policy_file, name);
        STRATA_RETURN_IF_ERROR(agent->Remove(name));
        name.clear();
      }
      if (policy.ok()) {
        if (!name.empty() && name != policy->metadata.name) {
          // The file now holds another policy: the old one's bond goes.
          STRATA_RETURN_IF_ERROR(agent->Remove(name));
        }
        name = policy->metadata.name;
        generation = policy->metadata.generation.value_or(0);
        std::vector<std::string> changes;
        s = agent->Apply(name, policy->metadata.uid, policy->spec, &changes);
        for (const std::string& c : changes)
          spdlog::info("NodeNetworkPolicy {} (file): {}", name, c);
      }
      if (s.ok()) {
        ready = ReadyCondition(true, "Applied", "the live bond and bridge match the policy",
                               generation);
      } else {
        // Logged when it changes, not at every resync.
        auto previous = kube::FindCondition(entry, "Ready");
        if (!previous || previous->message != s.message()) {
          spdlog::error("{}: {}", options.policy_file, s.ToString());
        }
        ready = ReadyCondition(
            false, s.code() == StatusCode::kInvalidArgument ? "InvalidSpec" : "ApplyFailed",
            s.message(), generation);
      }
    }
    agent->Sample();
    kube::Json fresh = NodeUplinkEntry(options.node_name, entry,
                                       name.empty() ? std::nullopt : agent->Observed(name), ready,
                                       clock->WallNow());
    if (!name.empty()) fresh["policy"] = name;
    if (fresh != entry) {
      STRATA_RETURN_IF_ERROR(env->WriteFileAtomically(options.status_file, fresh.dump() + "\n"));
      entry = std::move(fresh);
    }
    clock->SleepFor(options.sample_interval, stop);
  }
  return Status::Ok();
}

}  // namespace strata::netd

#include "strata/netd/uplink_state.h"

#include <nlohmann/json.hpp>

namespace strata::netd {

using nlohmann::json;

Result<std::map<std::string, UplinkOwnership>> UplinkStateFile::Load() const {
  std::map<std::string, UplinkOwnership> out;
  auto text = env_->ReadFile(path_);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return out;
    return text.status();
  }
  const json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  const auto corrupt = [&](const std::string& why) {
    return FailedPreconditionError(path_ + ": " + why +
                                   "; remove it only after checking by hand what "
                                   "strata-netd created on this node");
  };
  if (!j.is_object() || j.value("version", 0) != 1 || !j.contains("policies") ||
      !j["policies"].is_object()) {
    return corrupt("not a version 1 uplink state file");
  }
  for (const auto& [name, p] : j["policies"].items()) {
    if (!p.is_object()) return corrupt("policies." + name + " is not an object");
    UplinkOwnership o;
    try {
      o.policy_uid = p.value("uid", "");
      o.bond = p.value("bond", "");
      o.created_bond = p.value("createdBond", false);
      o.enslaved = p.value("enslaved", std::vector<std::string>{});
      o.bridge = p.value("bridge", "");
      o.created_bridge = p.value("createdBridge", false);
    } catch (const json::exception& e) {
      return corrupt("policies." + name + ": " + e.what());
    }
    out[name] = std::move(o);
  }
  return out;
}

Status UplinkStateFile::Save(const std::map<std::string, UplinkOwnership>& policies) const {
  json j = {{"version", 1}, {"policies", json::object()}};
  for (const auto& [name, o] : policies) {
    j["policies"][name] = {
        {"uid", o.policy_uid},    {"bond", o.bond},     {"createdBond", o.created_bond},
        {"enslaved", o.enslaved}, {"bridge", o.bridge}, {"createdBridge", o.created_bridge}};
  }
  return env_->WriteFileAtomically(path_, j.dump(2) + "\n");
}

}  // namespace strata::netd

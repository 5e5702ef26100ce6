#include "volume_params.h"

#include "strata/csi/volume_util.h"

namespace strata::csi {

namespace sv1 = ::strata::storage::v1;

namespace {

Result<bool> ParseBool(const std::string& value, const std::string& field) {
  if (value == "true") return true;
  if (value == "false") return false;
  return InvalidArgumentError(field + ": '" + value + "' is not true or false");
}

}  // namespace

Result<CreateParams> ParseCreateParams(const ParameterMap& p) {
  CreateParams out;
  for (const auto& [key, value] : p) {
    if (key == "tier") {
      auto t = ParseTier(value);
      if (!t.ok()) return t.status().WithContext("parameters.tier");
      out.tier = *t;
    } else if (key == "dedup") {
      auto d = ParseBool(value, "parameters.dedup");
      if (!d.ok()) return d.status();
      out.dedup = *d;
    } else if (key == "owner") {
      out.owner = value;
    } else if (key == "device") {
      out.device = value;
    } else if (key == kPvcNameKey || key == kPvcNamespaceKey || key == kPvNameKey) {
      out.metadata[key] = value;
    } else if (key.rfind(kCoParameterPrefix, 0) != 0) {
      return InvalidArgumentError("parameters." + key +
                                  ": unknown parameter (tier, dedup, owner, device)");
    }
  }
  if (out.owner.empty()) {
    auto ns = out.metadata.find(std::string(kPvcNamespaceKey));
    if (ns != out.metadata.end()) out.owner = ns->second;
  }
  return out;
}

Result<MutableParams> ParseMutableParams(const ParameterMap& p, std::string_view field) {
  MutableParams out;
  const std::string f(field);
  for (const auto& [key, value] : p) {
    if (key == "tier") {
      auto t = ParseTier(value);
      if (!t.ok()) return t.status().WithContext(f + ".tier");
      if (*t == sv1::TIER_CLASS_UNSPECIFIED) {
        return InvalidArgumentError(f + ".tier: a tier is required (ssd, sas or sata)");
      }
      out.tier = *t;
    } else if (key == "dedup") {
      auto d = ParseBool(value, f + ".dedup");
      if (!d.ok()) return d.status();
      out.dedup = *d;
    } else if (key == "owner" || key == "device") {
      return InvalidArgumentError(f + "." + key +
                                  ": cannot change after creation (mutable: tier, dedup)");
    } else {
      return InvalidArgumentError(f + "." + key + ": unknown parameter (mutable: tier, dedup)");
    }
  }
  return out;
}

void ApplyMutableParams(const MutableParams& m, CreateParams* params) {
  if (m.tier) params->tier = *m.tier;
  if (m.dedup) params->dedup = *m.dedup;
}

}  // namespace strata::csi

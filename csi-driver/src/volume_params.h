#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "strata/common/result.h"
#include "strata/storage/v1/storage.pb.h"

namespace strata::csi {

// Kubernetes' external-provisioner and external-snapshotter pass these through; they are not
// ours to check.
inline constexpr std::string_view kCoParameterPrefix = "csi.storage.k8s.io/";
// Passed with --extra-create-metadata: the volume's Kubernetes owner. Kept with the LUN as
// CreateLunRequest.metadata under the same keys; the PVC's namespace is the LUN's owner unless
// parameters.owner says otherwise.
inline constexpr std::string_view kPvcNameKey = "csi.storage.k8s.io/pvc/name";
inline constexpr std::string_view kPvcNamespaceKey = "csi.storage.k8s.io/pvc/namespace";
inline constexpr std::string_view kPvNameKey = "csi.storage.k8s.io/pv/name";

using ParameterMap = google::protobuf::Map<std::string, std::string>;

// StorageClass parameters understood by CreateVolume (and checked by ValidateVolumeCapabilities
// and GetCapacity).
struct CreateParams {
  storage::v1::TierClass tier = storage::v1::TIER_CLASS_UNSPECIFIED;
  bool dedup = false;
  std::string owner;
  std::string device;
  std::map<std::string, std::string> metadata;  // the kPvc*/kPv* keys given
};

// INVALID_ARGUMENT naming parameters.KEY for an unknown key or a bad value.
Result<CreateParams> ParseCreateParams(const ParameterMap& parameters);

// The parameters a volume may change after creation (ControllerModifyVolume, and
// CreateVolume's mutable_parameters, which take precedence over `parameters`): tier (a live
// move to that tier of the volume's device) and dedup. Unset: not asked for.
struct MutableParams {
  std::optional<storage::v1::TierClass> tier;
  std::optional<bool> dedup;
  bool empty() const { return !tier && !dedup; }
};

// INVALID_ARGUMENT naming `field`.KEY: for owner and device (fixed at creation), for any other
// key but tier and dedup, and for a bad value (tier must name a class: ssd, sas or sata).
Result<MutableParams> ParseMutableParams(const ParameterMap& parameters, std::string_view field);

// `params` with `mutable_params` applied over it.
void ApplyMutableParams(const MutableParams& mutable_params, CreateParams* params);

}  // namespace strata::csi

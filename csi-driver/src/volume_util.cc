#include "strata/csi/volume_util.h"

#include <arpa/inet.h>
#include <openssl/evp.h>

#include <cstdio>

namespace strata::csi {

using ::csi::v1::VolumeCapability;
using Mode = ::csi::v1::VolumeCapability_AccessMode_Mode;

namespace {

// `prefix` and the first 32 hex digits of SHA-256(name).
std::string HashedName(std::string_view prefix, std::string_view name) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(name.data(), name.size(), digest, &len, EVP_sha256(), nullptr);
  std::string out(prefix);
  char hex[3];
  for (unsigned int i = 0; i < 16 && i < len; ++i) {
    std::snprintf(hex, sizeof hex, "%02x", digest[i]);
    out += hex;
  }
  return out;
}

}  // namespace

std::string LunNameFor(std::string_view csi_name) { return HashedName(kLunPrefix, csi_name); }

std::string SnapshotNameFor(std::string_view csi_name) {
  return HashedName(kSnapshotPrefix, csi_name);
}

Result<SnapshotId> ParseSnapshotId(std::string_view snapshot_id) {
  if (snapshot_id.empty()) return InvalidArgumentError("snapshot_id: required");
  auto slash = snapshot_id.find('/');
  if (slash == std::string_view::npos || slash == 0 ||
      snapshot_id.find('/', slash + 1) != std::string_view::npos ||
      snapshot_id.substr(slash + 1).rfind(kSnapshotPrefix, 0) != 0) {
    return NotFoundError("snapshot_id '" + std::string(snapshot_id) +
                         "': no such snapshot (ids are DEVICE/" + kSnapshotPrefix + "...)");
  }
  return SnapshotId{std::string(snapshot_id.substr(0, slash)),
                    std::string(snapshot_id.substr(slash + 1))};
}

Result<VolumeId> ParseVolumeId(std::string_view volume_id) {
  if (volume_id.empty()) return InvalidArgumentError("volume_id: required");
  auto slash = volume_id.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == volume_id.size() ||
      volume_id.find('/', slash + 1) != std::string_view::npos) {
    return NotFoundError("volume_id '" + std::string(volume_id) +
                         "': no such volume (ids are DEVICE/LUN)");
  }
  return VolumeId{std::string(volume_id.substr(0, slash)),
                  std::string(volume_id.substr(slash + 1))};
}

Result<uint64_t> SizeForRange(const ::csi::v1::CapacityRange* range) {
  const uint64_t required = range ? static_cast<uint64_t>(range->required_bytes()) : 0;
  const uint64_t limit = range ? static_cast<uint64_t>(range->limit_bytes()) : 0;
  if ((range && (range->required_bytes() < 0 || range->limit_bytes() < 0))) {
    return InvalidArgumentError("capacity_range: bytes must not be negative");
  }
  if (limit != 0 && limit < required) {
    return InvalidArgumentError("capacity_range: limit_bytes " + std::to_string(limit) +
                                " is less than required_bytes " + std::to_string(required));
  }
  uint64_t size;
  if (required == 0) {
    size = kDefaultVolumeBytes;
    if (limit != 0 && limit < size) size = limit / kSizeAlignment * kSizeAlignment;
    if (size == 0) {
      return OutOfRangeError("capacity_range: limit_bytes " + std::to_string(limit) +
                             " is below the 4 KiB minimum");
    }
  } else {
    size = (required + kSizeAlignment - 1) / kSizeAlignment * kSizeAlignment;
  }
  if (limit != 0 && size > limit) {
    return OutOfRangeError("capacity_range: required_bytes rounded up to 4 KiB (" +
                           std::to_string(size) + ") exceeds limit_bytes " + std::to_string(limit));
  }
  return size;
}

bool SizeFits(uint64_t size, const ::csi::v1::CapacityRange* range) {
  if (range == nullptr) return true;
  if (size < static_cast<uint64_t>(range->required_bytes())) return false;
  return range->limit_bytes() == 0 || size <= static_cast<uint64_t>(range->limit_bytes());
}

bool IsSingleNode(Mode mode) {
  switch (mode) {
    case VolumeCapability::AccessMode::SINGLE_NODE_WRITER:
    case VolumeCapability::AccessMode::SINGLE_NODE_READER_ONLY:
    case VolumeCapability::AccessMode::SINGLE_NODE_SINGLE_WRITER:
    case VolumeCapability::AccessMode::SINGLE_NODE_MULTI_WRITER:
      return true;
    default:
      return false;
  }
}

Status ValidateCapability(const VolumeCapability& cap, std::string_view field) {
  const std::string f(field);
  if (!cap.has_block() && !cap.has_mount()) {
    return InvalidArgumentError(f + ": access_type: one of block or mount is required");
  }
  if (!cap.has_access_mode() || cap.access_mode().mode() == VolumeCapability::AccessMode::UNKNOWN) {
    return InvalidArgumentError(f + ".access_mode: required");
  }
  const Mode mode = cap.access_mode().mode();
  if (!::csi::v1::VolumeCapability_AccessMode_Mode_IsValid(mode)) {
    return InvalidArgumentError(f + ".access_mode: unknown mode " + std::to_string(mode));
  }
  if (cap.has_mount()) {
    const std::string& fs = cap.mount().fs_type();
    if (!fs.empty() && fs != "ext4" && fs != "xfs") {
      return InvalidArgumentError(f + ".mount.fs_type: '" + fs +
                                  "' is not supported (ext4 or xfs)");
    }
    if (mode == VolumeCapability::AccessMode::MULTI_NODE_MULTI_WRITER ||
        mode == VolumeCapability::AccessMode::MULTI_NODE_SINGLE_WRITER) {
      return InvalidArgumentError(
          f + ".access_mode: " + VolumeCapability_AccessMode_Mode_Name(mode) +
          " is only supported for block volumes (a file system cannot be mounted on "
          "several nodes)");
    }
  }
  return Status::Ok();
}

Status ValidateCapabilities(const google::protobuf::RepeatedPtrField<VolumeCapability>& caps,
                            std::string_view field) {
  if (caps.empty()) return InvalidArgumentError(std::string(field) + ": required");
  for (int i = 0; i < caps.size(); ++i) {
    STRATA_RETURN_IF_ERROR(
        ValidateCapability(caps[i], std::string(field) + "[" + std::to_string(i) + "]"));
  }
  return Status::Ok();
}

Result<NodeId> ParseNodeId(std::string_view node_id) {
  if (node_id.empty()) return InvalidArgumentError("node_id: required");
  auto at = node_id.rfind('@');
  if (at == std::string_view::npos || at == 0) {
    return NotFoundError("node_id '" + std::string(node_id) +
                         "': no such node (node ids are NAME@IP, as NodeGetInfo reports them)");
  }
  NodeId out{std::string(node_id.substr(0, at)), std::string(node_id.substr(at + 1))};
  unsigned char buf[16];
  if (inet_pton(AF_INET, out.ip.c_str(), buf) != 1 &&
      inet_pton(AF_INET6, out.ip.c_str(), buf) != 1) {
    return NotFoundError("node_id '" + std::string(node_id) + "': no such node ('" + out.ip +
                         "' is not an IP address)");
  }
  return out;
}

bool ZoneAllowed(const std::string& zone, const ::csi::v1::TopologyRequirement* req) {
  if (zone.empty() || req == nullptr || req->requisite().empty()) return true;
  for (const auto& t : req->requisite()) {
    auto it = t.segments().find(kZoneKey);
    if (it == t.segments().end() || it->second == zone) return true;
  }
  return false;
}

int ZonePreference(const std::string& zone, const ::csi::v1::TopologyRequirement* req) {
  if (req == nullptr) return 0;
  for (int i = 0; i < req->preferred_size(); ++i) {
    auto it = req->preferred(i).segments().find(kZoneKey);
    if (it != req->preferred(i).segments().end() && it->second == zone) return i;
  }
  return req->preferred_size();
}

}  // namespace strata::csi

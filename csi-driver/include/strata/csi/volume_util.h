#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "csi/v1/csi.pb.h"
#include "strata/common/result.h"
#include "strata/device/tier.h"
#include "strata/storage/v1/storage.pb.h"

namespace strata::csi {

// The CSI driver name (GetPluginInfo) and the prefix of every LUN it creates.
inline constexpr char kDriverName[] = "block.csi.strata.io";
inline constexpr char kLunPrefix[] = "csi-";
// The prefix of every snapshot it takes (snapshot names are the device's own namespace).
inline constexpr char kSnapshotPrefix[] = "csi-snap-";
// Sizes are rounded up to this (the device's default block size).
inline constexpr uint64_t kSizeAlignment = 4096;
inline constexpr uint64_t kDefaultVolumeBytes = 1ull << 30;
// The one topology segment: the zone a device (--device-topology) or node (--zone) is in.
inline constexpr char kZoneKey[] = "topology.block.csi.strata.io/zone";

// The LUN that backs the CSI volume named `csi_name`: "csi-" and the first 32 hex digits
// of SHA-256(csi_name). Deterministic, so a repeated CreateVolume finds the same LUN;
// always a valid LUN name (letters, digits, '-') whatever the CO's name holds.
std::string LunNameFor(std::string_view csi_name);

// The device snapshot that backs the CSI snapshot named `csi_name`: "csi-snap-" and the
// first 32 hex digits of SHA-256(csi_name) (deterministic, like LunNameFor).
std::string SnapshotNameFor(std::string_view csi_name);

// volume_id is "DEVICE/LUN": the --device name the driver knows the device by and the
// LUN's name on it.
struct VolumeId {
  std::string device;
  std::string lun;
  std::string ToString() const { return device + "/" + lun; }
};
// INVALID_ARGUMENT naming volume_id when empty; NOT_FOUND when it is not of the form
// DEVICE/LUN (the CSI spec: a volume id the plugin never produced does not exist).
Result<VolumeId> ParseVolumeId(std::string_view volume_id);

// snapshot_id is "DEVICE/SNAPSHOT", like volume ids: the --device name of the device that
// holds the snapshot (where it was taken: snapshots stay when their LUN moves) and the
// snapshot's name there.
struct SnapshotId {
  std::string device;
  std::string name;
  std::string ToString() const { return device + "/" + name; }
};
// INVALID_ARGUMENT naming snapshot_id when empty; NOT_FOUND when it is not DEVICE/NAME with
// a name of ours (kSnapshotPrefix).
Result<SnapshotId> ParseSnapshotId(std::string_view snapshot_id);

// The size to create for a CapacityRange: required_bytes rounded up to 4 KiB, or the
// 1 GiB default (capped at limit_bytes, rounded down). INVALID_ARGUMENT when
// limit < required; OUT_OF_RANGE when rounding passes the limit.
Result<uint64_t> SizeForRange(const ::csi::v1::CapacityRange* range);
// Whether `size` satisfies `range` (unset = any size).
bool SizeFits(uint64_t size, const ::csi::v1::CapacityRange* range);

// Validates one capability: exactly one of block or mount; a known access mode; a
// mount's fs_type empty, ext4 or xfs; MULTI_NODE_SINGLE_WRITER and MULTI_NODE_MULTI_WRITER
// only for block (a local file system mounted on two nodes corrupts). `field` names it
// in the error (e.g. "volume_capabilities[1]").
Status ValidateCapability(const ::csi::v1::VolumeCapability& cap, std::string_view field);
// The same for every element; INVALID_ARGUMENT naming `field` when the list is empty.
Status ValidateCapabilities(
    const google::protobuf::RepeatedPtrField<::csi::v1::VolumeCapability>& caps,
    std::string_view field);
// SINGLE_NODE_* and *_READER_ONLY-on-one-node modes: the volume may be published to one
// node at a time.
bool IsSingleNode(::csi::v1::VolumeCapability_AccessMode_Mode mode);

// Node ids are "NAME@IP" (NodeGetInfo returns the node name and the IP its NBD traffic
// comes from); the IP is what the LUN's access list is given on publish. INVALID_ARGUMENT
// naming node_id when empty; NOT_FOUND for any other id (the CSI spec's code for a node
// that does not exist: no node plugin of ours reports such an id).
struct NodeId {
  std::string name;
  std::string ip;
};
Result<NodeId> ParseNodeId(std::string_view node_id);

// Whether a device in `zone` ("" = no zone: reachable from everywhere) satisfies
// the requisite topologies. No requisite, or a requisite segment without kZoneKey,
// allows any device.
bool ZoneAllowed(const std::string& zone, const ::csi::v1::TopologyRequirement* req);
// The position of `zone` in the preferred list (lower is better; size() when absent).
int ZonePreference(const std::string& zone, const ::csi::v1::TopologyRequirement* req);

// StorageClass parameter "tier": ssd|sas|sata (empty: unspecified, the device's first tier);
// the names shared by every component (strata/device/tier.h).
using device::ParseTier;
using device::TierName;

}  // namespace strata::csi

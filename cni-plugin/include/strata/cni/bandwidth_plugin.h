#pragma once

#include <string>

#include "strata/cni/bandwidth.h"
#include "strata/cni/skel.h"
#include "strata/net/netlink.h"

namespace strata::cni {

// strata-bandwidth: a chained plugin (needs prevResult on ADD). Config, as the reference plugin:
//   {"type":"strata-bandwidth","ingressRate":bits/s,"ingressBurst":bits,"egressRate":..,
//    "egressBurst":.., "capabilities":{"bandwidth":true}, "attachmentsDir": DIR}
// runtimeConfig.bandwidth (same four fields), when present, replaces the static fields.
// Every successful ADD records the pod's attachment (strata/net/attachment.h) in the attachments
// dir ("attachmentsDir" in the config, else the plugin's default), and DEL removes it, so
// strata-netd finds the pod's interfaces and can change their shaping live.
// Shaping placement and DEL cost: see bandwidth.h.
class BandwidthPlugin final : public Plugin {
 public:
  // `netlink` must outlive the plugin.
  // `attachments_dir` empty: records only where the config names a dir.
  explicit BandwidthPlugin(net::NetlinkFactory* netlink, std::string attachments_dir = "")
      : netlink_(netlink), attachments_dir_(std::move(attachments_dir)) {}

  Result<nlohmann::json> Add(const CmdContext& ctx) override;
  Status Del(const CmdContext& ctx) override;
  Status Check(const CmdContext& ctx) override;
  Status Gc(const CmdContext&) override { return Status::Ok(); }  // no state beyond the links
  Status Ready(const CmdContext&) override { return Status::Ok(); }

  // The limits a config asks for (runtimeConfig.bandwidth over the static fields).
  static Result<BandwidthLimits> ConfiguredLimits(const NetConf& conf);

 private:
  std::string AttachmentsDir(const NetConf& conf) const;

  net::NetlinkFactory* netlink_;
  const std::string attachments_dir_;
};

}  // namespace strata::cni

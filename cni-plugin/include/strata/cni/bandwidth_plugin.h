#pragma once

#include "strata/cni/bandwidth.h"
#include "strata/cni/skel.h"
#include "strata/net/netlink.h"

namespace strata::cni {

// strata-bandwidth: a chained plugin (needs prevResult on ADD). Config, as the reference plugin:
//   {"type":"strata-bandwidth","ingressRate":bits/s,"ingressBurst":bits,"egressRate":..,
//    "egressBurst":.., "capabilities":{"bandwidth":true}}
// runtimeConfig.bandwidth (same four fields), when present, replaces the static fields.
// Shaping placement and DEL cost: see bandwidth.h.
class BandwidthPlugin final : public Plugin {
 public:
  // `netlink` must outlive the plugin.
  explicit BandwidthPlugin(net::NetlinkFactory* netlink) : netlink_(netlink) {}

  Result<nlohmann::json> Add(const CmdContext& ctx) override;
  Status Del(const CmdContext& ctx) override;
  Status Check(const CmdContext& ctx) override;
  Status Gc(const CmdContext&) override { return Status::Ok(); }  // no state beyond the links
  Status Ready(const CmdContext&) override { return Status::Ok(); }

  // The limits a config asks for (runtimeConfig.bandwidth over the static fields).
  static Result<BandwidthLimits> ConfiguredLimits(const NetConf& conf);

 private:
  net::NetlinkFactory* netlink_;
};

}  // namespace strata::cni

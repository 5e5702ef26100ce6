#include "strata/cni/bandwidth_plugin.h"

#include "strata/net/attachment.h"

namespace strata::cni {

using nlohmann::json;

Result<BandwidthLimits> BandwidthPlugin::ConfiguredLimits(const NetConf& conf) {
  auto rc = conf.runtime_config.find("bandwidth");
  if (rc != conf.runtime_config.end() && !rc->is_null()) {
    if (!rc->is_object()) return InvalidArgumentError("runtimeConfig.bandwidth: must be an object");
    return ParseLimits(*rc, "runtimeConfig.bandwidth.");
  }
  return ParseLimits(conf.raw, "");
}

std::string BandwidthPlugin::AttachmentsDir(const NetConf& conf) const {
  auto it = conf.raw.find("attachmentsDir");
  if (it != conf.raw.end() && it->is_string() && !it->get<std::string>().empty()) {
    return it->get<std::string>();
  }
  return attachments_dir_;
}

Result<json> BandwidthPlugin::Add(const CmdContext& ctx) {
  STRATA_ASSIGN_OR_RETURN(BandwidthLimits limits, ConfiguredLimits(ctx.conf));
  if (!ctx.conf.prev_result) {
    return InvalidArgumentError(
        "prevResult: required: strata-bandwidth is chained after the plugin that creates " +
        ctx.args.ifname);
  }
  const std::string dir = AttachmentsDir(ctx.conf);
  auto attach = ctx.conf.raw.find("attachmentsDir");
  if (attach != ctx.conf.raw.end() && !attach->is_null() && !attach->is_string()) {
    return InvalidArgumentError("attachmentsDir: must be a string");
  }
  const bool shape = limits.ShapesIngress() || limits.ShapesEgress();
  if (!shape && dir.empty()) return *ctx.conf.prev_result;
  STRATA_ASSIGN_OR_RETURN(auto host, netlink_->Open(""));
  STRATA_ASSIGN_OR_RETURN(auto pod, netlink_->Open(ctx.args.netns));
  auto target = ResolveShapingTarget(*host, *pod, ctx.args.ifname);
  if (!target.ok()) {
    return InvalidArgumentError("CNI_IFNAME: " + ctx.args.ifname + " not found in " +
                                ctx.args.netns + " (" + target.status().message() + ")");
  }
  if (shape) STRATA_RETURN_IF_ERROR(ApplyLimits(*target, limits));
  if (!dir.empty()) {
    net::Attachment a;
    a.container_id = ctx.args.container_id;
    a.ifname = ctx.args.ifname;
    a.netns = ctx.args.netns;
    net::SetPodFromCniArgs(ctx.args.args, &a);
    if (target->host_link) a.host_interface = target->host_link->name;
    a.plugin = "strata-bandwidth";
    if (Status s = net::WriteAttachment(dir, a); !s.ok()) {
      // Nothing half-applied: the shaping this ADD made goes again.
      if (shape) (void)RemoveLimits(*target);
      return s.WithContext("attachmentsDir");
    }
  }
  return *ctx.conf.prev_result;
}

Status BandwidthPlugin::Del(const CmdContext& ctx) {
  // DEL must succeed on whatever is left: no netns, no link, no qdisc are all "done". The config
  // is not re-validated: a DEL of an attachment made under an older config must still work.
  if (const std::string dir = AttachmentsDir(ctx.conf); !dir.empty()) {
    STRATA_RETURN_IF_ERROR(net::RemoveAttachment(dir, ctx.args.container_id, ctx.args.ifname)
                               .WithContext("attachmentsDir"));
  }
  if (ctx.args.netns.empty()) return Status::Ok();
  auto pod = netlink_->Open(ctx.args.netns);
  if (!pod.ok()) {
    return pod.status().code() == StatusCode::kNotFound ? Status::Ok() : pod.status();
  }
  STRATA_ASSIGN_OR_RETURN(auto host, netlink_->Open(""));
  auto target = ResolveShapingTarget(*host, **pod, ctx.args.ifname);
  if (!target.ok()) {
    return target.status().code() == StatusCode::kNotFound ? Status::Ok() : target.status();
  }
  return RemoveLimits(*target);
}

Status BandwidthPlugin::Check(const CmdContext& ctx) {
  STRATA_ASSIGN_OR_RETURN(BandwidthLimits wanted, ConfiguredLimits(ctx.conf));
  if (!ctx.conf.prev_result) return InvalidArgumentError("prevResult: required for CHECK");
  STRATA_ASSIGN_OR_RETURN(auto host, netlink_->Open(""));
  STRATA_ASSIGN_OR_RETURN(auto pod, netlink_->Open(ctx.args.netns));
  STRATA_ASSIGN_OR_RETURN(ShapingTarget target, ResolveShapingTarget(*host, *pod, ctx.args.ifname));
  STRATA_ASSIGN_OR_RETURN(BandwidthLimits actual, ReadLimits(target));
  if (!LimitsMatch(wanted, actual)) {
    return CheckMismatchError("bandwidth of " + ctx.args.ifname + " is " +
                              LimitsToJson(actual).dump() + ", configured " +
                              LimitsToJson(wanted).dump());
  }
  return Status::Ok();
}

}  // namespace strata::cni

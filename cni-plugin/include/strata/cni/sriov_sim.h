#pragma once

// SIMULATED SR-IOV for tests on machines without SR-IOV hardware.
//
// TEST ONLY, and only when switched on explicitly: config "simulatePF": true or env
// STRATA_CNI_SIMULATE_PF=1. A sysfs-root override alone (config "sysfsRoot", env
// STRATA_CNI_SYSFS_ROOT; e.g. a DaemonSet's /host/sys) never turns it on: that is a real sysfs.
// The tests set both: strata-sriov reads a laid-out PF/VF tree in which each "VF" netdev is really
// one end of a veth. What is real and what is simulated then:
//   real:      everything on the VF's netdev: moving it into the pod namespace and back, renaming,
//              MAC, MTU, link up/down (the veth is a real kernel interface);
//   simulated: the PF-level IFLA_VF_* settings (VF MAC as the PF sees it, VLAN + QoS, spoof check,
//              trust, link state, min/max tx rate). A veth has no VFs, so this manager keeps them
//              in JSON files, <dir>/<pf>/vf<N>.json, that tests read back.
// Every other call goes to the wrapped (real) manager unchanged.

#include <string>

#include "strata/net/netlink.h"

namespace strata::cni {

net::NetlinkManagerPtr NewSimulatedVfNetlinkManager(net::NetlinkManagerPtr real,
                                                    std::string sim_dir);

}  // namespace strata::cni

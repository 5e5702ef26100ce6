#include "strata/netd/pod_index_reconciler.h"

#include "strata/kube/labels.h"
#include "strata/vnc/resolve.h"

namespace strata::netd {

Result<ctrl::ReconcileResult> PodIndexReconciler::Reconcile(const std::string& key) {
  size_t slash = key.find('/');
  if (slash == std::string::npos) return ctrl::ReconcileResult{};  // pods are namespaced
  const std::string ns = key.substr(0, slash), name = key.substr(slash + 1);
  auto pod = pods_->Get(key);
  if (!pod) {
    STRATA_RETURN_IF_ERROR(store_->RemovePod(ns, name));
    return ctrl::ReconcileResult{};
  }
  vnc::PodEntry entry;
  entry.namespace_ = ns;
  entry.name = name;
  entry.uid = (*pod)["metadata"].value("uid", "");
  entry.workload = vnc::WorkloadOfPod(ns, name, kube::LabelsOf(*pod));
  if (!vnc::ValidateWorkloadKey(entry.workload, "workload").ok()) {
    // A label value that is no workload name (e.g. upper case): the pod has no workload.
    STRATA_RETURN_IF_ERROR(store_->RemovePod(ns, name));
    return ctrl::ReconcileResult{};
  }
  if (auto existing = store_->GetPod(ns, name); existing.ok() && *existing == entry) {
    return ctrl::ReconcileResult{};  // a resync: no write
  }
  STRATA_RETURN_IF_ERROR(store_->PutPod(entry));
  return ctrl::ReconcileResult{};
}

}  // namespace strata::netd

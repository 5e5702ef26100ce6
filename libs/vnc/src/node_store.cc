#include "strata/vnc/node_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

#include "strata/common/file_util.h"

namespace strata::vnc {
namespace {

using nlohmann::json;

constexpr char kConfigs[] = "configs";
constexpr char kPods[] = "pods";
constexpr char kApplied[] = "applied";

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool SafeComponent(const std::string& s) {
  if (s.empty() || s == "." || s == ".." || s.size() > 200) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

// An exclusive flock(2) on a file, released by the destructor (and by the kernel if we die).
class FileLock {
 public:
  static Result<FileLock> Acquire(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoError("open " + path, errno);
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      Status s = ErrnoError("flock " + path, errno);
      ::close(fd);
      return s;
    }
    return FileLock(fd);
  }
  FileLock(FileLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

Result<json> ReadJson(const std::string& path) {
  STRATA_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status(StatusCode::kDataLoss, path + ": not JSON");
  return j;
}

Status WriteJson(const std::string& path, const json& j) {
  return WriteFileAtomically(path, j.dump(2) + "\n");
}

Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError("unlink " + path, errno);
  return Status::Ok();
}

// Regular *.json files of `dir` (temp files of interrupted writes, "*.tmp", are not records).
std::vector<std::string> JsonFiles(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) {
      out.push_back(dir + "/" + name);
    }
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Status ReadStr(const json& j, const char* key, std::string* out, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) {
    return Status(StatusCode::kDataLoss, path + ": " + key + " must be a string");
  }
  *out = it->get<std::string>();
  return Status::Ok();
}

json KeyToJson(const WorkloadKey& k) {
  return {{"namespace", k.namespace_}, {"kind", k.kind}, {"name", k.name}};
}

Status KeyFromJson(const json& j, const std::string& path, WorkloadKey* k) {
  if (!j.is_object()) return Status(StatusCode::kDataLoss, path + ": workload must be an object");
  STRATA_RETURN_IF_ERROR(ReadStr(j, "namespace", &k->namespace_, path));
  STRATA_RETURN_IF_ERROR(ReadStr(j, "kind", &k->kind, path));
  STRATA_RETURN_IF_ERROR(ReadStr(j, "name", &k->name, path));
  Status valid = ValidateWorkloadKey(*k, "workload");
  if (!valid.ok()) return Status(StatusCode::kDataLoss, path + ": " + valid.message());
  return Status::Ok();
}

Result<PodEntry> PodFromJson(const json& j, const std::string& path) {
  if (!j.is_object()) return Status(StatusCode::kDataLoss, path + ": not an object");
  PodEntry e;
  STRATA_RETURN_IF_ERROR(ReadStr(j, "namespace", &e.namespace_, path));
  STRATA_RETURN_IF_ERROR(ReadStr(j, "name", &e.name, path));
  STRATA_RETURN_IF_ERROR(ReadStr(j, "uid", &e.uid, path));
  STRATA_RETURN_IF_ERROR(KeyFromJson(j.value("workload", json()), path, &e.workload));
  return e;
}

Result<AppliedRecord> AppliedFromJson(const json& j, const std::string& path) {
  if (!j.is_object()) return Status(StatusCode::kDataLoss, path + ": not an object");
  AppliedRecord r;
  for (auto [key, field] : {std::pair{"containerID", &r.container_id},
                            {"ifname", &r.ifname},
                            {"podNamespace", &r.pod_namespace},
                            {"podName", &r.pod_name},
                            {"podUID", &r.pod_uid},
                            {"interface", &r.interface},
                            {"mac", &r.mac},
                            {"appliedAt", &r.applied_at}}) {
    STRATA_RETURN_IF_ERROR(ReadStr(j, key, field, path));
  }
  STRATA_RETURN_IF_ERROR(KeyFromJson(j.value("workload", json()), path, &r.workload));
  json src = j.value("source", json::object());
  if (!src.is_object()) return Status(StatusCode::kDataLoss, path + ": source must be an object");
  STRATA_RETURN_IF_ERROR(ReadStr(src, "namespace", &r.source.namespace_, path));
  STRATA_RETURN_IF_ERROR(ReadStr(src, "name", &r.source.name, path));
  STRATA_RETURN_IF_ERROR(ReadStr(src, "uid", &r.source.uid, path));
  STRATA_RETURN_IF_ERROR(ReadStr(src, "resourceVersion", &r.source.resource_version, path));
  if (auto g = src.find("generation"); g != src.end() && g->is_number_integer()) {
    r.source.generation = g->get<int64_t>();
  }
  return r;
}

}  // namespace

NodeStore::NodeStore(std::string root) : root_(std::move(root)) {}

Status NodeStore::Init() const {
  for (const char* sub : {kConfigs, kPods, kApplied}) {
    STRATA_RETURN_IF_ERROR(CreateDirectories(root_ + "/" + sub));
  }
  return Status::Ok();
}

std::string NodeStore::ConfigPath(const WorkloadKey& key) const {
  return root_ + "/" + kConfigs + "/" + Lower(key.kind) + "_" + key.namespace_ + "_" + key.name +
         ".json";
}

Result<PutOutcome> NodeStore::Put(const WorkloadConfig& config) const {
  STRATA_RETURN_IF_ERROR(ValidateWorkloadKey(config.workload, "workload"));
  STRATA_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(root_ + "/.lock"));
  auto stored = Get(config.workload);
  if (stored.ok()) {
    if (*stored == config) return PutOutcome::kUnchanged;
    if (!IsNewer(config.source, stored->source)) {
      return stored->source.resource_version == config.source.resource_version &&
                     stored->source.uid == config.source.uid
                 ? PutOutcome::kUnchanged
                 : PutOutcome::kStale;
    }
  } else if (stored.status().code() != StatusCode::kNotFound &&
             stored.status().code() != StatusCode::kDataLoss) {
    return stored.status();  // a corrupt record is replaced; an unreadable one is an error
  }
  STRATA_RETURN_IF_ERROR(WriteJson(ConfigPath(config.workload), ToJson(config)));
  return PutOutcome::kWritten;
}

Result<WorkloadConfig> NodeStore::Get(const WorkloadKey& key) const {
  STRATA_RETURN_IF_ERROR(ValidateWorkloadKey(key, "workload"));
  std::string path = ConfigPath(key);
  STRATA_ASSIGN_OR_RETURN(json j, ReadJson(path));
  auto config = WorkloadConfigFromJson(j);
  if (!config.ok()) return Status(StatusCode::kDataLoss, path + ": " + config.status().message());
  if (config->workload != key) {
    return Status(StatusCode::kDataLoss, path + ": holds " + config->workload.ToString());
  }
  return config;
}

Status NodeStore::Remove(const WorkloadKey& key, const std::string& only_uid) const {
  STRATA_RETURN_IF_ERROR(ValidateWorkloadKey(key, "workload"));
  STRATA_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(root_ + "/.lock"));
  if (!only_uid.empty()) {
    auto stored = Get(key);
    if (!stored.ok() && stored.status().code() == StatusCode::kNotFound) return Status::Ok();
    if (stored.ok() && stored->source.uid != only_uid) return Status::Ok();
  }
  return RemoveFile(ConfigPath(key));
}

std::vector<WorkloadConfig> NodeStore::List(std::vector<std::string>* corrupt) const {
  std::vector<WorkloadConfig> out;
  for (const auto& path : JsonFiles(root_ + "/" + kConfigs)) {
    auto j = ReadJson(path);
    if (!j.ok() && j.status().code() == StatusCode::kNotFound) continue;  // removed meanwhile
    auto config = j.ok() ? WorkloadConfigFromJson(*j) : Result<WorkloadConfig>(j.status());
    if (config.ok() && ConfigPath(config->workload) == path) {
      out.push_back(std::move(*config));
    } else if (corrupt) {
      corrupt->push_back(path);
    }
  }
  return out;
}

Status NodeStore::PutPod(const PodEntry& e) const {
  STRATA_RETURN_IF_ERROR(ValidateWorkloadKey(e.workload, "workload"));
  if (!SafeComponent(e.namespace_) || !SafeComponent(e.name)) {
    return InvalidArgumentError("pod " + e.namespace_ + "/" + e.name + ": not a valid name");
  }
  json j = {{"namespace", e.namespace_},
            {"name", e.name},
            {"uid", e.uid},
            {"workload", KeyToJson(e.workload)}};
  return WriteJson(root_ + "/" + kPods + "/" + e.namespace_ + "_" + e.name + ".json", j);
}

Result<PodEntry> NodeStore::GetPod(const std::string& ns, const std::string& name) const {
  if (!SafeComponent(ns) || !SafeComponent(name)) {
    return InvalidArgumentError("pod " + ns + "/" + name + ": not a valid name");
  }
  std::string path = root_ + "/" + kPods + "/" + ns + "_" + name + ".json";
  STRATA_ASSIGN_OR_RETURN(json j, ReadJson(path));
  return PodFromJson(j, path);
}

Status NodeStore::RemovePod(const std::string& ns, const std::string& name) const {
  if (!SafeComponent(ns) || !SafeComponent(name)) return Status::Ok();
  return RemoveFile(root_ + "/" + kPods + "/" + ns + "_" + name + ".json");
}

std::vector<PodEntry> NodeStore::ListPods() const {
  std::vector<PodEntry> out;
  for (const auto& path : JsonFiles(root_ + "/" + kPods)) {
    auto j = ReadJson(path);
    if (!j.ok()) continue;
    auto e = PodFromJson(*j, path);
    if (e.ok()) out.push_back(std::move(*e));
  }
  return out;
}

Status NodeStore::PutApplied(const AppliedRecord& r) const {
  if (!SafeComponent(r.container_id)) {
    return InvalidArgumentError("containerID \"" + r.container_id +
                                "\": only letters, digits, '.', '_' and '-' are kept");
  }
  if (!SafeComponent(r.ifname)) {
    return InvalidArgumentError("ifname \"" + r.ifname + "\": not a valid interface name");
  }
  json j = {{"containerID", r.container_id},
            {"ifname", r.ifname},
            {"podNamespace", r.pod_namespace},
            {"podName", r.pod_name},
            {"podUID", r.pod_uid},
            {"workload", KeyToJson(r.workload)},
            {"source",
             {{"namespace", r.source.namespace_},
              {"name", r.source.name},
              {"uid", r.source.uid},
              {"resourceVersion", r.source.resource_version},
              {"generation", r.source.generation}}},
            {"interface", r.interface},
            {"mac", r.mac},
            {"appliedAt", r.applied_at}};
  return WriteJson(root_ + "/" + kApplied + "/" + r.container_id + "_" + r.ifname + ".json", j);
}

Result<AppliedRecord> NodeStore::GetApplied(const std::string& container_id,
                                            const std::string& ifname) const {
  if (!SafeComponent(container_id) || !SafeComponent(ifname)) {
    return NotFoundError("no record for " + container_id + "/" + ifname);
  }
  std::string path = root_ + "/" + kApplied + "/" + container_id + "_" + ifname + ".json";
  STRATA_ASSIGN_OR_RETURN(json j, ReadJson(path));
  return AppliedFromJson(j, path);
}

Status NodeStore::RemoveApplied(const std::string& container_id, const std::string& ifname) const {
  if (!SafeComponent(container_id) || !SafeComponent(ifname)) return Status::Ok();
  return RemoveFile(root_ + "/" + kApplied + "/" + container_id + "_" + ifname + ".json");
}

std::vector<AppliedRecord> NodeStore::ListApplied() const {
  std::vector<AppliedRecord> out;
  for (const auto& path : JsonFiles(root_ + "/" + kApplied)) {
    auto j = ReadJson(path);
    if (!j.ok()) continue;
    auto r = AppliedFromJson(*j, path);
    if (r.ok()) out.push_back(std::move(*r));
  }
  return out;
}

}  // namespace strata::vnc

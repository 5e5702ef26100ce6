#include "strata/controller/manager.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <thread>

namespace strata::ctrl {

Manager::Manager(kube::ApiClient* client, Options options, Metrics* metrics, kube::Clock* clock)
    : client_(client), options_(std::move(options)), metrics_(metrics), clock_(clock) {
  if (options_.leader_election) {
    kube::LeaderElector::Callbacks cb;
    cb.on_started_leading = [this](std::stop_token stop) { RunControllers(stop); };
    cb.on_new_leader = [](const std::string& id) {
      if (!id.empty()) spdlog::info("leader election: current leader is {}", id);
    };
    elector_ = std::make_unique<kube::LeaderElector>(client_, *options_.leader_election,
                                                     std::move(cb), clock_);
  }
  if (metrics_) metrics_->SetLeaderFunction([this] { return IsLeader(); });
}

Manager::~Manager() {
  for (auto& [path, informer] : informers_) informer->Stop();
}

kube::Informer* Manager::Informer(const kube::Resource& resource) {
  const std::string path = resource.Path("");
  auto it = informers_.find(path);
  if (it != informers_.end()) return it->second.get();
  kube::Informer::Options o;
  if (resource.namespaced) o.namespace_ = options_.watch_namespace;
  o.transform = kube::StripForCache;
  if (auto f = options_.field_selectors.find(resource.kind); f != options_.field_selectors.end()) {
    o.field_selector = f->second;
  }
  auto informer = std::make_unique<kube::Informer>(client_, resource, o, clock_);
  kube::Informer* raw = informer.get();
  informers_.emplace(path, std::move(informer));
  return raw;
}

Controller& Manager::AddController(std::string name, const kube::Resource& primary,
                                   Reconciler* reconciler, int workers) {
  Controller::Options o;
  o.workers = workers > 0 ? workers : options_.workers;
  o.queue = options_.queue;
  o.label_selector = options_.label_selector;
  o.events = options_.events;
  o.may_act = [this] { return IsLeader(); };
  controllers_.push_back(std::make_unique<Controller>(std::move(name), Informer(primary),
                                                      reconciler, metrics_, o, clock_));
  return *controllers_.back();
}

void Manager::AddRunnable(std::string name, std::function<void(std::stop_token)> run) {
  runnables_.emplace_back(std::move(name), std::move(run));
}

bool Manager::Ready() const {
  for (const auto& [path, informer] : informers_) {
    if (!informer->HasSynced()) return false;
  }
  return true;
}

bool Manager::IsLeader() const { return !elector_ || elector_->IsLeader(); }

void Manager::RunControllers(std::stop_token stop) {
  for (const auto& [path, informer] : informers_) {
    while (!informer->WaitForSync(std::chrono::milliseconds(200))) {
      if (stop.stop_requested()) return;
    }
  }
  std::vector<std::jthread> threads;
  for (auto& c : controllers_) {
    threads.emplace_back([&c, stop] { c->Run(stop); });
  }
  for (auto& [name, run] : runnables_) {
    spdlog::info("runnable {}: started", name);
    threads.emplace_back([&run, stop] { run(stop); });
  }
  if (threads.empty()) {
    // Nothing to run (yet): still serve the caches until `stop`, as with controllers.
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    cv.wait(lock, stop, [] { return false; });
  }
  threads.clear();  // each Run returns once `stop` is requested
}

void Manager::SampleMetrics(std::stop_token stop) {
  // Informer counters -> Prometheus as deltas; queue depths of idle controllers too.
  std::map<std::string, kube::Informer::Stats> last;
  while (clock_->SleepFor(std::chrono::seconds(1), stop)) {
    if (!metrics_) continue;
    for (const auto& [path, informer] : informers_) {
      const auto s = informer->stats();
      auto& l = last[path];
      const std::string& plural = informer->resource().plural;
      metrics_->AddWatchRestarts(plural, static_cast<double>(s.watch_restarts - l.watch_restarts));
      metrics_->AddRelists(plural, static_cast<double>(s.relists_on_gone - l.relists_on_gone));
      l = s;
    }
    for (const auto& c : controllers_) {
      metrics_->SetQueueDepth(c->name(),
                              static_cast<double>(c->queue().Len() + c->queue().DelayedLen()));
    }
  }
}

Status Manager::Run(std::stop_token stop) {
  for (auto& [path, informer] : informers_) informer->Start();
  std::jthread sampler([this](std::stop_token s) { SampleMetrics(s); });
  Status result;
  if (elector_) {
    elector_->Run(stop);
    if (!stop.stop_requested()) result = AbortedError("leader election lost");
  } else {
    RunControllers(stop);
  }
  sampler.request_stop();
  sampler.join();
  for (auto& [path, informer] : informers_) informer->Stop();
  return result;
}

}  // namespace strata::ctrl

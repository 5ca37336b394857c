// RepoSupervisor (include/mishka/repo.h): one MnesiaRepo child, restarted by its policy.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "mishka/repo.h"

namespace mishka {

using Clock = std::chrono::steady_clock;

class RepoSupervisor::Impl {
 public:
  Impl(RepoOptions repo, SupervisorOptions options) : repo_(std::move(repo)), options_(options) {}
  ~Impl() { stop(); }

  Status start();
  void stop();
  std::shared_ptr<MnesiaRepo> child() const {
    std::lock_guard<std::mutex> lock(mu_);
    return child_;
  }
  Status restart_child();
  int restarts() const {
    std::lock_guard<std::mutex> lock(mu_);
    return restarts_;
  }
  bool given_up() const {
    std::lock_guard<std::mutex> lock(mu_);
    return given_up_;
  }
  std::optional<Status> last_failure() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_failure_;
  }

 private:
  // Starts a child; on a failed boot records it and asks for a restart (mu_ not held).
  void start_child();
  void loop();
  // The child ended with `failure` (nullopt: a normal end): restart by the policy (mu_ held).
  void child_ended(std::optional<Status> failure);

  RepoOptions repo_;
  SupervisorOptions options_;
  std::unique_ptr<RepoHost> own_host_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<MnesiaRepo> child_;
  // Set when the child failed; the loop stops it and restarts. Each child has a generation, so
  // that a failure reported by a child already replaced (restart_child) is ignored.
  bool child_failed_ = false;
  std::uint64_t generation_ = 0;
  std::optional<Clock::time_point> restart_at_;
  std::deque<Clock::time_point> recent_restarts_;
  int restarts_ = 0;
  bool given_up_ = false;
  bool stopping_ = false;
  std::optional<Status> last_failure_;
  std::thread thread_;
  std::mutex start_mu_;  // one start or restart of the child at a time
};

Status RepoSupervisor::Impl::start() {
  if (options_.max_restarts < 0) {
    return invalid_argument("supervisor option 'max_restarts': must be 0 or more, got " +
                            std::to_string(options_.max_restarts));
  }
  if (options_.period.count() <= 0) {
    return invalid_argument("supervisor option 'period': must be more than 0 ms, got " +
                            std::to_string(options_.period.count()) + " ms");
  }
  if (options_.backoff.count() < 0) {
    return invalid_argument("supervisor option 'backoff': must be 0 ms or more, got " +
                            std::to_string(options_.backoff.count()) + " ms");
  }
  MISHKA_RETURN_IF_ERROR(validate_repo_options(repo_));
  if (repo_.host == nullptr) {
    own_host_ = std::make_unique<RepoHost>();
    repo_.host = own_host_.get();
  }
  start_child();
  thread_ = std::thread([this] { loop(); });
  return Status::Ok();
}

void RepoSupervisor::Impl::start_child() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
  }
  Result<std::unique_ptr<MnesiaRepo>> started = MnesiaRepo::start(repo_);
  std::unique_lock<std::mutex> lock(mu_);
  if (!started.ok()) {
    last_failure_ = started.status();
    log_to(repo_.log, LogLevel::error,
           "supervisor: the repo's boot failed: " + started.status().to_string());
    child_ended(started.status());
    return;
  }
  child_ = std::shared_ptr<MnesiaRepo>(std::move(started).value());
  child_failed_ = false;
  const std::uint64_t generation = ++generation_;
  std::shared_ptr<MnesiaRepo> child = child_;
  lock.unlock();
  child->on_failure([this, generation](const Status& failure) {
    std::lock_guard<std::mutex> guard(mu_);
    if (generation != generation_) return;  // a child replaced meanwhile
    last_failure_ = failure;
    child_failed_ = true;
    cv_.notify_all();
  });
}

void RepoSupervisor::Impl::child_ended(std::optional<Status> failure) {
  if (stopping_) return;
  if (options_.restart == RestartPolicy::temporary ||
      (options_.restart == RestartPolicy::transient && !failure)) {
    return;
  }
  const Clock::time_point now = Clock::now();
  while (!recent_restarts_.empty() && now - recent_restarts_.front() > options_.period) {
    recent_restarts_.pop_front();
  }
  if (static_cast<int>(recent_restarts_.size()) >= options_.max_restarts) {
    given_up_ = true;
    log_to(repo_.log, LogLevel::critical,
           "supervisor: gave up after " + std::to_string(options_.max_restarts) +
               " restarts within " + std::to_string(options_.period.count()) +
               " ms; last failure: " + (failure ? failure->to_string() : std::string("none")));
    return;
  }
  recent_restarts_.push_back(now);
  restart_at_ = now + options_.backoff;
  cv_.notify_all();
}

void RepoSupervisor::Impl::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (child_failed_) {
      child_failed_ = false;
      std::shared_ptr<MnesiaRepo> failed = std::move(child_);
      const std::optional<Status> failure = last_failure_;
      lock.unlock();
      log_to(repo_.log, LogLevel::error,
             "supervisor: the repo failed: " + (failure ? failure->to_string() : std::string()) +
                 "; restarting it by its policy");
      if (failed != nullptr) failed->stop();
      failed.reset();
      lock.lock();
      child_ended(failure);
      continue;
    }
    if (restart_at_ && *restart_at_ <= Clock::now()) {
      restart_at_.reset();
      ++restarts_;
      lock.unlock();
      {
        std::lock_guard<std::mutex> starting(start_mu_);
        start_child();
      }
      lock.lock();
      continue;
    }
    if (restart_at_) {
      cv_.wait_until(lock, *restart_at_);
    } else {
      cv_.wait(lock);
    }
  }
}

Status RepoSupervisor::Impl::restart_child() {
  // One start at a time: the loop's restarts, this, and stop() wait for each other.
  std::lock_guard<std::mutex> starting(start_mu_);
  std::shared_ptr<MnesiaRepo> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Status(StatusCode::engine_unavailable, "the supervisor is stopped");
    old = std::move(child_);
    restart_at_.reset();
    child_failed_ = false;
    ++generation_;  // a failure the old child reports from now on is not this child's
  }
  if (old != nullptr) old->stop();
  old.reset();
  start_child();
  std::lock_guard<std::mutex> lock(mu_);
  if (child_ == nullptr) return last_failure_.value_or(Status::Ok());
  return Status::Ok();
}

void RepoSupervisor::Impl::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::shared_ptr<MnesiaRepo> child;
  {
    std::lock_guard<std::mutex> starting(start_mu_);
    std::lock_guard<std::mutex> lock(mu_);
    child = std::move(child_);
  }
  if (child != nullptr) child->stop();
  child.reset();
  own_host_.reset();
}

RepoSupervisor::RepoSupervisor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RepoSupervisor::~RepoSupervisor() {
  stop();
}

Result<std::unique_ptr<RepoSupervisor>> RepoSupervisor::start(RepoOptions repo,
                                                              SupervisorOptions options) {
  auto impl = std::make_unique<Impl>(std::move(repo), options);
  MISHKA_RETURN_IF_ERROR(impl->start());
  return std::unique_ptr<RepoSupervisor>(new RepoSupervisor(std::move(impl)));
}

std::shared_ptr<MnesiaRepo> RepoSupervisor::child() const {
  return impl_->child();
}
Status RepoSupervisor::restart_child() {
  return impl_->restart_child();
}
int RepoSupervisor::restarts() const {
  return impl_->restarts();
}
bool RepoSupervisor::given_up() const {
  return impl_->given_up();
}
std::optional<Status> RepoSupervisor::last_failure() const {
  return impl_->last_failure();
}
void RepoSupervisor::stop() {
  if (impl_) impl_->stop();
}

}  // namespace mishka

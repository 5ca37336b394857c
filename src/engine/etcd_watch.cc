// WatchStream over etcd's bidirectional Watch RPC: one stream, one watcher created on it.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>

#include "engine/etcd_convert.h"
#include "engine/etcd_rpc.h"

namespace mishka::engine::detail {
namespace {

using WatchReaderWriter =
    grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>;

class GrpcWatchStream final : public WatchStream {
 public:
  GrpcWatchStream(const Endpoint& endpoint, const WatchOptions& options)
      : channel_(endpoint.channel),
        stub_(etcdserverpb::Watch::NewStub(channel_)),
        endpoint_(endpoint.address),
        operation_("watch of " + Printable(options.key) + " from revision " +
                   std::to_string(options.start_revision)) {}

  ~GrpcWatchStream() override {
    // Nothing may be blocked in next() any more (one reader, who is destroying us).
    context_.TryCancel();
    std::lock_guard<std::mutex> lock(write_mutex_);
    if (stream_ != nullptr && !finished_) {
      etcdserverpb::WatchResponse ignored;
      while (stream_->Read(&ignored)) {
      }
      (void)stream_->Finish();
    }
  }

  // Starts the stream, asks for the watcher and waits until etcd confirms it (or `deadline`).
  Status open(const WatchOptions& options, Deadline deadline, const std::string& token) {
    context_.set_wait_for_ready(true);
    // etcd's auth token (rpctypes.TokenFieldNameGRPC).
    if (!token.empty()) context_.AddMetadata("token", token);
    // etcd's "require leader" metadata (rpctypes.MetadataRequireLeaderKey).
    if (options.require_leader) context_.AddMetadata("hasleader", "true");

    // The stream has no deadline of its own, so a watchdog cancels it if etcd has not confirmed
    // the watcher by `deadline` (starting the stream may itself wait for a connection).
    std::atomic<bool> expired{false};
    std::jthread watchdog([this, deadline, &expired](const std::stop_token& stop) {
      std::mutex mutex;
      std::condition_variable_any wake;
      std::unique_lock<std::mutex> lock(mutex);
      wake.wait_until(lock, stop, deadline.when(), [] { return false; });
      if (!stop.stop_requested()) {
        expired = true;
        context_.TryCancel();
      }
    });
    Status created = start(options);
    watchdog.request_stop();
    watchdog.join();
    if (expired) {
      if (channel_->GetState(/*try_to_connect=*/false) != GRPC_CHANNEL_READY) {
        return CallError(StatusCode::engine_unavailable, operation_, endpoint_,
                         "no connection before the deadline");
      }
      return CallError(StatusCode::timeout, operation_, endpoint_,
                       "etcd did not confirm the watch before the deadline");
    }
    return created;
  }

  Result<WatchBatch> next() override {
    while (true) {
      if (ended_) return *ended_;
      if (cancelled_) return end(cancelled_status());
      etcdserverpb::WatchResponse response;
      if (!pending_.empty()) {
        response = std::move(pending_.front());
        pending_.pop_front();
      } else if (!stream_->Read(&response)) {
        return end(finish());
      }
      if (response.compact_revision() > 0) {
        return end(CallError(
            StatusCode::compacted, operation_, endpoint_,
            "revision compacted; compact revision " + std::to_string(response.compact_revision())));
      }
      if (response.canceled()) return end(cancel_status(response));
      if (response.created()) continue;  // only the first response is a creation
      WatchBatch batch;
      batch.header = FromProto(response.header());
      // etcd answers a progress request outside of any watcher (clientv3.InvalidWatchID).
      batch.requested_progress = response.events_size() == 0 && response.watch_id() == -1;
      if (response.events_size() > 0) {
        batch.delivered_revision = response.events(response.events_size() - 1).kv().mod_revision();
      } else if (!batch.requested_progress) {
        batch.delivered_revision = batch.header.revision;
      }
      batch.events.reserve(static_cast<std::size_t>(response.events_size()));
      for (const mvccpb::Event& event : response.events()) {
        batch.events.push_back(FromProto(event));
      }
      return batch;  // no events: a progress notification
    }
  }

  void cancel() override {
    cancelled_ = true;
    context_.TryCancel();
  }

  void request_progress() override {
    std::lock_guard<std::mutex> lock(write_mutex_);
    if (cancelled_ || finished_ || stream_ == nullptr) return;
    etcdserverpb::WatchRequest request;
    request.mutable_progress_request();
    // A failed Write means a broken stream: the reader's next() reports it.
    (void)stream_->Write(request);
  }

 private:
  Status start(const WatchOptions& options) {
    etcdserverpb::WatchRequest request;
    *request.mutable_create_request() = ToProto(options);
    bool written = false;
    {
      std::lock_guard<std::mutex> lock(write_mutex_);
      stream_ = stub_->Watch(&context_);
      written = stream_->Write(request);
    }
    if (!written) return finish();
    while (true) {
      etcdserverpb::WatchResponse response;
      if (!stream_->Read(&response)) return finish();
      if (!response.created()) {
        // etcd sends the creation first; keep anything else for next() all the same.
        pending_.push_back(std::move(response));
        continue;
      }
      if (response.compact_revision() > 0) {
        return CallError(
            StatusCode::compacted, operation_, endpoint_,
            "revision compacted; compact revision " + std::to_string(response.compact_revision()));
      }
      if (response.canceled()) return cancel_status(response);
      return Status::Ok();
    }
  }

  // After a failed Read: ends the call and says why. Once only.
  Status finish() {
    grpc::Status status;
    {
      std::lock_guard<std::mutex> lock(write_mutex_);
      if (finished_)
        return CallError(StatusCode::engine_unavailable, operation_, endpoint_,
                         "the watch stream has ended");
      status = stream_->Finish();
      finished_ = true;
    }
    if (cancelled_) return cancelled_status();
    if (status.ok()) {
      return CallError(StatusCode::engine_unavailable, operation_, endpoint_,
                       "etcd ended the watch stream");
    }
    const bool connected = channel_->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY;
    Status mapped = MapGrpcError(status, operation_, endpoint_, connected);
    // A stream that broke after it was created means a lost connection, not a deadline.
    if (mapped.code() == StatusCode::timeout) {
      return CallError(StatusCode::engine_unavailable, operation_, endpoint_,
                       "the watch stream broke: " + status.error_message());
    }
    return mapped;
  }

  Status cancel_status(const etcdserverpb::WatchResponse& response) const {
    const std::string reason =
        response.cancel_reason().empty() ? "etcd cancelled the watch" : response.cancel_reason();
    // The reason is etcd's error text: map it as a call's error would be.
    return MapGrpcError(grpc::Status(grpc::StatusCode::UNKNOWN, reason), operation_, endpoint_,
                        /*connected=*/true);
  }

  Status cancelled_status() const {
    return CallError(StatusCode::timeout, operation_, endpoint_, "cancelled");
  }

  Status end(Status status) {
    ended_ = status;
    context_.TryCancel();  // etcd no longer sends anything we want
    return status;
  }

  std::shared_ptr<grpc::Channel> channel_;  // kept: the stream may outlive its client
  std::unique_ptr<etcdserverpb::Watch::Stub> stub_;
  std::string endpoint_;
  std::string operation_;
  grpc::ClientContext context_;
  std::unique_ptr<WatchReaderWriter> stream_;
  std::mutex write_mutex_;  // Write, Finish and finished_: gRPC allows one writer at a time
  bool finished_ = false;
  std::atomic<bool> cancelled_{false};
  // Reader thread only.
  std::deque<etcdserverpb::WatchResponse> pending_;
  std::optional<Status> ended_;
};

}  // namespace

Result<std::unique_ptr<WatchStream>> OpenWatch(const Endpoint& endpoint,
                                               const WatchOptions& options, Deadline deadline,
                                               const std::string& token) {
  auto stream = std::make_unique<GrpcWatchStream>(endpoint, options);
  MISHKA_RETURN_IF_ERROR(stream->open(options, deadline, token));
  return std::unique_ptr<WatchStream>(std::move(stream));
}

}  // namespace mishka::engine::detail

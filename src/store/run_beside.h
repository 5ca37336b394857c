// Two pieces of independent work on two threads, for the start-up paths that load a large
// snapshot (decoding, checksumming, building a table's rows and its indexes).
#pragma once

#include <exception>
#include <system_error>
#include <thread>

namespace mishka::store {

// Runs `background` on a new thread and `foreground` on the calling one, and returns once both
// have finished. The two must not touch the same data. When no thread can be started, both run
// on the calling thread, background first: the outcome is the same, only slower. An exception
// (out of memory) thrown by either reaches the caller, as it would without a second thread,
// once both have finished.
template <typename Background, typename Foreground>
void run_beside(Background&& background, Foreground&& foreground) {
  std::exception_ptr background_failure;
  std::thread worker;
  try {
    worker = std::thread([&] {
      try {
        background();
      } catch (...) {
        background_failure = std::current_exception();
      }
    });
  } catch (const std::system_error&) {
    background();
    foreground();
    return;
  }
  try {
    foreground();
  } catch (...) {
    worker.join();
    throw;
  }
  worker.join();
  if (background_failure) std::rethrow_exception(background_failure);
}

}  // namespace mishka::store

// A reader-writer lock for data read far more often than written (the replica's catalog: every
// local read takes it, one apply thread writes). std::shared_mutex keeps its readers in one
// counter, so readers on two cores bounce that cache line between them on every lock and
// unlock, and two reading threads do not read faster than one. Here each reader counts itself
// in a stripe of its own thread's (one cache line each), so readers on different cores touch
// different lines; a writer pays instead, announcing itself and waiting until every stripe
// has drained.
//
// Meets the standard's SharedMutex requirements used with std::unique_lock and
// std::shared_lock (lock, try_lock, unlock, lock_shared, unlock_shared). Writer-preferring: a
// reader that finds a writer announced waits for it, so a steady stream of readers cannot starve
// the writer. Hence it is not recursive: a thread holding a shared lock must not take another one
// (a writer announced in between would wait for the first while the second waits for it).
// A shared lock must be released by the thread that took it (its stripe is that thread's).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace mishka {

class StripedSharedMutex {
 public:
  StripedSharedMutex() = default;
  StripedSharedMutex(const StripedSharedMutex&) = delete;
  StripedSharedMutex& operator=(const StripedSharedMutex&) = delete;

  void lock() {
    writers_.lock();
    writing_.store(true);
    for (Stripe& s : stripes_) {
      for (std::int32_t n = s.readers.load(); n != 0; n = s.readers.load()) s.readers.wait(n);
    }
  }

  // Takes the lock only if nobody holds it, shared or not, at this moment; never waits (a
  // reader arriving meanwhile waits a moment for the attempt to end).
  bool try_lock() {
    if (!writers_.try_lock()) return false;
    writing_.store(true);
    for (Stripe& s : stripes_) {
      if (s.readers.load() != 0) {
        unlock();
        return false;
      }
    }
    return true;
  }

  void unlock() {
    writing_.store(false);
    writing_.notify_all();
    writers_.unlock();
  }

  void lock_shared() {
    Stripe& s = own_stripe();
    for (;;) {
      s.readers.fetch_add(1);
      if (!writing_.load()) return;
      // A writer is announced: step back so that it can drain this stripe, and wait for it.
      release(s);
      writing_.wait(true);
    }
  }

  void unlock_shared() { release(own_stripe()); }

 private:
  static constexpr std::size_t kStripes = 16;  // a power of two, above the cores we expect
  struct alignas(64) Stripe {
    std::atomic<std::int32_t> readers{0};
  };

  Stripe& own_stripe() {
    // Thread ids are addresses with zero low bits: mix before taking the top bits.
    const std::uint64_t h = std::hash<std::thread::id>{}(std::this_thread::get_id());
    return stripes_[(h * 0x9E3779B97F4A7C15ULL) >> 60];
  }

  void release(Stripe& s) {
    // Sequentially consistent: if this load misses a writer's announcement, that writer's
    // later load of the stripe sees the decrement, so no wake-up is lost.
    s.readers.fetch_sub(1);
    if (writing_.load()) s.readers.notify_all();
  }

  static_assert(kStripes == 16, "own_stripe() takes the top 4 bits");

  std::mutex writers_;  // one writer at a time
  std::atomic<bool> writing_{false};
  std::array<Stripe, kStripes> stripes_;
};

}  // namespace mishka

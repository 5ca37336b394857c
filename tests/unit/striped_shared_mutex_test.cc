// StripedSharedMutex: writers exclude readers and each other, readers share, try_lock never
// waits, and a steady stream of readers does not starve a writer.
#include "common/striped_shared_mutex.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

namespace mishka {
namespace {

// Writers keep two counters equal under the lock; readers must never see them differ.
TEST(StripedSharedMutex, ReadersNeverSeeAHalfDoneWrite) {
  StripedSharedMutex mu;
  std::int64_t a = 0;
  std::int64_t b = 0;
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> torn{0};
  std::atomic<std::int64_t> reads{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < 4; ++r) {
    threads.emplace_back([&] {
      while (!stop) {
        std::shared_lock lock(mu);
        if (a != b) ++torn;
        ++reads;
      }
    });
  }
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        std::unique_lock lock(mu);
        ++a;
        std::this_thread::yield();  // widen the window a reader could see
        ++b;
      }
    });
  }
  for (std::size_t i = 4; i < threads.size(); ++i) threads[i].join();
  stop = true;
  for (std::size_t i = 0; i < 4; ++i) threads[i].join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(a, 40000);
  EXPECT_EQ(b, 40000);
  EXPECT_GT(reads.load(), 0);
}

TEST(StripedSharedMutex, TryLockFailsWhileAReaderHoldsItAndLetsTheReaderGoOn) {
  StripedSharedMutex mu;
  std::shared_lock held(mu);
  std::atomic<bool> got{true};
  std::thread other([&] { got = mu.try_lock(); });
  other.join();
  EXPECT_FALSE(got.load());
  held.unlock();
  // A failed attempt leaves no writer announced: readers and writers still get in.
  { std::shared_lock again(mu); }
  ASSERT_TRUE(mu.try_lock());
  std::atomic<bool> read{false};
  std::thread reader([&] {
    std::shared_lock lock(mu);  // waits for the writer
    read = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(read.load());
  mu.unlock();
  reader.join();
  EXPECT_TRUE(read.load());
}

TEST(StripedSharedMutex, AWriterGetsInDespiteReadersThatNeverPause) {
  StripedSharedMutex mu;
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!stop) std::shared_lock lock(mu);
    });
  }
  for (int i = 0; i < 100; ++i) std::unique_lock lock(mu);  // would hang if starved
  stop = true;
  for (std::thread& t : readers) t.join();
}

}  // namespace
}  // namespace mishka

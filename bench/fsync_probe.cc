#include "fsync_probe.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

namespace mishka::bench {

namespace {

Status errno_status(const std::string& what) {
  return io_error(what + ": " + std::strerror(errno));
}

}  // namespace

Result<LoadResult> probe_fsync(const std::filesystem::path& dir, std::chrono::milliseconds warmup,
                               std::chrono::milliseconds duration) {
  const std::filesystem::path file = dir / "fsync-probe";
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno_status("creating " + file.string());
  const std::string block(kFsyncBlockBytes, 'f');
  // The block exists and is on disk before the loop: each write then overwrites allocated
  // space, and fdatasync has only the data to flush, not a size change.
  Status prepared = Status::Ok();
  if (::pwrite(fd, block.data(), block.size(), 0) != static_cast<ssize_t>(block.size()) ||
      ::fsync(fd) != 0) {
    prepared = errno_status("preparing " + file.string());
  }
  LoadResult result;
  if (prepared.ok()) {
    result = run_timed_load(1, warmup, duration, [&](int, std::int64_t) -> Status {
      if (::pwrite(fd, block.data(), block.size(), 0) != static_cast<ssize_t>(block.size())) {
        return errno_status("writing " + file.string());
      }
      if (::fdatasync(fd) != 0) return errno_status("fdatasync of " + file.string());
      return Status::Ok();
    });
  }
  ::close(fd);
  std::error_code ignored;
  std::filesystem::remove(file, ignored);
  if (!prepared.ok()) return prepared;
  return result;
}

}  // namespace mishka::bench

// Process checks for tests that run etcd: which binary to run, whether a pid still lives, which
// processes name a path on their command line (read from /proc), and a bounded wait.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mishka::test {

// $MISHKA_ETCD when set and not empty, else /usr/bin/etcd.
std::string etcd_binary();

// True when `pid` is positive and a process of that pid exists (a zombie counts as alive).
bool process_alive(pid_t pid);

// True when no process of that pid exists, or only a zombie nobody reaps (a container's PID 1
// may not): a zombie holds no port and no file.
bool process_ended(pid_t pid);

// Live (not zombie) processes whose command line has exactly the argument `arg`.
std::vector<pid_t> processes_with_arg(const std::string& arg);

// Live (not zombie) processes other than this one whose command line has an argument
// containing `text`.
std::vector<pid_t> processes_mentioning(const std::string& text);

// Waits up to `timeout` for no live process to mention `text`; true when none is left.
bool no_process_mentions(const std::string& text, std::chrono::milliseconds timeout);

// Waits up to `timeout` until each of `ports` can be bound on 127.0.0.1 (with SO_REUSEADDR, as
// etcd binds them); true when all can. A killed process may still hold its listeners after its
// command line reads empty (the kernel frees its memory before it closes its files), so
// no_process_mentions() alone does not mean its ports are free.
bool loopback_ports_free(const std::vector<std::uint16_t>& ports,
                         std::chrono::milliseconds timeout);

// Polls `condition` every 20 ms until it holds (true) or `timeout` has passed (false).
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

}  // namespace mishka::test

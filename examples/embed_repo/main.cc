// embed_repo: a program that embeds mishka through its installed package (docs/embedding.md).
//
// It starts a MnesiaRepo as a standalone seed (its own one-member etcd cluster) in DIR, with
// etcd's client port CLIENT_PORT and peer port PEER_PORT (default CLIENT_PORT + 1) on
// 127.0.0.1, creates the table `greetings`, writes one record, reads it back, prints the
// record and the repo's state, and stops. Run again with the same DIR and CLIENT_PORT (a node's
// name holds its port), it reopens the node: the data lives in etcd's files under DIR.
//
// Needs the `etcd` binary on PATH. Exit status: 0 on success, 1 when a step failed (the error
// is printed), 2 for bad arguments.
#include <charconv>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mishka/repo.h"
#include "mishka/status.h"
#include "mishka/store.h"
#include "mishka/table_spec.h"
#include "mishka/value.h"

namespace {

constexpr char kUsage[] =
    "usage: embed_repo DIR CLIENT_PORT [PEER_PORT]\n"
    "Starts a standalone mishka node in DIR (etcd on 127.0.0.1:CLIENT_PORT, peers on\n"
    "PEER_PORT, default CLIENT_PORT + 1), writes and reads a record in table `greetings`,\n"
    "prints the repo's state and stops. Needs `etcd` on PATH.\n";

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(value);
}

// Prints what failed and returns the exit status of a failed step.
int fail(std::string_view step, const mishka::Status& status) {
  std::cerr << "embed_repo: " << step << ": " << status.to_string() << "\n";
  return 1;
}

// The part that uses the library, once the arguments are known.
int run(const std::string& dir, std::uint16_t client_port, std::uint16_t peer_port) {
  mishka::RepoOptions options;
  options.mnesia_dir = dir;
  // A node's name carries its etcd client address; no cluster_nodes: a standalone seed.
  options.node = "embed@127.0.0.1:" + std::to_string(client_port);
  options.peer_port = peer_port;
  // No cookie: etcd's links are plain HTTP, acceptable on loopback only. A real deployment sets
  // options.cookie, the cluster's shared secret (mutual TLS, docs/security.md).

  // No health timer: this program lives for a few seconds.
  options.health_interval = std::chrono::milliseconds(0);
  // The library has no global logger: each repo gets a sink. Warnings and errors only (the node
  // warns once that it runs without a cookie).
  options.log = [](mishka::LogLevel level, std::string_view message) {
    if (level >= mishka::LogLevel::warning) std::cerr << "mishka: " << message << "\n";
  };

  // start() returns once boot ended; a seed on a new directory creates its cluster.
  mishka::Result<std::unique_ptr<mishka::MnesiaRepo>> started =
      mishka::MnesiaRepo::start(std::move(options));
  if (!started.ok()) return fail("start", started.status());
  std::unique_ptr<mishka::MnesiaRepo> repo = std::move(started).value();
  // A seed has nobody to wait for: anything but synchronized (pending, inconsistent) is wrong.
  mishka::RepoStatus booted = repo->state().status;
  if (booted != mishka::RepoStatus::synchronized) {
    return fail("start", mishka::Status(mishka::StatusCode::internal,
                                        "a standalone seed booted as " +
                                            std::string(mishka::repo_status_name(booted))));
  }

  // The store is there while the repo is synchronized and until stop().
  mishka::Store* store = repo->store();

  mishka::TableSpec greetings;
  greetings.name = "greetings";
  greetings.attributes = {"language", "text"};  // the first attribute is the key
  mishka::Status created = store->create_table(greetings);
  // already_exists: a previous run on this directory created it; anything else is an error.
  if (!created.ok() && created.code() != mishka::StatusCode::already_exists) {
    return fail("create_table greetings", created);
  }

  // A transaction: the function may run more than once (on a conflict), so it only stages
  // writes on the Transaction. Returning ok commits them through etcd.
  mishka::Status written = store->transaction([](mishka::Transaction& tx) {
    return tx.write("greetings", mishka::Record{"en", "hello, world"});
  });
  if (!written.ok()) return fail("write greetings/en", written);

  // Reads come from this node's replica, which applied the write before transaction() returned.
  mishka::Result<std::vector<mishka::RecordRef>> read = store->dirty_read("greetings", "en");
  if (!read.ok()) return fail("read greetings/en", read.status());
  if (read->size() != 1) {
    return fail("read greetings/en",
                mishka::Status(mishka::StatusCode::internal,
                               "expected 1 record, found " + std::to_string(read->size())));
  }
  std::cout << "record: " << mishka::Value(mishka::List(*read->front())).debug_string() << "\n";
  std::cout << "state: " << mishka::to_value(repo->state()).debug_string() << "\n";

  // Stops the repo and its etcd member (also what the destructor does).
  repo->stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << kUsage;
    return 0;
  }
  if (args.size() < 2 || args.size() > 3) {
    std::cerr << kUsage;
    return 2;
  }
  std::optional<std::uint16_t> client_port = parse_port(args[1]);
  std::optional<std::uint16_t> peer_port;
  if (args.size() == 3) {
    peer_port = parse_port(args[2]);
  } else if (client_port && *client_port < 65535) {
    peer_port = static_cast<std::uint16_t>(*client_port + 1);
  }
  if (!client_port || !peer_port || *peer_port == *client_port) {
    std::cerr << "embed_repo: ports must be two distinct numbers from 1 to 65535\n" << kUsage;
    return 2;
  }
  return run(std::string(args[0]), *client_port, *peer_port);
}

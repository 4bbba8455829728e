// rlog: one binary for both roles. Loads the configuration, starts the node and its HTTP server,
// and on SIGTERM/SIGINT drains: new writes get 503, parked ones are answered within the drain
// timeout, then the process exits 0.
#include <dlfcn.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>

#include "app/logging.h"
#include "app/master_node.h"
#include "app/sentinel_node.h"
#include "app/tls.h"
#include "config/config.h"
#include "discovery/sentinel_item.h"
#include "http/http_server.h"
#include "replication/sentinel_service.h"

namespace {

// The shared object the process's malloc resolves to (tcmalloc unless built with
// -DRLOG_MALLOC=system), as the dynamic linker bound it: logged at start so an operator, and the
// process-level tests, can tell which allocator is really in use.
std::string MallocLibrary() {
  Dl_info info{};
  void* const symbol = ::dlsym(RTLD_DEFAULT, "malloc");
  if (symbol == nullptr || ::dladdr(symbol, &info) == 0 || info.dli_fname == nullptr) {
    return "unknown";
  }
  const std::string path = info.dli_fname;
  return path.substr(path.find_last_of('/') + 1);
}

bool WritePortsFile(const std::string& path, uint16_t http_port, uint16_t grpc_port) {
  if (path.empty()) return true;
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << "{\"http\":" << http_port << ",\"grpc\":" << grpc_port << "}\n";
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  rlog::Result<rlog::Config> loaded = rlog::LoadConfig(argc, argv, rlog::ProcessEnvironment());
  if (!loaded.ok()) {
    if (loaded.status().code() == rlog::Status::Code::kNotFound) {  // --help / --version
      std::cout << loaded.status().message() << "\n";
      return 0;
    }
    std::cerr << "rlog: " << loaded.status().message() << "\n";
    return 2;
  }
  rlog::Config config = std::move(loaded).value();
  if (rlog::Status s = rlog::app::CheckTlsFiles(config); !s.ok()) {
    std::cerr << "rlog: " << s.message() << "\n";
    return 2;
  }
  // Checked here, with the rest of the configuration, by the parser discovery uses: otherwise a
  // bad value would go unnoticed until a dns:/// or srv:/// sentinel is resolved.
  if (!config.dns_server.empty()) {
    if (auto dns = rlog::discovery::ParseIpPort(config.dns_server, 53); !dns.ok()) {
      std::cerr << "rlog: config key 'discovery.dns_server' (DNS_SERVER, --dns-server): "
                << dns.status().message() << "\n";
      return 2;
    }
  }
  rlog::app::SetUpLogging(config);
  if (config.tls_enabled()) {
    spdlog::info("replication uses mutual TLS (CA {}, certificate {})", config.tls_ca_file,
                 config.tls_cert_file);
  }

  rlog::replication::SentinelFaults faults;
  if (config.enable_test_faults) {
    auto parsed = rlog::replication::ParseFaults(config.test_faults);
    if (!parsed.ok()) {
      std::cerr << "rlog: flag --test-faults: " << parsed.status().message() << "\n";
      return 2;
    }
    faults = parsed.value();
    spdlog::warn("TEST FAULTS ENABLED: {}", config.test_faults);
  }

  // Signals are taken by sigwait below, never by whichever thread happens to run.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  // There is nothing to reload: a hang-up stops the node as gently as SIGTERM, and SIGUSR1/2 are
  // logged and ignored (by default each would kill it at once, with no drain).
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGUSR1);
  sigaddset(&signals, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // A file-size limit (RLIMIT_FSIZE) must fail the write (EFBIG: "not acknowledged"), not kill
  // the process in the middle of a record.
  signal(SIGXFSZ, SIG_IGN);

  std::unique_ptr<rlog::app::MasterNode> master;
  std::unique_ptr<rlog::app::SentinelNode> sentinel;
  rlog::http::Service* service = nullptr;
  uint16_t grpc_port = 0;
  if (config.role == rlog::Role::kMaster) {
    master = std::make_unique<rlog::app::MasterNode>(config);
    rlog::Status st = master->Start();
    if (!st.ok()) {
      spdlog::critical("{}", st.message());
      return 1;
    }
    service = master.get();
  } else {
    sentinel = std::make_unique<rlog::app::SentinelNode>(config, faults);
    auto port = sentinel->Start();
    if (!port.ok()) {
      spdlog::critical("{}", port.status().message());
      return 1;
    }
    grpc_port = port.value();
    service = sentinel.get();
  }

  rlog::http::HttpServer http({.address = config.http_address,
                               .port = config.http_port,
                               .threads = config.http_threads,
                               .max_body_bytes = config.max_body_bytes,
                               .max_wait_ms = config.max_timeout_ms,
                               .slow_answers_max_bytes = config.slow_answers_max_bytes},
                              service);
  auto http_port = http.Start();
  if (!http_port.ok()) {
    spdlog::critical("{}", http_port.status().message());
    return 1;
  }
  spdlog::info("{} serving HTTP on {}:{}{}; malloc from {}", rlog::RoleName(config.role),
               config.http_address, http_port.value(),
               grpc_port ? fmt::format(", gRPC on {}:{}", config.grpc_address, grpc_port) : "",
               MallocLibrary());
  if (!WritePortsFile(config.ports_file, http_port.value(), grpc_port)) {
    spdlog::critical("cannot write ports file {}", config.ports_file);
    return 1;
  }

  int sig = 0;
  while (sigwait(&signals, &sig) != 0 || sig == SIGUSR1 || sig == SIGUSR2) {
    if (sig == SIGUSR1 || sig == SIGUSR2) spdlog::warn("signal {} ignored", strsignal(sig));
    sig = 0;
  }
  spdlog::info("signal {}: draining", sig);
  auto drain = std::chrono::milliseconds(config.drain_timeout_ms);
  if (master) master->Drain(drain);
  if (sentinel) sentinel->Drain(drain);
  // Let the reactors flush the last answers before the endpoint goes away.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  http.Shutdown();
  // The drain's final flush may have failed (OnStorageError schedules exit 1, later than this).
  const bool failed = master && master->StorageFailed();
  spdlog::info(failed ? "stopped after a write-ahead log failure" : "stopped");
  // Flushed, not shut down: the replication thread may still log a line.
  spdlog::default_logger()->flush();
  // Streams may still be finishing on the replication thread; do not run destructors under them.
  std::_Exit(failed ? 1 : 0);
}

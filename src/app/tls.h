// Mutual TLS on the replication streams (docs/DEPLOY.md, "TLS"; the keys: docs/CONFIGURATION.md).
// With tls.* set, a sentinel serves gRPC only to clients whose certificate chains to
// tls.ca_file (and, with tls.master_name, carries that name: SentinelService::CheckPeer), and
// the master talks only to sentinels whose certificate does and carries the expected name
// (tls.server_name, else the host of the sentinel's address). Without them, replication is
// plaintext, as before.
//
// The files are checked once at start-up (CheckTlsFiles, errors name the key and the path); then
// gRPC's FileWatcherCertificateProvider reads them and re-reads them every
// tls.reload_interval_s, so a renewed certificate is used by the next connection without a
// restart.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "common/status.h"
#include "config/config.h"
#include "metrics/metrics.h"

namespace grpc {
class ChannelCredentials;
class ServerCredentials;
}  // namespace grpc

namespace rlog::app {

// Ok without TLS. With it: the CA and the certificate files hold PEM certificates, and the key
// file the private key of that certificate (parsed with OpenSSL); otherwise InvalidArgument
// naming the key and the path.
Status CheckTlsFiles(const Config& config);

// When the first certificate of the PEM file `path` expires (Unix seconds), or with `earliest`
// the first of all of them to expire (a CA bundle). NotFound / InvalidArgument otherwise.
Result<int64_t> CertificateNotAfter(const std::string& path, bool earliest);

// CertificateNotAfter for files read on every /metrics scrape: a file is parsed again only when
// it changed (its device, inode, size or modification time, following symlinks, so the swap of a
// Kubernetes secret volume counts). Parsing a certificate took about 0.3 ms per scrape here, on
// the HTTP thread (docs/PERFORMANCE.md, "TLS"); a stat takes microseconds. Thread-safe.
class CertificateExpiryCache {
 public:
  Result<int64_t> NotAfter(const std::string& path, bool earliest);

 private:
  struct Seen {
    uint64_t device = 0, inode = 0, size = 0;
    int64_t mtime_ns = 0;
    int64_t not_after = 0;
  };
  std::mutex mu_;
  std::map<std::pair<std::string, bool>, Seen> seen_;  // Parsed ok; guarded by mu_.
};

// Sets rlog_tls_certificate_expiry_timestamp_seconds from the files as they are now (they may
// have been renewed since start-up). A file that cannot be read or parsed leaves its series as it
// was. No-op without TLS.
void UpdateTlsMetrics(const Config& config, metrics::Metrics& metrics,
                      CertificateExpiryCache& cache);

// What the sentinel's gRPC server listens with: mutual TLS, or insecure without tls.*.
std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const Config& config);
// What the master connects to its sentinels with. The caller sets tls.server_name, when given,
// as the channel's GRPC_SSL_TARGET_NAME_OVERRIDE_ARG.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const Config& config);

}  // namespace rlog::app

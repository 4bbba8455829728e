#include "app/tls.h"

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace rlog::app {
namespace {

using grpc::experimental::FileWatcherCertificateProvider;

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;

Bio OpenPem(const std::string& path) { return Bio(BIO_new_file(path.c_str(), "r"), &BIO_free); }

std::string KeyError(const char* key, const std::string& path, const std::string& what) {
  return "config key '" + std::string(key) + "': '" + path + "' " + what;
}

std::shared_ptr<FileWatcherCertificateProvider> Provider(const Config& config) {
  return std::make_shared<FileWatcherCertificateProvider>(
      config.tls_key_file, config.tls_cert_file, config.tls_ca_file,
      config.tls_reload_interval_s);
}

template <typename Options>
void WatchBoth(Options& options) {
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
}

}  // namespace

Result<int64_t> CertificateNotAfter(const std::string& path, bool earliest) {
  Bio bio = OpenPem(path);
  if (!bio) return Status::NotFound("cannot read '" + path + "'");
  std::optional<int64_t> first;
  while (true) {
    std::unique_ptr<X509, decltype(&X509_free)> cert(
        PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
    if (!cert) break;
    std::tm tm{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) != 1) continue;
    const int64_t not_after = timegm(&tm);
    if (!first || not_after < *first) first = not_after;
    if (!earliest) break;
  }
  ERR_clear_error();  // The read past the last certificate leaves a "no start line" error.
  if (!first) return Status::InvalidArgument("no PEM certificate in '" + path + "'");
  return *first;
}

Result<int64_t> CertificateExpiryCache::NotAfter(const std::string& path, bool earliest) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return CertificateNotAfter(path, earliest);  // Its error.
  const Seen now{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                 static_cast<uint64_t>(st.st_size),
                 static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
  const auto key = std::make_pair(path, earliest);
  {
    std::lock_guard lock(mu_);
    auto it = seen_.find(key);
    if (it != seen_.end() && it->second.device == now.device && it->second.inode == now.inode &&
        it->second.size == now.size && it->second.mtime_ns == now.mtime_ns) {
      return it->second.not_after;
    }
  }
  Result<int64_t> parsed = CertificateNotAfter(path, earliest);
  std::lock_guard lock(mu_);
  if (parsed.ok()) {
    Seen seen = now;
    seen.not_after = parsed.value();
    seen_[key] = seen;
  } else {
    seen_.erase(key);
  }
  return parsed;
}

void UpdateTlsMetrics(const Config& config, metrics::Metrics& metrics,
                      CertificateExpiryCache& cache) {
  if (!config.tls_enabled()) return;
  if (auto node = cache.NotAfter(config.tls_cert_file, false); node.ok()) {
    metrics.SetTlsCertificateExpiry("node", node.value());
  }
  if (auto ca = cache.NotAfter(config.tls_ca_file, true); ca.ok()) {
    metrics.SetTlsCertificateExpiry("ca", ca.value());
  }
}

Status CheckTlsFiles(const Config& config) {
  if (!config.tls_enabled()) return Status::Ok();
  const std::pair<const char*, const std::string*> certificates[] = {
      {"tls.ca_file", &config.tls_ca_file}, {"tls.cert_file", &config.tls_cert_file}};
  for (const auto& [key, path] : certificates) {
    if (Result<int64_t> parsed = CertificateNotAfter(*path, false); !parsed.ok()) {
      return Status::InvalidArgument("config key '" + std::string(key) +
                                     "': " + parsed.status().message());
    }
  }
  // The key must parse, and be the key of the certificate (else every handshake fails later).
  Bio key_bio = OpenPem(config.tls_key_file);
  if (!key_bio) {
    return Status::InvalidArgument(KeyError("tls.key_file", config.tls_key_file, "cannot be read"));
  }
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  Bio cert_bio = OpenPem(config.tls_cert_file);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      cert_bio ? PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr) : nullptr,
      &X509_free);
  const bool matches = key && cert && X509_check_private_key(cert.get(), key.get()) == 1;
  ERR_clear_error();
  if (!key) {
    return Status::InvalidArgument(
        KeyError("tls.key_file", config.tls_key_file, "holds no PEM private key"));
  }
  if (!matches) {
    return Status::InvalidArgument(KeyError(
        "tls.key_file", config.tls_key_file,
        "is not the key of the certificate in '" + config.tls_cert_file + "' (tls.cert_file)"));
  }
  return Status::Ok();
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const Config& config) {
  if (!config.tls_enabled()) return grpc::InsecureServerCredentials();
  grpc::experimental::TlsServerCredentialsOptions options(Provider(config));
  WatchBoth(options);
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const Config& config) {
  if (!config.tls_enabled()) return grpc::InsecureChannelCredentials();
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(Provider(config));
  WatchBoth(options);
  options.set_verify_server_certs(true);
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace rlog::app

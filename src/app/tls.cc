#include "app/tls.h"

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

namespace rlog::app {
namespace {

using grpc::experimental::FileWatcherCertificateProvider;

Status CheckPem(const char* key, const std::string& path, std::string_view marker,
                const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::InvalidArgument("config key '" + std::string(key) + "': cannot read '" + path +
                                   "'");
  }
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().find(marker) == std::string::npos) {
    return Status::InvalidArgument("config key '" + std::string(key) + "': '" + path +
                                   "' holds no PEM " + what);
  }
  return Status::Ok();
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
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(path.c_str(), "r"), &BIO_free);
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

void UpdateTlsMetrics(const Config& config, metrics::Metrics& metrics) {
  if (!config.tls_enabled()) return;
  if (auto node = CertificateNotAfter(config.tls_cert_file, false); node.ok()) {
    metrics.SetTlsCertificateExpiry("node", node.value());
  }
  if (auto ca = CertificateNotAfter(config.tls_ca_file, true); ca.ok()) {
    metrics.SetTlsCertificateExpiry("ca", ca.value());
  }
}

Status CheckTlsFiles(const Config& config) {
  if (!config.tls_enabled()) return Status::Ok();
  if (Status s = CheckPem("tls.ca_file", config.tls_ca_file, "-----BEGIN CERTIFICATE-----",
                          "certificate");
      !s.ok()) {
    return s;
  }
  if (Status s = CheckPem("tls.cert_file", config.tls_cert_file, "-----BEGIN CERTIFICATE-----",
                          "certificate");
      !s.ok()) {
    return s;
  }
  // PKCS#8 ("BEGIN PRIVATE KEY"), RSA or EC ("BEGIN RSA PRIVATE KEY", ...).
  return CheckPem("tls.key_file", config.tls_key_file, "PRIVATE KEY-----", "private key");
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

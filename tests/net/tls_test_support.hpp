// Shared by the TLS tests: a fresh CA and certificates made by tests/net/tls_certs.sh (the
// openssl command) in a temporary directory removed at the end, and the peer certificate's CN.
#pragma once

#include <doctest/doctest.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "net/tls.hpp"

namespace wsx::net::testing {

class TestCertificates {
  public:
    TestCertificates() {
        char pattern[] = "/tmp/wsx-tls-XXXXXX";
        REQUIRE(::mkdtemp(pattern) != nullptr);
        dir_ = pattern;
        const std::string command = std::string("sh '") + WSX_TLS_CERTS_SCRIPT + "' '" + dir_ + "'";
        REQUIRE(std::system(command.c_str()) == 0);
    }
    ~TestCertificates() {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    TestCertificates(const TestCertificates&) = delete;
    TestCertificates& operator=(const TestCertificates&) = delete;

    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    const std::string& dir() const noexcept { return dir_; }

    TlsServerOptions server_options(const std::string& name = "server") const {
        TlsServerOptions options;
        options.cert_file = path(name + ".pem");
        options.key_file = path(name + ".key");
        return options;
    }
    TlsClientOptions client_options(const std::string& ca = "ca") const {
        TlsClientOptions options;
        options.ca_file = path(ca + ".pem");
        return options;
    }

  private:
    std::string dir_;
};

// The common name of the certificate the peer presented on this stream ("" if none).
inline std::string peer_common_name(const TlsStream& stream) {
    X509* cert = SSL_get0_peer_certificate(stream.native_handle());
    if (cert == nullptr) return {};
    char name[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name, sizeof name);
    return name;
}

}  // namespace wsx::net::testing

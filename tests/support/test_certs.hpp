// SPDX-License-Identifier: Apache-2.0
// Certificate authorities, server certificates and keys made in memory at test time.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <openssl/evp.h>
#include <openssl/x509.h>

namespace ssm_doctor::testing {

struct evp_pkey_deleter {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct x509_cert_deleter {
    void operator()(X509* cert) const { X509_free(cert); }
};
using evp_pkey_ptr = std::unique_ptr<EVP_PKEY, evp_pkey_deleter>;
using x509_cert_ptr = std::unique_ptr<X509, x509_cert_deleter>;

// A key pair and the certificate issued for it.
struct test_identity {
    evp_pkey_ptr key;
    x509_cert_ptr cert;

    std::string cert_pem() const;
    std::string key_pem() const;  // unencrypted PKCS#8
};

struct certificate_spec {
    std::string common_name;
    std::vector<std::string> dns_names;     // subjectAltName DNS entries
    std::vector<std::string> ip_addresses;  // subjectAltName IP entries, as text
    std::chrono::system_clock::time_point not_before;
    std::chrono::system_clock::time_point not_after;
};

// A server certificate spec for `host`: the name in CN and SAN, valid from an hour ago for 30
// days, whole seconds (certificates carry no fractions).
certificate_spec server_spec(const std::string& host);

// A self-signed CA (P-256 key, SHA-256), valid from a day ago for a year.
test_identity make_ca(const std::string& common_name);

// A TLS server certificate (P-256 key) signed by `issuer`.
test_identity make_server_certificate(const test_identity& issuer, const certificate_spec& spec);

// A directory under the system's temporary directory, removed with its contents on destruction.
class temp_dir {
public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    // Writes `text` to `name` inside the directory and returns the file's path.
    std::filesystem::path write(const std::string& name, const std::string& text) const;

private:
    std::filesystem::path path_;
};

}  // namespace ssm_doctor::testing

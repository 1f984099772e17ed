// SPDX-License-Identifier: Apache-2.0
// Builds test CAs and server certificates with OpenSSL 3's API; every failure throws with a name.
#include "tests/support/test_certs.hpp"

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <stdexcept>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

namespace ssm_doctor::testing {
namespace {

struct bio_deleter {
    void operator()(BIO* bio) const { BIO_free(bio); }
};
struct extension_deleter {
    void operator()(X509_EXTENSION* extension) const { X509_EXTENSION_free(extension); }
};
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;
using extension_ptr = std::unique_ptr<X509_EXTENSION, extension_deleter>;

[[noreturn]] void throw_openssl(const std::string& what) {
    char reason[256] = "no reason given";
    if (unsigned long code = ERR_get_error()) {
        ERR_error_string_n(code, reason, sizeof reason);
    }
    ERR_clear_error();
    throw std::runtime_error("test certificates: " + what + ": " + reason);
}

void check(int status, const std::string& what) {
    if (status != 1) {
        throw_openssl(what);
    }
}

evp_pkey_ptr make_key() {
    evp_pkey_ptr key(EVP_EC_gen("P-256"));
    if (!key) {
        throw_openssl("generating a P-256 key");
    }
    return key;
}

std::chrono::system_clock::time_point whole_seconds(std::chrono::system_clock::time_point t) {
    return std::chrono::time_point_cast<std::chrono::seconds>(t);
}

void add_extension(X509* cert, X509V3_CTX* context, int nid, const std::string& value) {
    extension_ptr extension(X509V3_EXT_conf_nid(nullptr, context, nid, value.c_str()));
    if (!extension) {
        throw_openssl("building extension " + std::string(OBJ_nid2sn(nid)) + "=" + value);
    }
    check(X509_add_ext(cert, extension.get(), -1), "adding extension " + value);
}

// The parts every certificate shares: version 3, a fresh serial, names, validity and key.
x509_cert_ptr start_certificate(const std::string& common_name, const X509* issuer, EVP_PKEY* key,
                                std::chrono::system_clock::time_point not_before,
                                std::chrono::system_clock::time_point not_after) {
    static std::atomic<long> next_serial{1000};
    x509_cert_ptr cert(X509_new());
    if (!cert) {
        throw_openssl("allocating a certificate");
    }
    check(X509_set_version(cert.get(), X509_VERSION_3), "setting the version");
    check(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), next_serial++), "setting a serial");
    X509_NAME* subject = X509_get_subject_name(cert.get());
    check(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(common_name.c_str()),
                                     -1, -1, 0),
          "setting CN=" + common_name);
    check(X509_set_issuer_name(cert.get(),
                               issuer != nullptr ? X509_get_subject_name(issuer) : subject),
          "setting the issuer");
    if (ASN1_TIME_set(X509_getm_notBefore(cert.get()),
                      std::chrono::system_clock::to_time_t(not_before)) == nullptr ||
        ASN1_TIME_set(X509_getm_notAfter(cert.get()),
                      std::chrono::system_clock::to_time_t(not_after)) == nullptr) {
        throw_openssl("setting the validity of " + common_name);
    }
    check(X509_set_pubkey(cert.get(), key), "setting the public key");
    return cert;
}

std::string pem_of(const std::function<int(BIO*)>& write, const std::string& what) {
    bio_ptr bio(BIO_new(BIO_s_mem()));
    if (!bio || write(bio.get()) != 1) {
        throw_openssl("writing " + what + " as PEM");
    }
    char* data = nullptr;
    const long length = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(length));
}

}  // namespace

std::string test_identity::cert_pem() const {
    return pem_of([this](BIO* bio) { return PEM_write_bio_X509(bio, cert.get()); },
                  "a certificate");
}

std::string test_identity::key_pem() const {
    return pem_of(
        [this](BIO* bio) {
            return PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
        },
        "a private key");
}

certificate_spec server_spec(const std::string& host) {
    const auto now = whole_seconds(std::chrono::system_clock::now());
    return certificate_spec{
        host, {host}, {}, now - std::chrono::hours(1), now + std::chrono::hours(24 * 30)};
}

test_identity make_ca(const std::string& common_name) {
    const auto now = whole_seconds(std::chrono::system_clock::now());
    test_identity ca{make_key(), nullptr};
    ca.cert = start_certificate(common_name, nullptr, ca.key.get(), now - std::chrono::hours(24),
                                now + std::chrono::hours(24 * 365));
    X509V3_CTX context;
    X509V3_set_ctx(&context, ca.cert.get(), ca.cert.get(), nullptr, nullptr, 0);
    add_extension(ca.cert.get(), &context, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(ca.cert.get(), &context, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_extension(ca.cert.get(), &context, NID_subject_key_identifier, "hash");
    if (X509_sign(ca.cert.get(), ca.key.get(), EVP_sha256()) <= 0) {
        throw_openssl("self-signing " + common_name);
    }
    return ca;
}

test_identity make_server_certificate(const test_identity& issuer, const certificate_spec& spec) {
    test_identity server{make_key(), nullptr};
    server.cert = start_certificate(spec.common_name, issuer.cert.get(), server.key.get(),
                                    spec.not_before, spec.not_after);
    X509V3_CTX context;
    X509V3_set_ctx(&context, issuer.cert.get(), server.cert.get(), nullptr, nullptr, 0);
    add_extension(server.cert.get(), &context, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(server.cert.get(), &context, NID_key_usage, "critical,digitalSignature");
    add_extension(server.cert.get(), &context, NID_ext_key_usage, "serverAuth");
    add_extension(server.cert.get(), &context, NID_authority_key_identifier, "keyid");
    std::string names;
    for (const auto& dns : spec.dns_names) {
        names += (names.empty() ? "DNS:" : ",DNS:") + dns;
    }
    for (const auto& ip : spec.ip_addresses) {
        names += (names.empty() ? "IP:" : ",IP:") + ip;
    }
    if (!names.empty()) {
        add_extension(server.cert.get(), &context, NID_subject_alt_name, names);
    }
    if (X509_sign(server.cert.get(), issuer.key.get(), EVP_sha256()) <= 0) {
        throw_openssl("signing " + spec.common_name);
    }
    return server;
}

temp_dir::temp_dir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "ssm-doctor-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
        throw std::runtime_error("cannot create a temporary directory like " + pattern);
    }
    path_ = pattern;
}

temp_dir::~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

std::filesystem::path temp_dir::write(const std::string& name, const std::string& text) const {
    const auto file = path_ / name;
    std::ofstream out(file, std::ios::binary);
    out << text;
    if (!out.flush()) {
        throw std::runtime_error("cannot write " + file.string());
    }
    return file;
}

}  // namespace ssm_doctor::testing

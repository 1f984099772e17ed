// SPDX-License-Identifier: Apache-2.0
// A stand-in for the SSM Agent's executables in the lab: answers -version and holds TLS sessions.
//
// The lab copies this one program to <lab>/bin/amazon-ssm-agent, ssm-agent-worker and
// ssm-session-worker, so /proc/<pid>/exe names it as the real agent's files are named.
//
//   <name> -version
//       prints "SSM Agent version: <v>", <v> read from the file VERSION next to the executable;
//       like the real agent, -version must be the only argument.
//   <name> --ca FILE [--proxy ADDRESS:PORT] [--hold ADDRESS:PORT:SERVER_NAME ...]
//       opens one verified TLS session per --hold, prints "ready" once all are up, and keeps
//       them open until killed. With --proxy every session goes through that HTTP proxy
//       (CONNECT SERVER_NAME:PORT), as the agent's do when HTTPS_PROXY is set. Any failure
//       ends the program with status 1 and says which.
#include <utility>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

namespace {

struct hold_target {
    std::string address;
    unsigned short port = 443;
    std::string server_name;
    std::string text;  // as given, for messages
};

// Owns one connected socket.
class socket_fd {
public:
    explicit socket_fd(int fd) : fd_(fd) {}
    socket_fd(const socket_fd&) = delete;
    socket_fd& operator=(const socket_fd&) = delete;
    socket_fd(socket_fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    socket_fd& operator=(socket_fd&& other) noexcept {
        std::swap(fd_, other.fd_);
        return *this;
    }
    ~socket_fd() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    int get() const { return fd_; }

private:
    int fd_;
};

struct ssl_ctx_free {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct ssl_free {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, ssl_ctx_free>;
using ssl_ptr = std::unique_ptr<SSL, ssl_free>;

// A held session: the socket outlives the SSL object that uses it.
struct session {
    socket_fd fd;
    ssl_ptr ssl;
};

std::string openssl_error() {
    const unsigned long code = ERR_get_error();
    if (code == 0) {
        return "no OpenSSL error queued";
    }
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    return text;
}

int print_version() {
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) {
        std::fprintf(stderr, "cannot read /proc/self/exe: %s\n", ec.message().c_str());
        return 1;
    }
    const auto version_file = exe.parent_path() / "VERSION";
    std::ifstream in(version_file);
    std::string version;
    if (!in || !std::getline(in, version) || version.empty()) {
        std::fprintf(stderr, "cannot read a version from %s\n", version_file.c_str());
        return 1;
    }
    std::printf("SSM Agent version: %s\n", version.c_str());
    return 0;
}

// "10.99.1.2:443:ssm.us-east-1.amazonaws.com"
bool parse_hold(const std::string& text, hold_target& out) {
    const auto first = text.find(':');
    const auto second = first == std::string::npos ? first : text.find(':', first + 1);
    if (second == std::string::npos || second + 1 >= text.size()) {
        return false;
    }
    out.address = text.substr(0, first);
    const std::string port = text.substr(first + 1, second - first - 1);
    char* end = nullptr;
    const long value = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || value < 1 || value > 65535) {
        return false;
    }
    out.port = static_cast<unsigned short>(value);
    out.server_name = text.substr(second + 1);
    out.text = text;
    return true;
}

// Connects with a bounded wait so a lab fault shows up as an error, not a hang.
bool connect_with_timeout(int fd, const sockaddr_in& to, int timeout_ms, std::string& error) {
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0) {
        return true;
    }
    if (errno != EINPROGRESS) {
        error = std::string("connect: ") + std::strerror(errno);
        return false;
    }
    pollfd p{fd, POLLOUT, 0};
    const int ready = ::poll(&p, 1, timeout_ms);
    if (ready <= 0) {
        error = ready == 0 ? "connect: timed out" : std::string("poll: ") + std::strerror(errno);
        return false;
    }
    int so_error = 0;
    socklen_t len = sizeof so_error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error != 0) {
        error = std::string("connect: ") + std::strerror(so_error);
        return false;
    }
    return true;
}

// Asks the proxy for a tunnel and reads its answer up to the blank line; 2xx means go on.
bool proxy_connect(int fd, const hold_target& target, std::string& error) {
    const std::string authority = target.server_name + ":" + std::to_string(target.port);
    const std::string request =
        "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
        error = std::string("proxy: send: ") + std::strerror(errno);
        return false;
    }
    std::string answer;
    char c = 0;
    // Byte by byte, so nothing of the tunnel is read past the proxy's answer.
    while (answer.size() < 8192 && answer.find("\r\n\r\n") == std::string::npos) {
        if (::recv(fd, &c, 1, 0) != 1) {
            error = "proxy: no complete answer to CONNECT";
            return false;
        }
        answer += c;
    }
    if (answer.compare(0, 10, "HTTP/1.1 2") != 0 && answer.compare(0, 10, "HTTP/1.0 2") != 0) {
        error = "proxy: " + answer.substr(0, answer.find("\r\n"));
        return false;
    }
    return true;
}

bool open_session(SSL_CTX* ctx, const hold_target& target, const hold_target* proxy, session& out,
                  std::string& error) {
    const hold_target& hop = proxy ? *proxy : target;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(hop.port);
    if (::inet_pton(AF_INET, hop.address.c_str(), &to.sin_addr) != 1) {
        error = "not an IPv4 address: " + hop.address;
        return false;
    }
    socket_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) {
        error = std::string("socket: ") + std::strerror(errno);
        return false;
    }
    if (!connect_with_timeout(fd.get(), to, 5000, error)) {
        return false;
    }
    // The handshake runs blocking, bounded by send and receive timeouts.
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
    timeval limit{5, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    if (proxy && !proxy_connect(fd.get(), target, error)) {
        return false;
    }

    ssl_ptr ssl(SSL_new(ctx));
    if (!ssl || SSL_set_fd(ssl.get(), fd.get()) != 1 ||
        SSL_set_tlsext_host_name(ssl.get(), target.server_name.c_str()) != 1 ||
        SSL_set1_host(ssl.get(), target.server_name.c_str()) != 1) {
        error = "TLS setup: " + openssl_error();
        return false;
    }
    if (SSL_connect(ssl.get()) != 1) {
        const long verify = SSL_get_verify_result(ssl.get());
        error = verify != X509_V_OK
                    ? std::string("TLS verify: ") + X509_verify_cert_error_string(verify)
                    : "TLS handshake: " + openssl_error();
        return false;
    }
    // Held sessions are read without blocking (see hold()).
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
    out.fd = std::move(fd);
    out.ssl = std::move(ssl);
    return true;
}

// Reads and drops whatever the servers send, so a closed session is noticed and reported.
void hold(std::vector<session>& sessions, const std::vector<hold_target>& targets) {
    std::vector<pollfd> polled;
    for (const auto& s : sessions) {
        polled.push_back({s.fd.get(), POLLIN, 0});
    }
    std::size_t open = sessions.size();
    for (;;) {
        if (::poll(polled.data(), polled.size(), -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            std::perror("poll");
            return;
        }
        for (std::size_t i = 0; i < polled.size(); ++i) {
            if (polled[i].revents == 0) {
                continue;
            }
            char buffer[4096];
            SSL* ssl = sessions[i].ssl.get();
            const int got = SSL_read(ssl, buffer, sizeof buffer);
            // Session tickets and other records without application data leave WANT_READ.
            if (got > 0 || SSL_get_error(ssl, got) == SSL_ERROR_WANT_READ) {
                continue;
            }
            std::fprintf(stderr, "session to %s ended\n", targets[i].text.c_str());
            polled[i].fd = -1;  // poll ignores negative descriptors
            if (--open == 0) {
                // Nothing left to hold; stay alive as an idle process, as the agent would.
                for (;;) {
                    ::pause();
                }
            }
        }
    }
}

int run_holder(int argc, char** argv) {
    std::string ca_file;
    std::vector<hold_target> targets;
    std::optional<hold_target> proxy;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if ((arg == "--ca" || arg == "--hold" || arg == "--proxy") && i + 1 < argc) {
            const std::string value = argv[++i];
            if (arg == "--ca") {
                ca_file = value;
                continue;
            }
            if (arg == "--proxy") {
                hold_target hop;
                if (!parse_hold(value + ":proxy", hop)) {
                    std::fprintf(stderr, "--proxy wants ADDRESS:PORT, got \"%s\"\n", value.c_str());
                    return 2;
                }
                proxy = hop;
                continue;
            }
            hold_target target;
            if (!parse_hold(value, target)) {
                std::fprintf(stderr, "--hold wants ADDRESS:PORT:SERVER_NAME, got \"%s\"\n",
                             value.c_str());
                return 2;
            }
            targets.push_back(target);
            continue;
        }
        std::fprintf(stderr, "unknown argument \"%s\"\n", arg.c_str());
        return 2;
    }
    if (!targets.empty() && ca_file.empty()) {
        std::fprintf(stderr, "--hold needs --ca FILE\n");
        return 2;
    }

    ssl_ctx_ptr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) {
        std::fprintf(stderr, "SSL_CTX_new: %s\n", openssl_error().c_str());
        return 1;
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (!ca_file.empty() &&
        SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1) {
        std::fprintf(stderr, "cannot load CA file %s: %s\n", ca_file.c_str(),
                     openssl_error().c_str());
        return 1;
    }

    std::vector<session> sessions;
    for (const auto& target : targets) {
        session s{socket_fd(-1), nullptr};
        std::string error;
        if (!open_session(ctx.get(), target, proxy ? &*proxy : nullptr, s, error)) {
            std::fprintf(stderr, "cannot hold a session to %s: %s\n", target.text.c_str(),
                         error.c_str());
            return 1;
        }
        sessions.push_back(std::move(s));
    }
    std::printf("ready\n");
    std::fflush(stdout);
    if (sessions.empty()) {
        for (;;) {
            ::pause();
        }
    }
    hold(sessions, targets);
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && std::strcmp(argv[1], "-version") == 0) {
        return print_version();
    }
    ::signal(SIGPIPE, SIG_IGN);
    return run_holder(argc, argv);
}

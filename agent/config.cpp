// SPDX-License-Identifier: Apache-2.0
// Reads ssm-doctor.yaml: every setting is one row of a table that names its key path and reader.
#include "agent/config.hpp"

#include <utility>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include "agent/targets.hpp"

namespace ssm_doctor {

std::vector<std::string> default_ec2messages_unsupported_regions() {
    // Regions launched in 2024 or later (Systems Manager user guide, change of 2024-05-03): the
    // agent cannot report through ec2messages there. Add new regions here, and only here.
    return {"ap-southeast-5", "ap-southeast-7", "mx-central-1", "ap-east-2"};
}

namespace {

// A configuration file is a few hundred bytes; the cap keeps a wrong path (a log, a device)
// from being read whole.
constexpr std::size_t max_config_bytes = 1024 * 1024;

// Shows a value from the file in a message: quoted, escaped, and cut when long.
std::string quote(std::string_view text) {
    constexpr std::size_t max_shown = 80;
    std::string out = "\"";
    for (std::size_t i = 0; i < text.size() && i < max_shown; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xf];
        } else {
            out += static_cast<char>(c);
        }
    }
    out += text.size() > max_shown ? "...\"" : "\"";
    return out;
}

// What a node holds, in the words of a message ("got a map").
std::string describe(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Map:
            return "a map";
        case YAML::NodeType::Sequence:
            return node.size() == 0 ? "an empty list" : "a list";
        case YAML::NodeType::Scalar:
            return quote(node.Scalar());
        case YAML::NodeType::Null:
        case YAML::NodeType::Undefined:
            break;
    }
    return "nothing";
}

// A plain scalar is untyped in YAML; quoting it or tagging it !!str makes it a string.
bool is_quoted_or_string_tagged(const YAML::Node& node) {
    return node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str";
}

int line_of(const YAML::Node& node, int fallback) {
    const YAML::Mark mark = node.Mark();
    return mark.is_null() ? fallback : mark.line + 1;
}

std::string located(std::string_view source, int line, std::string_view path,
                    std::string_view what) {
    std::string message(source);
    if (line > 0) {
        message += ':';
        message += std::to_string(line);
    }
    message += ": ";
    if (!path.empty()) {
        message += path;
        message += ": ";
    }
    message += what;
    return message;
}

// One value from the file with everything a message about it needs.
class setting {
public:
    setting(std::string_view source, std::string path, YAML::Node value, int key_line)
        : source_(source), path_(std::move(path)), value_(std::move(value)) {
        // An empty value has no place of its own (yaml-cpp marks the next token); use the key's.
        line_ = value_.IsNull() ? key_line : line_of(value_, key_line);
    }

    const YAML::Node& value() const { return value_; }

    // The i-th element of a list value, for messages such as "probe.endpoints[1]: ...".
    setting item(std::size_t index) const {
        return setting(source_, path_ + '[' + std::to_string(index) + ']', value_[index], line_);
    }

    [[noreturn]] void fail(std::string_view what) const {
        throw config_error(located(source_, line_, path_, what));
    }

    [[noreturn]] void fail_expected(std::string_view expected) const {
        std::string what(expected);
        what += ", got ";
        if (value_.IsScalar() && is_quoted_or_string_tagged(value_)) {
            what += "the string ";
        }
        what += describe(value_);
        fail(what);
    }

private:
    std::string_view source_;
    std::string path_;
    YAML::Node value_;
    int line_ = 0;
};

// --- readers: one per kind of value, each failing with the expectation in plain words --------

std::string read_string(const setting& s, std::string_view expected) {
    if (!s.value().IsScalar()) {
        s.fail_expected(expected);
    }
    return s.value().Scalar();
}

std::filesystem::path read_path(const setting& s) {
    constexpr std::string_view expected = "expected an absolute path";
    const std::string text = read_string(s, expected);
    // The service runs with "/" as its working directory, so a relative path is a mistake; a
    // NUL would silently cut the name short at open().
    if (text.empty() || text.front() != '/' || text.find('\0') != std::string::npos) {
        s.fail_expected(expected);
    }
    return text;
}

std::string read_region(const setting& s) {
    constexpr std::string_view expected =
        "expected a region name such as \"us-east-1\" (letters, digits and '-')";
    std::string text = read_string(s, expected);
    if (!valid_region(text)) {
        s.fail_expected(expected);
    }
    return text;
}

// `max_seconds` bounds the value so a typo (300 for 3.00) cannot stall a check for long.
std::chrono::milliseconds read_seconds(const setting& s, double max_seconds) {
    constexpr std::string_view expected = "expected a number of seconds greater than 0";
    if (!s.value().IsScalar() || is_quoted_or_string_tagged(s.value())) {
        s.fail_expected(expected);
    }
    const std::string& text = s.value().Scalar();
    double seconds = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(seconds) ||
        seconds <= 0) {
        s.fail_expected(expected);
    }
    if (seconds > max_seconds) {
        std::string limit = std::to_string(static_cast<long>(max_seconds));
        s.fail_expected("expected at most " + limit + " seconds");
    }
    const auto ms = std::llround(seconds * 1000.0);
    if (ms < 1) {
        s.fail_expected("expected at least 0.001 seconds");
    }
    return std::chrono::milliseconds(ms);
}

// http://host[:port] with an optional final "/", as the IMDS probe wants it (no path).
std::string read_imds_endpoint(const setting& s) {
    constexpr std::string_view expected =
        "expected an address such as \"http://169.254.169.254\" (http://host[:port], no path)";
    std::string text = read_string(s, expected);
    constexpr std::string_view scheme = "http://";
    if (!text.starts_with(scheme)) {
        s.fail_expected(expected);
    }
    if (text.size() > scheme.size() && text.back() == '/') {
        text.pop_back();
    }
    const std::string_view authority = std::string_view(text).substr(scheme.size());
    if (authority.find_first_of("/?#") != std::string_view::npos ||
        !parse_endpoint_override(text)) {
        s.fail_expected(expected);
    }
    return text;
}

// Lists: `allow_empty` says whether "[]" means something (an empty region list does: none).
void require_list(const setting& s, std::string_view expected, bool allow_empty) {
    if (!s.value().IsSequence() || (!allow_empty && s.value().size() == 0)) {
        s.fail_expected(expected);
    }
}

std::string all_service_names() {
    std::string names;
    for (service svc : all_services) {
        if (!names.empty()) {
            names += ", ";
        }
        names += to_string(svc);
    }
    return names;
}

std::vector<service> read_services(const setting& s) {
    require_list(s, "expected a non-empty list of service names", false);
    const std::string expected = "expected one of " + all_service_names();
    std::vector<service> services;
    for (std::size_t i = 0; i < s.value().size(); ++i) {
        const setting item = s.item(i);
        const auto svc = parse_service(read_string(item, expected));
        if (!svc) {
            item.fail_expected(expected);
        }
        if (std::find(services.begin(), services.end(), *svc) != services.end()) {
            item.fail(quote(to_string(*svc)) + " is listed twice");
        }
        services.push_back(*svc);
    }
    return services;
}

std::vector<std::string> read_regions(const setting& s) {
    require_list(s, "expected a list of region names", true);
    std::vector<std::string> regions;
    for (std::size_t i = 0; i < s.value().size(); ++i) {
        const setting item = s.item(i);
        std::string region = read_region(item);
        if (std::find(regions.begin(), regions.end(), region) != regions.end()) {
            item.fail(quote(region) + " is listed twice");
        }
        regions.push_back(std::move(region));
    }
    return regions;
}

bool read_bool(const setting& s) {
    constexpr std::string_view expected = "expected true or false";
    const std::string text = read_string(s, expected);
    if (is_quoted_or_string_tagged(s.value()) || (text != "true" && text != "false")) {
        s.fail_expected(expected);
    }
    return text == "true";
}

// A whole number within [min, max]; sizes are bytes, written as plain numbers.
std::uint64_t read_count(const setting& s, std::uint64_t min, std::uint64_t max) {
    const std::string expected =
        "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max);
    if (!s.value().IsScalar() || is_quoted_or_string_tagged(s.value())) {
        s.fail_expected(expected);
    }
    const std::string& text = s.value().Scalar();
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) {
        s.fail_expected(expected);
    }
    return value;
}

// CloudWatch Logs' own rules: a group is 1-512 of [.-_/#A-Za-z0-9]; a stream 1-512 characters
// without ':' or '*'.
std::string read_log_group(const setting& s) {
    constexpr std::string_view expected =
        "expected a log group name (1-512 of letters, digits and . - _ / #)";
    std::string text = read_string(s, expected);
    const bool ok = !text.empty() && text.size() <= 512 &&
                    std::all_of(text.begin(), text.end(), [](unsigned char c) {
                        return std::isalnum(c) || std::strchr(".-_/#", c) != nullptr;
                    });
    if (!ok) {
        s.fail_expected(expected);
    }
    return text;
}

std::string read_log_stream(const setting& s) {
    constexpr std::string_view expected =
        "expected a log stream name (1-512 characters, no ':' or '*')";
    std::string text = read_string(s, expected);
    if (text.empty() || text.size() > 512 || text.find_first_of(":*") != std::string::npos ||
        text.find('\0') != std::string::npos) {
        s.fail_expected(expected);
    }
    return text;
}

std::string read_metric_namespace(const setting& s) {
    constexpr std::string_view expected =
        "expected a metric namespace (1-255 printable characters, not starting with ':')";
    std::string text = read_string(s, expected);
    const bool ok = !text.empty() && text.size() <= 255 && text.front() != ':' &&
                    std::all_of(text.begin(), text.end(),
                                [](unsigned char c) { return c >= 0x20 && c < 0x7f; });
    if (!ok) {
        s.fail_expected(expected);
    }
    return text;
}

// https://host[:port] with nothing after it: where PutLogEvents goes instead of the default.
std::string read_https_endpoint(const setting& s) {
    constexpr std::string_view expected = "expected https://host[:port]";
    std::string text = read_string(s, expected);
    while (text.size() > 8 && text.back() == '/') {
        text.pop_back();
    }
    const auto parsed = parse_endpoint_override(text);
    if (!text.starts_with("https://") || !parsed || parsed->plain_http ||
        text.find('/', 8) != std::string::npos) {
        s.fail_expected(expected);
    }
    return text;
}

// --- the table of keys -------------------------------------------------------------------------

struct key_rule {
    std::string_view path;  // dotted: "probe.timeout" is key "timeout" in the map "probe"
    void (*apply)(const setting& s, doctor_config& config);
};

// A new setting is one row here (and a field in doctor_config); sections are implied by paths.
constexpr key_rule key_rules[] = {
    {"region", [](const setting& s, doctor_config& c) { c.region = read_region(s); }},
    {"agent.binary", [](const setting& s, doctor_config& c) { c.agent_binary = read_path(s); }},
    {"agent.config", [](const setting& s, doctor_config& c) { c.agent_config = read_path(s); }},
    {"agent.log_dir", [](const setting& s, doctor_config& c) { c.agent_log_dir = read_path(s); }},
    {"imds.endpoint",
     [](const setting& s, doctor_config& c) { c.imds_endpoint = read_imds_endpoint(s); }},
    {"imds.timeout",
     [](const setting& s, doctor_config& c) { c.imds_timeout = read_seconds(s, 60); }},
    // Existence is checked where the TLS context loads it, so that the error says why it failed.
    {"tls.ca_file", [](const setting& s, doctor_config& c) { c.tls_ca_file = read_path(s); }},
    {"probe.timeout",
     [](const setting& s, doctor_config& c) { c.probe_timeout = read_seconds(s, 300); }},
    {"probe.endpoints",
     [](const setting& s, doctor_config& c) { c.probe_endpoints = read_services(s); }},
    {"ec2messages_unsupported_regions",
     [](const setting& s, doctor_config& c) {
         c.ec2messages_unsupported_regions = read_regions(s);
     }},
    {"watch.interval",
     [](const setting& s, doctor_config& c) { c.watch.interval = read_seconds(s, 86400); }},
    {"watch.sample",
     [](const setting& s, doctor_config& c) { c.watch.sample = read_seconds(s, 3600); }},
    {"watch.summary",
     [](const setting& s, doctor_config& c) { c.watch.summary = read_seconds(s, 7 * 86400); }},
    {"events.enabled", [](const setting& s, doctor_config& c) { c.events.enabled = read_bool(s); }},
    {"events.file", [](const setting& s, doctor_config& c) { c.events.file = read_path(s); }},
    // Below 64 KiB a rotation would come every few checks; above 1 GiB the disk is at risk.
    {"events.max_bytes",
     [](const setting& s, doctor_config& c) {
         c.events.max_bytes = read_count(s, 64u << 10, 1u << 30);
     }},
    {"events.keep",
     [](const setting& s, doctor_config& c) {
         c.events.keep = static_cast<int>(read_count(s, 1, 100));
     }},
    {"cloudwatch.log_group",
     [](const setting& s, doctor_config& c) { c.cloudwatch.log_group = read_log_group(s); }},
    {"cloudwatch.log_stream",
     [](const setting& s, doctor_config& c) { c.cloudwatch.log_stream = read_log_stream(s); }},
    {"cloudwatch.endpoint",
     [](const setting& s, doctor_config& c) { c.cloudwatch.endpoint = read_https_endpoint(s); }},
    {"cloudwatch.namespace",
     [](const setting& s, doctor_config& c) {
         c.cloudwatch.metric_namespace = read_metric_namespace(s);
     }},
    {"cloudwatch.spool_dir",
     [](const setting& s, doctor_config& c) { c.cloudwatch.spool_dir = read_path(s); }},
    {"cloudwatch.spool_max_bytes",
     [](const setting& s, doctor_config& c) {
         c.cloudwatch.spool_max_bytes = read_count(s, 1u << 20, 1ull << 34);
     }},
    {"cloudwatch.flush_timeout",
     [](const setting& s, doctor_config& c) { c.cloudwatch.flush_timeout = read_seconds(s, 300); }},
};

const key_rule* find_rule(std::string_view path) {
    for (const key_rule& rule : key_rules) {
        if (rule.path == path) {
            return &rule;
        }
    }
    return nullptr;
}

// The names allowed directly under `prefix` ("" for the top level), for "unknown setting".
std::set<std::string_view> names_under(std::string_view prefix) {
    std::set<std::string_view> names;
    for (const key_rule& rule : key_rules) {
        std::string_view rest = rule.path;
        if (!prefix.empty()) {
            if (!rest.starts_with(prefix) || rest.size() <= prefix.size() ||
                rest[prefix.size()] != '.') {
                continue;
            }
            rest.remove_prefix(prefix.size() + 1);
        }
        names.insert(rest.substr(0, rest.find('.')));
    }
    return names;
}

bool is_section(std::string_view path) {
    return find_rule(path) == nullptr && !names_under(path).empty();
}

std::string join(const std::set<std::string_view>& names) {
    std::string out;
    for (std::string_view name : names) {
        if (!out.empty()) {
            out += ", ";
        }
        out += name;
    }
    return out;
}

void apply_section(const YAML::Node& map, const std::string& prefix, std::string_view source,
                   doctor_config& config) {
    std::map<std::string, int> first_line;  // keys seen in this map, for duplicates
    for (const auto& entry : map) {
        const YAML::Node& key = entry.first;
        const int key_line = line_of(key, 0);
        if (!key.IsScalar() || key.Scalar().empty()) {
            throw config_error(
                located(source, key_line, prefix, "expected a setting name, got " + describe(key)));
        }
        const std::string& name = key.Scalar();
        const std::string path = prefix.empty() ? name : prefix + '.' + name;

        // A dotted key ("probe.timeout: 3" at the top level) is refused rather than read as
        // the nested one, so a setting has one spelling and duplicates stay visible.
        if (name.find('.') != std::string::npos || (!find_rule(path) && !is_section(path))) {
            const auto known = names_under(prefix);
            throw config_error(
                located(source, key_line, path, "unknown setting; known here: " + join(known)));
        }
        if (const auto [it, inserted] = first_line.emplace(name, key_line); !inserted) {
            throw config_error(
                located(source, key_line, path,
                        "set twice (first on line " + std::to_string(it->second) + ")"));
        }

        const setting value(source, path, entry.second, key_line);
        if (const key_rule* rule = find_rule(path)) {
            rule->apply(value, config);
        } else if (entry.second.IsMap()) {
            apply_section(entry.second, path, source, config);
        } else if (!entry.second.IsNull()) {  // "probe:" alone is an empty section
            value.fail_expected("expected a map of settings");
        }
    }
}

// Closes the descriptor on every path out of read_whole_file.
class unique_fd {
public:
    explicit unique_fd(int fd) : fd_(fd) {}
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    int get() const { return fd_; }

private:
    int fd_;
};

struct file_text {
    std::string text;
    int error = 0;       // errno of the failed step, 0 on success or for the reasons below
    std::string reason;  // why it could not be read, empty on success
};

// A FIFO or device is refused: O_NONBLOCK keeps open() itself from waiting for a FIFO's writer,
// and the size cap keeps a wrong path from being read whole.
file_text read_whole_file(const std::filesystem::path& path) {
    file_text out;
    const auto fail = [&out](int error, std::string reason) {
        out.error = error;
        out.reason = reason.empty() ? std::generic_category().message(error) : std::move(reason);
        return out;
    };
    const unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (fd.get() < 0) {
        return fail(errno, "");
    }
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) {
        return fail(errno, "");
    }
    if (S_ISDIR(info.st_mode)) {
        return fail(EISDIR, "");
    }
    if (!S_ISREG(info.st_mode)) {
        return fail(0, "not a regular file");
    }
    char buffer[8192];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return fail(errno, "");
        }
        if (n == 0) {
            return out;
        }
        out.text.append(buffer, static_cast<std::size_t>(n));
        if (out.text.size() > max_config_bytes) {
            return fail(0, "larger than " + std::to_string(max_config_bytes / 1024) + " KiB");
        }
    }
}

}  // namespace

doctor_config parse_config(std::string_view yaml_text, std::string_view source) {
    std::vector<YAML::Node> documents;
    try {
        documents = YAML::LoadAll(std::string(yaml_text));
    } catch (const YAML::Exception& e) {
        const int line = e.mark.is_null() ? 0 : e.mark.line + 1;
        throw config_error(located(source, line, "", "invalid YAML: " + e.msg));
    }

    doctor_config config;
    // An empty file, or one with only comments, has no document (or a null one): all defaults.
    if (documents.empty() || documents.front().IsNull()) {
        return config;
    }
    for (std::size_t i = 1; i < documents.size(); ++i) {
        if (!documents[i].IsNull()) {
            throw config_error(located(source, line_of(documents[i], 0), "",
                                       "expected one YAML document, found a second one"));
        }
    }
    const YAML::Node& root = documents.front();
    if (!root.IsMap()) {
        throw config_error(
            located(source, line_of(root, 1), "",
                    "expected a map of settings at the top level, got " + describe(root)));
    }
    try {
        apply_section(root, "", source, config);
    } catch (const YAML::Exception& e) {
        // Not expected once the text has parsed, but a library error must still name the file.
        throw config_error(located(source, e.mark.is_null() ? 0 : e.mark.line + 1, "", e.msg));
    }
    return config;
}

std::string read_config_file(const std::filesystem::path& path, bool required) {
    file_text file = read_whole_file(path);
    if (!file.reason.empty()) {
        if (file.error == ENOENT && !required) {
            return {};
        }
        throw config_error(path.string() + ": cannot read: " + file.reason);
    }
    return std::move(file.text);
}

doctor_config load_config(const std::filesystem::path& path, bool required) {
    return parse_config(read_config_file(path, required), path.string());
}

}  // namespace ssm_doctor

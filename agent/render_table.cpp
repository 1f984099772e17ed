// SPDX-License-Identifier: Apache-2.0
// The table for people: a header about the host, one row per endpoint address, the findings
// with their fixes, and the verdict last, where the eye ends.
#include <algorithm>
#include <sstream>

#include "agent/render.hpp"
#include "probes/proxy.hpp"

namespace ssm_doctor {
namespace {

struct palette {
    bool on = false;
    std::string paint(std::string_view text, std::string_view code) const {
        if (!on) {
            return std::string(text);
        }
        return "\x1b[" + std::string(code) + "m" + std::string(text) + "\x1b[0m";
    }
};

std::string_view color_of(verdict v) {
    switch (v) {
        case verdict::ok:
            return "1;32";
        case verdict::warning:
            return "1;33";
        case verdict::critical:
            return "1;31";
        case verdict::unknown:
            return "1;35";
    }
    return "0";
}

std::string_view color_of(severity s) {
    switch (s) {
        case severity::info:
            return "36";
        case severity::warning:
            return "33";
        case severity::critical:
            return "31";
    }
    return "0";
}

std::string upper(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return out;
}

std::string ms(const std::optional<std::chrono::milliseconds>& value) {
    return value ? std::to_string(value->count()) : "-";
}

std::string requirement_text(requirement r) {
    std::string text(to_string(r));
    std::replace(text.begin(), text.end(), '_', ' ');
    return text;
}

std::string failure_text(const probe_failure& f) {
    return std::string(to_string(f.phase)) + " " + std::string(to_string(f.reason));
}

std::string sessions_text(const endpoint_observation& ep, const ip_address& ip) {
    std::string text;
    for (const auto& s : ep.sessions) {
        if (s.remote.address() != ip) {
            continue;
        }
        if (!text.empty()) {
            text += ", ";
        }
        text += s.process + " " + std::to_string(s.pid);
    }
    return text.empty() ? "-" : text;
}

// Cells are padded to each column's widest cell; the last column is not padded.
class text_table {
public:
    explicit text_table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

    void print(std::ostream& out, const std::vector<std::string>& row_colors,
               const palette& colors) const {
        std::vector<std::size_t> widths(rows_.front().size(), 0);
        for (const auto& row : rows_) {
            for (std::size_t i = 0; i < row.size(); ++i) {
                widths[i] = std::max(widths[i], row[i].size());
            }
        }
        for (std::size_t r = 0; r < rows_.size(); ++r) {
            std::string line;
            for (std::size_t i = 0; i < rows_[r].size(); ++i) {
                std::string cell = rows_[r][i];
                if (i + 1 < rows_[r].size()) {
                    cell.resize(widths[i] + 2, ' ');
                }
                line += cell;
            }
            const auto& code = r < row_colors.size() ? row_colors[r] : std::string();
            out << (code.empty() ? line : colors.paint(line, code)) << '\n';
        }
    }

private:
    std::vector<std::vector<std::string>> rows_;
};

void print_header(std::ostream& out, const report& r) {
    const auto& seen = r.seen;
    out << "ssm-doctor " << SSM_DOCTOR_VERSION << "   checked " << format_utc(r.checked_at)
        << " in " << seen.elapsed.count() << " ms\n";

    out << "Region    ";
    if (seen.region) {
        out << *seen.region << " (from " << seen.region_source << ")";
    } else {
        out << "unknown";
    }
    if (seen.imds.instance_id) {
        out << "   instance " << *seen.imds.instance_id;
    }
    if (!seen.imds.vpc_cidrs.empty()) {
        out << "   VPC";
        for (const auto& b : seen.imds.vpc_cidrs) {
            out << ' ' << b.to_string();
        }
    }
    out << '\n';

    const auto& agent = seen.agent;
    out << "Agent     ";
    if (!agent.installed) {
        out << "not installed";
    } else {
        out << (agent.version ? agent.version->to_string() : "version unknown");
        if (!agent.version_source.empty()) {
            out << " (from " << agent.version_source << ")";
        }
        out << ", " << to_string(agent.method) << " install";
    }
    if (agent.processes.empty()) {
        out << "; no agent process running";
    } else {
        out << "; running:";
        for (const auto& p : agent.processes) {
            out << ' ' << p.name << ' ' << p.pid;
        }
    }
    out << '\n';
    if (agent.proxy) {
        out << "Proxy     " << redact_proxy_url(agent.proxy->https_proxy);
        if (!agent.proxy->no_proxy.empty()) {
            out << "   no_proxy " << agent.proxy->no_proxy;
        }
        out << '\n';
    }
    if (seen.agent_config.present) {
        out << "Config    " << seen.agent_config.path.string()
            << (seen.agent_config.error ? " (invalid)" : "") << '\n';
    }
}

void print_endpoints(std::ostream& out, const report& r, const palette& colors) {
    text_table table({"SERVICE", "NEED", "HOST", "ADDRESS", "KIND", "RESULT", "DNS ms",
                      "CONNECT ms", "TLS ms", "AGENT SESSION"});
    std::vector<std::string> row_colors{"1"};
    for (std::size_t i = 0; i < r.seen.endpoints.size(); ++i) {
        const auto& ep = r.seen.endpoints[i];
        const auto need = i < r.requirements.size() ? requirement_text(r.requirements[i]) : "";
        std::string host = ep.target.host.empty() ? "(no region)" : ep.target.host;
        if (ep.target.overridden) {
            host += " *";
        }
        if (ep.via_proxy) {
            host += " (via proxy)";
        }
        if (ep.addresses.empty()) {
            std::string result = ep.dns.failure ? failure_text(*ep.dns.failure) : "not probed";
            table.add({std::string(to_string(ep.target.svc)), need, host, "-", "-", result,
                       ms(ep.dns_ms), "-", "-", "-"});
            row_colors.push_back(ep.probed ? "31" : "");
            continue;
        }
        bool first = true;
        for (const auto& a : ep.addresses) {
            const auto result = a.probe.ok        ? std::string("ok")
                                : a.probe.failure ? failure_text(*a.probe.failure)
                                                  : std::string("failed");
            std::string kind(to_string(a.kind));
            if (a.in_vpc) {
                kind += *a.in_vpc ? " in VPC" : " outside VPC";
            }
            table.add({first ? std::string(to_string(ep.target.svc)) : "", first ? need : "",
                       first ? host : "", a.ip.to_string(), kind, result,
                       first ? ms(ep.dns_ms) : "", ms(a.probe.connect_ms), ms(a.probe.tls_ms),
                       sessions_text(ep, a.ip)});
            row_colors.push_back(a.probe.ok ? "" : "31");
            first = false;
        }
    }
    table.print(out, row_colors, colors);
    const bool any_override = std::any_of(r.seen.endpoints.begin(), r.seen.endpoints.end(),
                                          [](const auto& ep) { return ep.target.overridden; });
    if (any_override) {
        out << "* host set by the agent's configuration\n";
    }
}

// Words of `text` in lines of at most `width` columns, each after `indent` (a word longer than
// the width, such as a URL, gets a line of its own rather than being cut).
std::string wrap(std::string_view text, std::size_t indent, std::size_t width) {
    std::string out;
    std::size_t column = 0;
    std::size_t at = 0;
    while (at < text.size()) {
        const auto start = text.find_first_not_of(' ', at);
        if (start == std::string_view::npos) {
            break;
        }
        const auto end = std::min(text.find(' ', start), text.size());
        const auto word = text.substr(start, end - start);
        if (column == 0) {
            out.append(indent, ' ');
            column = indent;
        } else if (column + 1 + word.size() > width) {
            out += '\n';
            out.append(indent, ' ');
            column = indent;
        } else {
            out += ' ';
            ++column;
        }
        out += word;
        column += word.size();
        at = end;
    }
    return out + '\n';
}

constexpr std::size_t finding_indent = 12;
constexpr std::size_t line_width = 100;

void print_findings(std::ostream& out, const report& r, const palette& colors) {
    if (r.findings.empty()) {
        out << "\nNo findings.\n";
        return;
    }
    out << "\nFindings\n";
    for (const auto& f : r.findings) {
        std::string level = upper(to_string(f.level));
        level.resize(9, ' ');
        out << "  " << colors.paint(level, color_of(f.level)) << f.id;
        if (f.svc) {
            out << " (" << to_string(*f.svc) << ")";
        }
        out << '\n' << wrap(f.message, finding_indent, line_width);
        if (!f.remedy.empty()) {
            out << wrap("Fix: " + f.remedy, finding_indent, line_width);
        }
    }
}

}  // namespace

std::string render_table(const report& r, bool color) {
    const palette colors{color};
    std::ostringstream out;
    print_header(out, r);
    out << '\n';
    print_endpoints(out, r, colors);
    print_findings(out, r, colors);
    out << "\nVerdict: " << colors.paint(upper(to_string(r.overall)), color_of(r.overall)) << '\n';
    return out.str();
}

}  // namespace ssm_doctor

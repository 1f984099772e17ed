// SPDX-License-Identifier: Apache-2.0
#include "agent/check_worker.hpp"

#include <istream>
#include <iterator>
#include <ostream>

#include <nlohmann/json.hpp>

#include "agent/config.hpp"
#include "agent/observations_codec.hpp"

namespace ssm_doctor {
namespace {

using nlohmann::json;

constexpr int format_version = 1;

}  // namespace

std::string encode_worker_request(const worker_request& request) {
    return json{{"format", format_version},
                {"config_text", request.config_text},
                {"config_source", request.config_source},
                {"proc_root", request.host.proc_root.string()},
                {"resolv_conf", request.host.resolv_conf.string()},
                {"hosts_file", request.host.hosts_file.string()},
                {"ask_package_managers", request.ask_package_managers}}
        .dump(-1, ' ', false, json::error_handler_t::replace);
}

worker_request decode_worker_request(std::string_view text) {
    try {
        const auto in = json::parse(text);
        if (!in.is_object() || in.value("format", 0) != format_version) {
            throw codec_error("worker request: not format " + std::to_string(format_version));
        }
        worker_request request;
        request.config_text = in.at("config_text").get<std::string>();
        request.config_source = in.at("config_source").get<std::string>();
        request.host.proc_root = in.at("proc_root").get<std::string>();
        request.host.resolv_conf = in.at("resolv_conf").get<std::string>();
        request.host.hosts_file = in.at("hosts_file").get<std::string>();
        request.ask_package_managers = in.at("ask_package_managers").get<bool>();
        return request;
    } catch (const json::exception& e) {
        throw codec_error(std::string("worker request: ") + e.what());
    }
}

observations decode_worker_reply(std::string_view text) {
    json in;
    try {
        in = json::parse(text);
    } catch (const json::exception& e) {
        throw worker_error("the check worker's reply is not JSON (" + std::to_string(text.size()) +
                           " bytes): " + e.what());
    }
    if (in.is_object() && in.contains("error") && in["error"].is_string()) {
        throw worker_error(in["error"].get<std::string>());
    }
    try {
        return decode_observations(text);
    } catch (const codec_error& e) {
        throw worker_error(std::string("the check worker's reply: ") + e.what());
    }
}

int run_check_worker(std::istream& in, std::ostream& out) {
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    check_options options;
    try {
        const auto request = decode_worker_request(text);
        options.config = parse_config(request.config_text, request.config_source);
        options.host = request.host;
        options.ask_package_managers = request.ask_package_managers;
    } catch (const std::exception& e) {
        out << json{{"format", format_version}, {"error", e.what()}}.dump() << '\n';
        return 1;
    }
    try {
        out << encode_observations(run_check(options)) << '\n';
    } catch (const std::exception& e) {
        // Setup errors only (run_check records the probes' failures as data).
        out << json{{"format", format_version}, {"error", e.what()}}.dump(
                   -1, ' ', false, json::error_handler_t::replace)
            << '\n';
    }
    out.flush();
    return 0;
}

}  // namespace ssm_doctor

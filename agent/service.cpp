// SPDX-License-Identifier: Apache-2.0
// Names of the AWS services ssm-doctor probes, as they appear in host names and in the YAML.
#include "agent/service.hpp"

namespace ssm_doctor {

std::string_view to_string(service s) {
    // The name is also the first label of the service's host name, so it must stay exact.
    switch (s) {
        case service::ssm:
            return "ssm";
        case service::ssmmessages:
            return "ssmmessages";
        case service::ec2messages:
            return "ec2messages";
        case service::s3:
            return "s3";
        case service::kms:
            return "kms";
        case service::logs:
            return "logs";
        case service::monitoring:
            return "monitoring";
    }
    return "unknown";
}

std::optional<service> parse_service(std::string_view name) {
    for (service s : all_services) {
        if (to_string(s) == name) {
            return s;
        }
    }
    return std::nullopt;
}

}  // namespace ssm_doctor

# SPDX-License-Identifier: Apache-2.0
"""The ssm-doctor lab: a simulated VPC in network namespaces (see tests/lab/README.md)."""


class LabError(RuntimeError):
    """The lab could not be built or run; the message says which step and why."""

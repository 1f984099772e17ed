# SPDX-License-Identifier: Apache-2.0
"""Certificates for one lab, made with the openssl command: a lab CA, leaves, and bad leaves.

The lab CA is what ssm-doctor trusts (tls.ca_file). A second CA stands for an intercepting
proxy that nobody trusts. `openssl ca` is used for every leaf because it is the one openssl
command of OpenSSL 3.0 that can put a validity period in the past (the expired leaf).
"""

import os
import subprocess

from . import LabError

# A time well before any lab runs and one soon after it, for the expired certificate.
EXPIRED_START = "20230101000000Z"
EXPIRED_END = "20230201000000Z"

_CA_CONFIG = """\
[ca]
default_ca = lab_ca

[lab_ca]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
email_in_dn = no

[anything]
commonName = supplied

[leaf]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:$ENV::LAB_SAN
authorityKeyIdentifier = keyid
subjectKeyIdentifier = hash
"""


def _openssl(args, env=None):
    result = subprocess.run(["openssl"] + args, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise LabError("openssl %s failed: %s" % (args[0], result.stderr.strip()))


class Authority:
    """One certificate authority in its own directory under the lab's PKI directory."""

    def __init__(self, root, name, common_name):
        self.dir = os.path.join(root, name)
        os.makedirs(os.path.join(self.dir, "issued"))
        self.key = os.path.join(self.dir, "ca.key")
        self.cert = os.path.join(self.dir, "ca.pem")
        self.config = os.path.join(self.dir, "ca.cnf")
        with open(os.path.join(self.dir, "index.txt"), "w"):
            pass
        with open(os.path.join(self.dir, "serial"), "w") as f:
            f.write("1000\n")
        with open(self.config, "w") as f:
            f.write(_CA_CONFIG.format(dir=self.dir))
        _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-out", self.key])
        _openssl(["req", "-new", "-x509", "-key", self.key, "-out", self.cert, "-days", "30",
                  "-subj", "/O=ssm-doctor lab/CN=" + common_name,
                  "-addext", "basicConstraints=critical,CA:true",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign"])

    def issue(self, file_stem, dns_name, start=None, end=None):
        """A leaf for `dns_name`; returns (cert path, key path)."""
        key = os.path.join(self.dir, file_stem + ".key")
        csr = os.path.join(self.dir, file_stem + ".csr")
        cert = os.path.join(self.dir, file_stem + ".pem")
        _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-out", key])
        # A common name holds at most 64 characters; the name that counts is in the SAN.
        common_name = dns_name if len(dns_name) <= 64 else "lab endpoint"
        _openssl(["req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + common_name])
        dates = ["-days", "30"]
        if start and end:
            dates = ["-startdate", start, "-enddate", end]
        env = dict(os.environ, LAB_SAN=dns_name)
        _openssl(["ca", "-batch", "-notext", "-config", self.config, "-extensions", "leaf",
                  "-in", csr, "-out", cert] + dates, env=env)
        return cert, key


class LabPki:
    """Everything the lab's servers present; created on demand, once per name and kind."""

    def __init__(self, root):
        self.root = root
        self.ca = Authority(root, "lab-ca", "ssm-doctor lab CA")
        self._proxy_ca = None
        self._issued = {}

    @property
    def ca_file(self):
        return self.ca.cert

    def leaf(self, dns_name, kind="good"):
        """(cert, key) for a server named `dns_name`.

        kind: good; expired (validity ended in 2023); wrong_host (valid, but for another name);
        unknown_ca (issued by the intercepting proxy's CA, which the client does not trust).
        """
        slot = (dns_name, kind)
        if slot in self._issued:
            return self._issued[slot]
        stem = "%s-%s" % (kind, dns_name)
        if kind == "good":
            issued = self.ca.issue(stem, dns_name)
        elif kind == "expired":
            issued = self.ca.issue(stem, dns_name, EXPIRED_START, EXPIRED_END)
        elif kind == "wrong_host":
            issued = self.ca.issue(stem, "www.wrong-host.example")
        elif kind == "unknown_ca":
            if self._proxy_ca is None:
                self._proxy_ca = Authority(self.root, "proxy-ca", "Corporate Inspection Proxy")
            issued = self._proxy_ca.issue(stem, dns_name)
        else:
            raise ValueError("unknown certificate kind %r" % kind)
        self._issued[slot] = issued
        return issued

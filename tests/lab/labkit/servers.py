# SPDX-License-Identifier: Apache-2.0
"""The lab's servers, one asyncio process in the VPC namespace: the endpoints and IMDS.

Run as `python3 lab.py _serve SPEC.json`; prints "ready" on stdout once every listener is
bound, then serves until killed. Besides the endpoints and IMDS it can run an HTTP proxy
(CONNECT only). Each endpoint listener has one behaviour:

  normal    TLS with the listener's certificate, then HTTP answered as an AWS front end answers
            an unsigned request: an error status, a request id and a small body
  slow      the same, but the server waits delay_ms after accepting before its handshake
  reset     accepts, waits for the client's first bytes, then closes with SO_LINGER 0 (RST)
  silent    accepts and reads, never answers (a TCP listener that does not speak TLS)
  tls10     TLS 1.0 only (with SECLEVEL 0, which OpenSSL 3 needs to offer it at all)

Certificates that are expired, for the wrong host or from an unknown CA are chosen by the lab
(see pki.py); for the server they are just the listener's certificate.
"""

import asyncio
import json
import secrets
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import uuid

MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024


def log(*parts):
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


async def read_request(reader):
    """(method, path, headers) of the next HTTP/1.1 request, or None at end of stream.

    The body is read and dropped. Raises ValueError for malformed requests.
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial.strip():
            raise ValueError("request head cut off")
        return None
    except asyncio.LimitOverrunError:
        raise ValueError("request head too long")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError("bad request line %r" % lines[0])
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError("bad header line %r" % line)
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length", "0")
    if not length.isdigit() or int(length) > MAX_BODY:
        raise ValueError("bad content-length %r" % length)
    if int(length):
        await reader.readexactly(int(length))
    return parts[0], parts[1], headers


def http_response(status, reason, body=b"", headers=None):
    lines = ["HTTP/1.1 %d %s" % (status, reason),
             "Date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
             "Content-Length: %d" % len(body)]
    for name, value in (headers or {}).items():
        lines.append("%s: %s" % (name, value))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def aws_error_response(service):
    """What an AWS front end says to a request without a signature."""
    request_id = str(uuid.uuid4())
    if service == "s3":
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
                "<Message>Access Denied</Message><RequestId>%s</RequestId></Error>"
                % request_id).encode()
        return http_response(403, "Forbidden", body, {"Content-Type": "application/xml",
                                                      "x-amz-request-id": request_id})
    body = json.dumps({"__type": "MissingAuthenticationTokenException",
                       "message": "Missing Authentication Token"}).encode()
    return http_response(400, "Bad Request", body, {"Content-Type": "application/x-amz-json-1.1",
                                                    "x-amzn-RequestId": request_id})


def server_context(listener):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(listener["cert"], listener["key"])
    if listener["behavior"] == "tls10":
        # OpenSSL 3 refuses TLS 1.0 below security level 0, even on the server side.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1
    return ctx


class Endpoint:
    def __init__(self, listener):
        self.listener = listener
        self.behavior = listener["behavior"]
        self.name = "%s %s:%d" % (listener["host"], listener["address"], listener["port"])
        self.context = None if self.behavior in ("reset", "silent") else server_context(listener)
        self.connections = 0

    async def handle(self, reader, writer):
        self.connections += 1
        peer = writer.get_extra_info("peername")
        log("accept", self.name, "from %s:%d" % peer[:2], self.behavior)
        try:
            await self.serve(reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, ValueError,
                OSError) as e:
            log("closed", self.name, "from %s:%d" % peer[:2], type(e).__name__, e)
        finally:
            if not writer.is_closing():
                writer.close()

    async def serve(self, reader, writer):
        # Hold the client's first bytes in the kernel: read now, the ClientHello would land in
        # the plain stream's buffer instead of reaching TLS.
        writer.transport.pause_reading()
        if self.behavior in ("reset", "silent"):
            writer.transport.resume_reading()
        if self.behavior == "reset":
            # Let the ClientHello arrive first so the client sees the reset in its handshake.
            await reader.read(1)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        if self.behavior == "silent":
            while await reader.read(65536):
                pass
            return
        if self.behavior == "slow":
            await asyncio.sleep(self.listener.get("delay_ms", 0) / 1000.0)
        await writer.start_tls(self.context)
        # Keep-alive: answer requests until the client goes; held sessions just stay open.
        while True:
            request = await read_request(reader)
            if request is None:
                return
            writer.write(aws_error_response(self.listener["service"]))
            await writer.drain()


class BlockingTlsEndpoint:
    """The tls10 listener, served with blocking sockets in threads.

    When the server itself rejects a handshake (no common protocol version), OpenSSL writes a
    protocol_version alert; asyncio's TLS layer drops that alert when it aborts the connection,
    so the client would see a bare EOF. A blocking SSLSocket sends the alert the way a real
    TLS 1.0-only server does.
    """

    def __init__(self, listener):
        self.listener = listener
        self.context = server_context(listener)
        self.name = "%s %s:%d" % (listener["host"], listener["address"], listener["port"])
        self.sock = socket.create_server((listener["address"], listener["port"]), backlog=128)

    def start(self):
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            conn, peer = self.sock.accept()
            threading.Thread(target=self.serve, args=(conn, peer), daemon=True).start()

    def serve(self, conn, peer):
        log("accept", self.name, "from %s:%d" % peer[:2], "tls10")
        conn.settimeout(30)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                head = b""
                while True:
                    chunk = tls.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                    if b"\r\n\r\n" in head:
                        tls.sendall(aws_error_response(self.listener["service"]))
                        head = b""
        except (ssl.SSLError, OSError) as e:
            # A failed handshake has sent its alert and closed the socket (without RST).
            log("closed", self.name, "from %s:%d" % peer[:2], type(e).__name__, e)
            conn.close()


class Proxy:
    """An HTTP proxy that only tunnels (CONNECT), as agents' HTTPS_PROXY servers do.

    It knows the lab's names from its spec rather than from DNS: in the VPC namespace a
    resolver lookup would go to the host's resolv.conf, which the lab must never reach.
    """

    def __init__(self, spec):
        self.spec = spec
        self.hosts = spec["hosts"]  # name -> address
        self.deny = set(spec.get("deny", []))

    async def handle(self, reader, writer):
        peer = writer.get_extra_info("peername")
        try:
            request = await read_request(reader)
            if request is None:
                return
            method, target, _ = request
            host, _, port = target.rpartition(":")
            if method != "CONNECT" or not port.isdigit():
                writer.write(http_response(405, "Method Not Allowed"))
                return
            if host.lower() in self.deny:
                log("proxy deny", target, "from %s:%d" % peer[:2])
                writer.write(http_response(403, "Forbidden", b"access denied by policy\n",
                                           {"Content-Type": "text/plain"}))
                return
            address = self.hosts.get(host.lower())
            if address is None:
                writer.write(http_response(502, "Bad Gateway", b"unknown host\n"))
                return
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(address, int(port)), 5)
            except (OSError, asyncio.TimeoutError) as e:
                log("proxy upstream", target, type(e).__name__, e)
                writer.write(http_response(504, "Gateway Timeout"))
                return
            log("proxy tunnel", target, "from %s:%d" % peer[:2])
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as e:
            log("proxy closed", type(e).__name__, e)
        finally:
            if not writer.is_closing():
                writer.close()


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        if not writer.is_closing():
            writer.close()


class Imds:
    """IMDSv2 (tokens required), or IMDSv1 only, or off (403 for everything)."""

    def __init__(self, spec):
        self.spec = spec
        self.mode = spec["mode"]
        self.tokens = {}  # token -> expiry (monotonic seconds)

    def document(self):
        return json.dumps({
            "accountId": "123456789012",
            "architecture": "x86_64",
            "availabilityZone": self.spec["region"] + "a",
            "imageId": "ami-0abcdef1234567890",
            "instanceId": self.spec["instance_id"],
            "instanceType": "t3.micro",
            "pendingTime": "2024-09-06T01:00:00Z",
            "privateIp": "10.99.0.10",
            "region": self.spec["region"],
            "version": "2017-09-30",
        }, indent=2)

    def credentials(self):
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 6 * 3600))
        return json.dumps({
            "Code": "Success",
            "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "Type": "AWS-HMAC",
            "AccessKeyId": "ASIALABEXAMPLE0000001",
            "SecretAccessKey": "lab/secret/key/not/real/0000000000000000",
            "Token": "lab-session-token-" + secrets.token_hex(16),
            "Expiration": expiry,
        }, indent=2)

    def item(self, path):
        role = self.spec["role"]
        mac = self.spec["mac"]
        items = {
            "/latest/dynamic/instance-identity/document": self.document,
            "/latest/meta-data/instance-id": lambda: self.spec["instance_id"],
            "/latest/meta-data/placement/region": lambda: self.spec["region"],
            "/latest/meta-data/mac": lambda: mac,
            "/latest/meta-data/network/interfaces/macs/%s/vpc-ipv4-cidr-blocks" % mac:
                lambda: "\n".join(self.spec["vpc_cidrs"]),
            "/latest/meta-data/network/interfaces/macs/%s/vpc-ipv4-cidr-block" % mac:
                lambda: self.spec["vpc_cidrs"][0],
            "/latest/meta-data/iam/security-credentials/": lambda: role,
            "/latest/meta-data/iam/security-credentials/" + role: self.credentials,
        }
        make = items.get(path)
        return None if make is None else make().encode()

    def answer(self, method, path, headers):
        if self.mode == "off":
            return http_response(403, "Forbidden")
        if path == "/latest/api/token":
            if self.mode == "v1":
                return http_response(404, "Not Found")
            if method != "PUT":
                return http_response(405, "Method Not Allowed")
            ttl = headers.get("x-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return http_response(400, "Bad Request")
            token = secrets.token_urlsafe(40)
            self.tokens[token] = time.monotonic() + int(ttl)
            return http_response(200, "OK", token.encode(), {
                "Content-Type": "text/plain",
                "X-aws-ec2-metadata-token-ttl-seconds": ttl})
        if method != "GET":
            return http_response(405, "Method Not Allowed")
        if self.mode == "v2":
            token = headers.get("x-aws-ec2-metadata-token")
            if token is None or self.tokens.get(token, 0) < time.monotonic():
                return http_response(401, "Unauthorized")
        body = self.item(path)
        if body is None:
            return http_response(404, "Not Found")
        return http_response(200, "OK", body, {"Content-Type": "text/plain"})

    async def handle(self, reader, writer):
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    break
                response = self.answer(*request)
                log("imds", request[0], request[1], response.split(b"\r\n", 1)[0].decode())
                writer.write(response)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as e:
            log("imds closed", type(e).__name__, e)
        finally:
            writer.close()


async def serve(spec):
    servers = []
    for listener in spec["endpoints"]:
        if listener["behavior"] == "tls10":
            BlockingTlsEndpoint(listener).start()
            continue
        endpoint = Endpoint(listener)
        servers.append(await asyncio.start_server(
            endpoint.handle, listener["address"], listener["port"], reuse_address=True,
            backlog=512, limit=MAX_HEAD))
    if spec.get("imds"):
        imds = Imds(spec["imds"])
        servers.append(await asyncio.start_server(
            imds.handle, spec["imds"]["address"], spec["imds"]["port"], reuse_address=True,
            limit=MAX_HEAD))
    if spec.get("proxy"):
        proxy = Proxy(spec["proxy"])
        servers.append(await asyncio.start_server(
            proxy.handle, spec["proxy"]["address"], spec["proxy"]["port"], reuse_address=True,
            backlog=512, limit=MAX_HEAD))
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    asyncio.run(serve(spec))
    return 0

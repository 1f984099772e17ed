#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A fake CloudWatch Logs endpoint and IMDS on loopback, for ssm-doctor's shipping tests.

CloudWatch Logs (HTTPS, JSON 1.1): PutLogEvents, CreateLogGroup and CreateLogStream. Every
request's SigV4 signature is checked with botocore (an implementation independent of ssm-doctor's)
against the credentials this process handed out through its IMDS; PutLogEvents' limits are
enforced (1,048,576 bytes with 26 per event, 10,000 events, 24 hours, time order, 256 KiB per
event) and the events that arrive are recorded. Faults are switched on from the test.

IMDSv2 (plain HTTP): token PUT, the role name and the role's credentials, which rotate before
they expire.

Control: one JSON object per line on stdin, one JSON answer per line on stdout. The first line
written is {"logs_port": N, "imds_port": M} once both listen. End of stdin ends the process.
"""

import argparse
import datetime
import hashlib
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError as error:  # the C++ test reports this line and fails
    print(json.dumps({"error": "python3-botocore is not installed: " + str(error)}), flush=True)
    sys.exit(3)

MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_EVENTS = 10_000
MAX_SPAN_MS = 24 * 3600 * 1000
MAX_EVENT_BYTES = 262_144 - EVENT_OVERHEAD
TOO_OLD_MS = 14 * 24 * 3600 * 1000
TOO_NEW_MS = 2 * 3600 * 1000
ROLE = "ssm-doctor-test-role"
TARGET_PREFIX = "Logs_20140328."
BAD_SIGNATURE = "InvalidSignatureException"
EXISTS = "ResourceAlreadyExistsException"
INVALID = "InvalidParameterException"
NOT_FOUND = "ResourceNotFoundException"


def now_ms():
    return int(time.time() * 1000)


class State:
    """Everything the servers share, behind one lock."""

    def __init__(self, region, lifetime, rotate_before):
        self.lock = threading.Lock()
        self.region = region
        self.lifetime = lifetime
        self.rotate_before = rotate_before
        self.credentials = {}  # access key id -> dict(secret, token, expires, revoked)
        self.current_key = None
        self.serial = 0
        self.groups = {}  # name -> {stream name -> [events]}
        self.requests = []  # one record per request to the logs endpoint
        self.imds_requests = 0
        self.throttle = 0  # next N PutLogEvents answer ThrottlingException
        self.fail_at = {}  # PutLogEvents number -> HTTP status
        self.put_count = 0
        self.delay_s = 0.0  # every logs answer waits this long

    def current_credentials(self):
        """The credentials IMDS hands out now, rotated when they are close to expiring."""
        entry = self.credentials.get(self.current_key)
        if entry is None or entry["revoked"] or entry["expires"] - time.time() < self.rotate_before:
            self.serial += 1
            key = "ASIAFAKE%012d" % self.serial
            entry = {
                "secret": "fakeSecret%d/%s" % (self.serial, digest(key)[:24]),
                "token": "fakeSessionToken%d+%s" % (self.serial, digest("t" + key)),
                "expires": time.time() + self.lifetime,
                "revoked": False,
            }
            self.credentials[key] = entry
            self.current_key = key
        return self.current_key, entry


def digest(text):
    return hashlib.sha256(text.encode()).hexdigest()


def iso8601(seconds):
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class ImdsHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        data = body.encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        ttl_ok = ttl is not None and ttl.isdigit() and 1 <= int(ttl) <= 21600
        if self.path != "/latest/api/token" or not ttl_ok:
            self.reply(400, "bad token request")
            return
        self.reply(200, "fake-imds-token", [("X-aws-ec2-metadata-token-ttl-seconds", ttl)])

    def do_GET(self):
        with self.state.lock:
            self.state.imds_requests += 1
        if self.headers.get("X-aws-ec2-metadata-token") != "fake-imds-token":
            self.reply(401, "")
            return
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == base:
            self.reply(200, ROLE)
        elif self.path == base + ROLE:
            with self.state.lock:
                key, entry = self.state.current_credentials()
                document = {
                    "Code": "Success",
                    "LastUpdated": iso8601(time.time()),
                    "Type": "AWS-HMAC",
                    "AccessKeyId": key,
                    "SecretAccessKey": entry["secret"],
                    "Token": entry["token"],
                    "Expiration": iso8601(entry["expires"]),
                }
            self.reply(200, json.dumps(document))
        else:
            self.reply(404, "")


def parse_authorization(value):
    """'AWS4-HMAC-SHA256 Credential=K/D/R/S/aws4_request, SignedHeaders=a;b, Signature=hex'."""
    if not value or not value.startswith("AWS4-HMAC-SHA256 "):
        return None
    parts = {}
    for item in value[len("AWS4-HMAC-SHA256 "):].split(","):
        name, _, val = item.strip().partition("=")
        parts[name] = val
    if set(parts) != {"Credential", "SignedHeaders", "Signature"}:
        return None
    scope = parts["Credential"].split("/")
    if len(scope) != 5:
        return None
    return {"key": scope[0], "date": scope[1], "region": scope[2], "service": scope[3],
            "terminal": scope[4], "signed": parts["SignedHeaders"].split(";"),
            "signature": parts["Signature"]}


class LogsError(Exception):
    def __init__(self, status, kind, message):
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


class LogsHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, *args):
        pass

    def answer(self, status, document):
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("x-amzn-RequestId", "fake-%d" % time.monotonic_ns())
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        record = {"op": "", "status": 0, "type": "", "key": "", "events": 0}
        try:
            record["op"], record["key"] = self.verify(body)
            status, document = self.dispatch(record, body)
        except LogsError as error:
            status, document = error.status, {"__type": error.kind, "message": error.message}
            record["type"] = error.kind
        record["status"] = status
        with self.state.lock:
            self.state.requests.append(record)
            delay = self.state.delay_s
        if delay:
            time.sleep(delay)
        self.answer(status, document)

    def verify(self, body):
        """Checks the target and the signature; returns (operation, access key id)."""
        target = self.headers.get("X-Amz-Target", "")
        if not target.startswith(TARGET_PREFIX):
            raise LogsError(400, "UnknownOperationException", "no X-Amz-Target for logs")
        operation = target[len(TARGET_PREFIX):]
        if self.headers.get("Content-Type") != "application/x-amz-json-1.1":
            raise LogsError(400, "SerializationException", "wrong Content-Type")
        auth = parse_authorization(self.headers.get("Authorization"))
        if auth is None:
            raise LogsError(400, "IncompleteSignatureException", "malformed Authorization header")
        state = self.state
        with state.lock:
            entry = state.credentials.get(auth["key"])
            entry = dict(entry) if entry else None
        if entry is None:
            raise LogsError(400, "UnrecognizedClientException",
                            "The security token included in the request is invalid.")
        if entry["revoked"] or entry["expires"] < time.time():
            raise LogsError(400, "ExpiredTokenException",
                            "The security token included in the request is expired")
        if self.headers.get("X-Amz-Security-Token") != entry["token"]:
            raise LogsError(400, "UnrecognizedClientException",
                            "The security token included in the request is invalid.")
        scope = (auth["region"], auth["service"], auth["terminal"])
        if scope != (state.region, "logs", "aws4_request"):
            raise LogsError(403, BAD_SIGNATURE, "Credential should be scoped correctly")
        required = {"host", "x-amz-date", "x-amz-target", "content-type", "x-amz-security-token"}
        if not required.issubset(auth["signed"]) or auth["signed"] != sorted(auth["signed"]):
            raise LogsError(403, BAD_SIGNATURE, "SignedHeaders must include %s" % sorted(required))
        amz_date = self.headers.get("X-Amz-Date", "")
        try:
            sent = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
            sent = sent.replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            raise LogsError(403, "InvalidSignatureException", "bad X-Amz-Date")
        if abs(time.time() - sent.timestamp()) > 300 or auth["date"] != amz_date[:8]:
            raise LogsError(403, "InvalidSignatureException", "Signature expired or date mismatch")

        # Re-sign with botocore: the same headers, the same date, the credentials IMDS handed out.
        headers = {}
        for name in auth["signed"]:
            value = self.headers.get(name)
            if value is None:
                raise LogsError(403, "InvalidSignatureException", "signed header %s missing" % name)
            headers[name] = value
        url = "https://%s/" % headers["host"]
        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        request.context["timestamp"] = amz_date
        credentials = Credentials(auth["key"], entry["secret"], entry["token"])
        signer = SigV4Auth(credentials, "logs", state.region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if signer.signed_headers(signer.headers_to_sign(request)) != ";".join(auth["signed"]) or \
                expected != auth["signature"]:
            raise LogsError(403, "InvalidSignatureException",
                            "The request signature we calculated does not match the "
                            "signature you provided.")
        return operation, auth["key"]

    def dispatch(self, record, body):
        try:
            document = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise LogsError(400, "SerializationException", "body is not JSON")
        if not isinstance(document, dict):
            raise LogsError(400, "SerializationException", "body is not a JSON object")
        group = document.get("logGroupName")
        stream = document.get("logStreamName")
        state = self.state
        op = record["op"]
        with state.lock:
            if op == "CreateLogGroup":
                if not isinstance(group, str) or not group:
                    raise LogsError(400, INVALID, "logGroupName missing")
                if group in state.groups:
                    raise LogsError(400, EXISTS, "The specified log group already exists")
                state.groups[group] = {}
                return 200, {}
            if op == "CreateLogStream":
                if group not in state.groups:
                    raise LogsError(400, NOT_FOUND, "The specified log group does not exist.")
                if not isinstance(stream, str) or not stream:
                    raise LogsError(400, INVALID, "logStreamName missing")
                if stream in state.groups[group]:
                    raise LogsError(400, EXISTS, "The specified log stream already exists")
                state.groups[group][stream] = []
                return 200, {}
            if op != "PutLogEvents":
                raise LogsError(400, "UnknownOperationException", "unknown operation " + op)
            state.put_count += 1
            if state.throttle > 0:
                state.throttle -= 1
                raise LogsError(400, "ThrottlingException", "Rate exceeded")
            failure = state.fail_at.pop(state.put_count, None)
            if failure is not None:
                kind = "InternalFailure" if failure == 500 else "ServiceUnavailableException"
                raise LogsError(failure, kind,
                                "injected server error")
            if group not in state.groups:
                raise LogsError(400, NOT_FOUND, "The specified log group does not exist.")
            if stream not in state.groups[group]:
                raise LogsError(400, NOT_FOUND, "The specified log stream does not exist.")
            events = document.get("logEvents")
            accepted, info = check_events(events)
            state.groups[group][stream].extend(accepted)
            record["events"] = len(accepted)
        reply = {"nextSequenceToken": "fake"}
        if info:
            reply["rejectedLogEventsInfo"] = info
        return 200, reply


def check_events(events):
    """Enforces PutLogEvents' limits; returns the accepted events and rejectedLogEventsInfo."""
    if not isinstance(events, list) or not events:
        raise LogsError(400, INVALID, "logEvents must hold at least one event")
    if len(events) > MAX_EVENTS:
        raise LogsError(400, INVALID, "more than 10000 log events in the batch")
    total = 0
    previous = None
    for index, event in enumerate(events):
        if not isinstance(event, dict) or not isinstance(event.get("timestamp"), int) or \
                not isinstance(event.get("message"), str) or not event["message"]:
            raise LogsError(400, INVALID, "event %d malformed" % index)
        size = len(event["message"].encode("utf-8"))
        if size > MAX_EVENT_BYTES:
            raise LogsError(400, INVALID, "event %d is larger than 256 KiB" % index)
        total += size + EVENT_OVERHEAD
        if previous is not None and event["timestamp"] < previous:
            raise LogsError(400, INVALID,
                            "Log events in a single PutLogEvents request must be in "
                            "chronological order.")
        previous = event["timestamp"]
    if total > MAX_BATCH_BYTES:
        raise LogsError(400, INVALID, "batch of %d bytes is over 1048576" % total)
    if events[-1]["timestamp"] - events[0]["timestamp"] > MAX_SPAN_MS:
        raise LogsError(400, INVALID, "A batch of log events cannot span more than 24 hours.")
    now = now_ms()
    too_old_end = 0
    while too_old_end < len(events) and events[too_old_end]["timestamp"] < now - TOO_OLD_MS:
        too_old_end += 1
    too_new_start = len(events)
    while too_new_start > too_old_end and events[too_new_start - 1]["timestamp"] > now + TOO_NEW_MS:
        too_new_start -= 1
    info = {}
    if too_old_end:
        info["tooOldLogEventEndIndex"] = too_old_end
    if too_new_start < len(events):
        info["tooNewLogEventStartIndex"] = too_new_start
    return events[too_old_end:too_new_start], info


class TlsHttpServer(ThreadingHTTPServer):
    """Handshakes in the handler's thread, so a bad client cannot stall the accept loop."""

    allow_reuse_address = True
    daemon_threads = True
    tls = None

    def get_request(self):
        sock, address = self.socket.accept()
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def finish_request(self, request, client_address):
        request.settimeout(10)
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # clients hanging up early are part of the tests


class LogsEndpoint:
    """The HTTPS listener, which can be taken down and brought back on the same port."""

    def __init__(self, tls, state):
        self.tls = tls
        self.state = state
        self.port = 0
        self.server = None
        self.thread = None
        self.timer = None
        self.up()

    def up(self):
        if self.server is not None:
            return
        handler = type("Handler", (LogsHandler,), {"state": self.state})
        server = TlsHttpServer(("127.0.0.1", self.port), handler)
        server.tls = self.tls
        self.port = server.server_address[1]
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def down(self):
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
        self.server = None


def control(endpoint, state, command):
    name = command.get("cmd")
    with state.lock:
        if name == "stats":
            return {"put_calls": state.put_count,
                    "requests": list(state.requests),
                    "imds_requests": state.imds_requests,
                    "keys_issued": state.serial,
                    "accepted": sum(len(s) for g in state.groups.values() for s in g.values()),
                    "groups": {g: sorted(s) for g, s in state.groups.items()}}
        if name == "events":
            return {"events": [{"group": g, "stream": s,
                                "timestamp": e["timestamp"], "message": e["message"]}
                               for g, streams in state.groups.items()
                               for s, events in streams.items() for e in events]}
        if name == "throttle":
            state.throttle = int(command["count"])
            return {"ok": True}
        if name == "fail_put":
            # The `nth` PutLogEvents from now answers `status`.
            state.fail_at[state.put_count + int(command["nth"])] = int(command.get("status", 500))
            return {"ok": True}
        if name == "expire_credentials":
            for entry in state.credentials.values():
                entry["revoked"] = True
            return {"ok": True}
        if name == "create":
            state.groups.setdefault(command["group"], {})
            if "stream" in command:
                state.groups[command["group"]].setdefault(command["stream"], [])
            return {"ok": True}
        if name == "delay":
            state.delay_s = float(command["seconds"])
            return {"ok": True}
        if name == "secrets":
            return {"secrets": [v for e in state.credentials.values()
                                for v in (e["secret"], e["token"])]}
    if name == "down":
        endpoint.down()
        return {"ok": True}
    if name == "up":
        endpoint.up()
        return {"ok": True, "port": endpoint.port}
    if name == "down_for":
        endpoint.down()
        endpoint.timer = threading.Timer(float(command["seconds"]), endpoint.up)
        endpoint.timer.start()
        return {"ok": True}
    return {"error": "unknown command %r" % name}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--lifetime", type=float, default=3600.0, help="seconds credentials live")
    parser.add_argument("--rotate-before", type=float, default=None,
                        help="IMDS hands out new credentials when the current ones have less left")
    args = parser.parse_args()

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(args.cert, args.key)
    rotate_before = args.rotate_before if args.rotate_before is not None else args.lifetime / 2
    state = State(args.region, args.lifetime, rotate_before)
    endpoint = LogsEndpoint(tls, state)
    imds_handler = type("Imds", (ImdsHandler,), {"state": state})
    imds = ThreadingHTTPServer(("127.0.0.1", 0), imds_handler)
    imds.daemon_threads = True
    threading.Thread(target=imds.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    print(json.dumps({"logs_port": endpoint.port, "imds_port": imds.server_address[1]}), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            command = json.loads(line)
            if command.get("cmd") == "quit":
                break
            reply = control(endpoint, state, command)
        except (ValueError, KeyError, TypeError) as error:
            reply = {"error": "bad command: %s" % error}
        print(json.dumps(reply), flush=True)
    if endpoint.timer is not None:
        endpoint.timer.cancel()
    endpoint.down()
    imds.shutdown()


if __name__ == "__main__":
    main()

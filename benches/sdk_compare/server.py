"""A Volcengine ECS stand-in on loopback that verifies every call with the
official Python SDK's signing functions (volcenginesdkcore.signv4.SignerV4),
for comparing kpbind with the SDK's own loop against the same server.

AttachKeyPair binds; DescribeInstances reads (RUNNING, the key pair bound).
A call whose signature does not verify is refused with 401. The server's
own work (a thread per call, Python) is the floor both clients share.

Usage: server.py PORT AK SK REGION INSTANCES
"""

import hashlib
import hmac
import json
import sys
import threading
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

from volcenginesdkcore.signv4 import SignerV4

PORT, AK, SK, REGION, COUNT = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
LOCK = threading.Lock()
BOUND = {}
INSTANCES = {f"i-sdkcmp{i:07d}" for i in range(COUNT)}
CALLS = {"AttachKeyPair": 0, "DescribeInstances": 0, "refused": 0}


def verified(method, path, query, headers, body):
    """Recomputes the signature as SignerV4.sign composes it, from the request's own headers."""
    lower = {k.lower(): v for k, v in headers.items()}
    auth = lower.get("authorization", "")
    try:
        _, rest = auth.split(" ", 1)
        fields = dict(part.strip().split("=", 1) for part in rest.split(","))
        ak, date, region, service, _ = fields["Credential"].split("/")
        names = fields["SignedHeaders"].split(";")
    except (ValueError, KeyError):
        return False
    if ak != AK or region != REGION:
        return False
    signed = "".join(f"{name}:{lower.get(name, '')}\n" for name in names)
    body_hash = hashlib.sha256(body).hexdigest()
    canonical = "\n".join([method, path or "/", SignerV4.canonical_query(dict(query)), signed, ";".join(names), body_hash])
    x_date = lower.get("x-date", "")
    scope = "/".join([date, region, service, "request"])
    to_sign = "\n".join(["HMAC-SHA256", x_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = SignerV4.get_signing_secret_key_v4(SK, date, region, service)
    ok = hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), fields["Signature"])
    if not ok:
        print("signature mismatch; canonical request:\n" + canonical, file=sys.stderr, flush=True)
    return ok


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def reply(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self, method):
        parts = urlsplit(self.path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not verified(method, parts.path, query, dict(self.headers.items()), body):
            with LOCK:
                CALLS["refused"] += 1
            return self.reply(401, {"ResponseMetadata": {"Error": {"Code": "SignatureDoesNotMatch", "Message": "no"}}})
        params = dict(query)
        action = params.get("Action", "")
        ids = [v for k, v in query if k.startswith("InstanceIds.")]
        meta = {"RequestId": "r", "Action": action, "Version": "2020-04-01", "Service": "ecs", "Region": REGION}
        with LOCK:
            CALLS[action] = CALLS.get(action, 0) + 1
            if action == "AttachKeyPair":
                details = []
                for i in ids:
                    if i in INSTANCES:
                        BOUND[i] = params.get("KeyPairName") or params.get("KeyPairId")
                        details.append({"InstanceId": i, "Error": None})
                    else:
                        details.append({"InstanceId": i, "Error": {"Code": "InvalidInstance.NotFound", "Message": "no"}})
                return self.reply(200, {"ResponseMetadata": meta, "Result": {"OperationDetails": details}})
            if action == "DescribeInstances":
                found = [{"InstanceId": i, "Status": "RUNNING", "OsType": "Linux", "KeyPairName": BOUND.get(i, ""),
                          "KeyPairId": ""} for i in ids if i in INSTANCES]
                return self.reply(200, {"ResponseMetadata": meta, "Result": {"Instances": found, "NextToken": ""}})
        return self.reply(404, {"ResponseMetadata": {"Error": {"Code": "InvalidActionOrVersion", "Message": action}}})

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


if __name__ == "__main__":
    server = Server(("127.0.0.1", PORT), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "stats":
                with LOCK:
                    print(json.dumps({**CALLS, "bound": len(BOUND)}), flush=True)
    finally:
        server.shutdown()

#!/usr/bin/python3
"""A farm that lies: an HTTP proxy in front of a real kilnd that answers
for one job with another's files, or leaves an artifact out of a job's
listing, so that a client's checks can be tried against a server that
misbehaves.

    lyingfarm.py UPSTREAM PORTFILE [--as FROM:TO] [--hide NAME]

--as FROM:TO  requests for /v1/jobs/FROM... are answered with
              /v1/jobs/TO... (the answer mentions no id of its own)
--hide NAME   artifacts called NAME are left out of every listing
The port it listens on (loopback) is written to PORTFILE.
"""
import argparse
import http.server
import json
import urllib.error
import urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("upstream")
ap.add_argument("portfile")
ap.add_argument("--as", dest="as_", default=None)
ap.add_argument("--hide", default=None)
args = ap.parse_args()


class Proxy(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        path = self.path
        if args.as_:
            src, dst = args.as_.split(":")
            for tail in ("/", ""):
                pre = "/v1/jobs/%s%s" % (src, tail)
                if path == pre or (tail and path.startswith(pre)):
                    path = "/v1/jobs/%s%s" % (dst, tail) + path[len(pre):]
                    break
        req = urllib.request.Request(args.upstream + path)
        for h in ("Authorization", "Accept"):
            if self.headers.get(h):
                req.add_header(h, self.headers[h])
        try:
            with urllib.request.urlopen(req) as r:
                status, body, ctype = r.status, r.read(), r.headers.get(
                    "Content-Type", "application/octet-stream")
        except urllib.error.HTTPError as e:
            status, body, ctype = e.code, e.read(), e.headers.get(
                "Content-Type", "application/problem+json")
        if args.hide and path.endswith("/artifacts") and status == 200:
            doc = json.loads(body)
            doc["artifacts"] = [a for a in doc["artifacts"]
                                if a.get("name") != args.hide]
            body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


srv = http.server.HTTPServer(("127.0.0.1", 0), Proxy)
with open(args.portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(args.portfile + ".tmp", args.portfile)
srv.serve_forever()

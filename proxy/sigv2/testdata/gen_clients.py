#!/usr/bin/env python3
"""Writes SigV2 requests signed by real client code: botocore's HmacV1Auth
and HmacV1QueryAuth, and s3cmd's sign_request_v2 and sign_url_base_v2.

Run from this folder: python3 gen_clients.py (needs botocore and Debian's
s3cmd package). Only the clock is fixed; everything else is the clients'
own code. Writes botocore/*.http, s3cmd/*.http and clients.json.
"""
import json
import os
import sys
from email.utils import formatdate
from urllib.parse import urlsplit

from botocore.auth import HmacV1Auth, HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AK = "AKIAIOSFODNN7EXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
NOW = 1772704800  # 2026-03-05T10:00:00Z
TOKEN = "FQoGZXIvYXdzEXAMPLETOKEN//+="

manifest = []


class FixedV1(HmacV1Auth):
    def _get_date(self):
        return formatdate(NOW, usegmt=True)


class FixedQuery(HmacV1QueryAuth):
    def _get_date(self):
        return str(int(NOW + int(self._expires)))


def write(dirname, name, method, target, host, headers, vhost, presigned, body=b""):
    os.makedirs(dirname, exist_ok=True)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for k, v in headers:
        lines.append(f"{k}: {v}")
    if body:
        lines.append(f"Content-Length: {len(body)}")
    raw = ("\n".join(lines) + "\n\n").encode() + body
    with open(os.path.join(dirname, name + ".http"), "wb") as f:
        f.write(raw)
    manifest.append({"file": f"{dirname}/{name}.http", "vhost": vhost, "now": NOW, "presigned": presigned})


def boto(name, method, url, headers=(), vhost="", auth_path=None, token=None, presign=0, body=b"", send=()):
    creds = Credentials(AK, SK, token)
    req = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    if auth_path is not None:
        req.auth_path = auth_path
    if presign:
        FixedQuery(creds, presign).add_auth(req)
    else:
        FixedV1(creds).add_auth(req)
    u = urlsplit(req.url)
    target = u.path + ("?" + u.query if u.query else "")
    hdrs = [(k, v) for k, v in req.headers.items()]
    if presign:
        # What a browser or curl sends with the URL: no Date, no x-amz-*.
        hdrs = [(k, v) for k, v in hdrs if k in send]
    write("botocore", name, method, target, u.netloc, hdrs, vhost, bool(presign), body)


# Path style: Content-MD5, Content-Type, repeated and padded x-amz-meta.
boto("put-path-style", "PUT", "https://sos.example.com/backups/dir/a%20b%2Bc.txt",
     [("Content-MD5", "XrY7u+Ae7tCTyyK7j1rNww=="), ("Content-Type", "text/plain"),
      ("x-amz-meta-owner", "  someone  "), ("x-amz-storage-class", "STANDARD")],
     body=b"hello world")
# Virtual-hosted style: botocore signs /bucket + path (auth_path).
boto("get-vhost-version", "GET",
     "https://backups.sos.example.com/photos/puppy.jpg?versionId=3HL4kqCxf3vjVBH40Nrjfkd&response-content-disposition=attachment%3B%20filename%3D%22p%20p.jpg%22",
     vhost="backups", auth_path="/backups/photos/puppy.jpg")
# Multipart upload: the subresources in an order botocore sorts.
boto("create-multipart", "POST", "https://sos.example.com/backups/big.bin?uploads",
     [("Content-Type", "application/octet-stream"), ("x-amz-meta-a", "1")])
boto("upload-part", "PUT", "https://sos.example.com/backups/big.bin?uploadId=VXBsb2FkIElE-x_y.z&partNumber=2",
     body=b"part")
boto("complete-multipart", "POST", "https://sos.example.com/backups/big.bin?uploadId=VXBsb2FkIElE-x_y.z",
     [("Content-Type", "application/xml")], body=b"<CompleteMultipartUpload/>")
# A key holding %2F and a double-encoded %252F, and a unicode key.
boto("get-encoded-slash", "GET", "https://sos.example.com/backups/a%2Fb/c%252Fd")
boto("get-unicode", "GET", "https://sos.example.com/backups/%E6%97%A5%E6%9C%AC/%D0%BA%D0%BB%D1%8E%D1%87.txt")
# Temporary credentials: x-amz-security-token is an x-amz header.
boto("list-token", "GET", "https://sos.example.com/backups?prefix=a%2Fb&delimiter=%2F&max-keys=5", token=TOKEN)
# Multi-object delete.
boto("delete-multi", "POST", "https://sos.example.com/backups?delete",
     [("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="), ("Content-Type", "application/xml")])
boto("get-acl", "GET", "https://sos.example.com/backups/k?acl")
boto("list-buckets", "GET", "https://sos.example.com/")
# Presigned: botocore moves x-amz-* headers and Content-Type into the query.
boto("presigned-get", "GET", "https://sos.example.com/backups/photos/puppy%20dog.jpg?response-content-type=image%2Fjpeg", presign=3600)
boto("presigned-get-vhost-token", "GET", "https://backups.sos.example.com/k.txt",
     vhost="backups", auth_path="/backups/k.txt", token=TOKEN, presign=604800)
boto("presigned-put", "PUT", "https://sos.example.com/backups/up.bin",
     [("Content-Type", "application/octet-stream"), ("x-amz-meta-tag", "x")], presign=900, send=("Content-Type",))

# s3cmd (signature_v2 = True): x-amz-date with an empty Date position.
sys.argv = ["s3cmd"]
sys.path.append("/usr/lib/python3/dist-packages")
from S3.Config import Config  # noqa: E402
from S3.Crypto import format_param_str, sign_request_v2, sign_url_base_v2  # noqa: E402
from S3.SortedDict import SortedDict  # noqa: E402
import S3.Crypto  # noqa: E402
import time as _time  # noqa: E402

cfg = Config()
cfg.access_key, cfg.secret_key = AK, SK
cfg.host_base, cfg.host_bucket = "sos.example.com", "sos.example.com"
xdate = _time.strftime("%a, %d %b %Y %H:%M:%S +0000", _time.gmtime(NOW))


def s3cmd(name, method, bucket, uri, params=None, headers=(), body=b""):
    h = SortedDict(dict(headers), ignore_case=True)
    h["x-amz-date"] = xdate
    signed = sign_request_v2(method, "/%s%s" % (bucket, uri) if bucket else uri, params or {}, h)
    quoted = S3.Crypto.s3_quote(("/" + bucket if bucket else "") + uri, quote_backslashes=False, unicode_output=True)
    target = quoted + format_param_str(params or {})
    write("s3cmd", name, method, target, "sos.example.com", list(signed.items()), "", False, body)


s3cmd("put", "PUT", "backups", "/dir/some file+ü.txt", headers=[("content-type", "text/plain"), ("x-amz-meta-mtime", "1772704000")], body=b"hi")
s3cmd("list", "GET", "backups", "/", {"prefix": "dir/", "delimiter": "/"})
s3cmd("initiate-multipart", "POST", "backups", "/big.bin", {"uploads": None})
s3cmd("upload-part", "PUT", "backups", "/big.bin", {"partNumber": "1", "uploadId": "VXBsb2FkIElE-x_y.z"}, body=b"part")
s3cmd("get-acl", "GET", "backups", "/", {"acl": None})
s3cmd("list-buckets", "GET", "", "/")

cfg.content_disposition = "attachment"
url = sign_url_base_v2(bucket="backups", object="dir/report 1.pdf", expiry=NOW + 3600)
u = urlsplit(url)
write("s3cmd", "signurl", "GET", u.path + "?" + u.query, u.netloc, [], "", True)

with open("clients.json", "w") as f:
    json.dump(manifest, f, indent=1)
    f.write("\n")

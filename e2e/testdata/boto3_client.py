"""Drives boto3 through ssec-proxy for the e2e tests.

usage: boto3_client.py BUCKET PREFIX SMALL_FILE BIG_FILE OUT_DIR
Reads the endpoint, CA bundle and credentials from the environment
(SSEC_ENDPOINT, AWS_CA_BUNDLE, AWS_ACCESS_KEY_ID, ...). Writes downloads into
OUT_DIR and prints one line per object key it wrote, for the Go test to check
on MinIO.
"""
import sys
import urllib.request
import ssl

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

bucket, prefix, small_file, big_file, out_dir = sys.argv[1:6]
endpoint = __import__("os").environ["SSEC_ENDPOINT"]
ca = __import__("os").environ["AWS_CA_BUNDLE"]

s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))

small = open(small_file, "rb").read()
s3.put_object(Bucket=bucket, Key=prefix + "small", Body=small, ContentType="application/x-test")
got = s3.get_object(Bucket=bucket, Key=prefix + "small")["Body"].read()
assert got == small, "get_object returned other bytes"
head = s3.head_object(Bucket=bucket, Key=prefix + "small")
assert head["ContentLength"] == len(small), head
assert head["ContentType"] == "application/x-test", head
rng = s3.get_object(Bucket=bucket, Key=prefix + "small", Range="bytes=5-9")["Body"].read()
assert rng == small[5:10], "ranged get"

cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024, max_concurrency=4)
s3.upload_file(big_file, bucket, prefix + "big", Config=cfg)
s3.download_file(bucket, prefix + "big", out_dir + "/big", Config=cfg)

s3.copy_object(Bucket=bucket, Key=prefix + "copy", CopySource={"Bucket": bucket, "Key": prefix + "small"})

url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": prefix + "copy"}, ExpiresIn=300)
ctx = ssl.create_default_context(cafile=ca)
with urllib.request.urlopen(url, context=ctx) as r:
    assert r.read() == small, "presigned get"

keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
assert sorted(keys) == sorted([prefix + "small", prefix + "big", prefix + "copy"]), keys

try:
    s3.put_object(Bucket="mixed", Key="nowhere/x", Body=b"x")
    raise SystemExit("put without a rule succeeded")
except s3.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "AccessDenied", e.response

print(prefix + "small")
print(prefix + "big")
print(prefix + "copy")

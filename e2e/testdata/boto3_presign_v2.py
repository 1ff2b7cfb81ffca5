"""Prints presigned URLs that boto3 makes for the e2e SigV2 tests.

usage: boto3_presign_v2.py BUCKET KEY
Prints three lines: a GET and a PUT URL signed with SigV2 (signature_version
"s3", what boto3 uses for presigned URLs in us-east-1 when nothing else is
configured), and the GET URL boto3 makes with its defaults. Reads the
endpoint and credentials from the environment (SSEC_ENDPOINT,
AWS_ACCESS_KEY_ID, ...). Makes no request itself.
"""
import os
import sys

import boto3
from botocore.config import Config

bucket, key = sys.argv[1:3]
endpoint = os.environ["SSEC_ENDPOINT"]
v2 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, signature_version="s3"))
print(v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=600))
print(v2.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=600))
default = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                       config=Config(s3={"addressing_style": "path"}))
print(default.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=600))

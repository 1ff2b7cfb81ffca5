"""Prints the presigned POST forms boto3 makes, for the e2e form-upload tests.

usage: boto3_presign_post.py BUCKET PREFIX MAX_SIZE
Prints one JSON object: {"v4": {"url", "fields"}, "v2": {...}}. Both allow
keys starting with PREFIX (the key field is PREFIX${filename}), bodies of 1 to
MAX_SIZE bytes, and success_action_status 201. Reads the endpoint and
credentials from the environment (SSEC_ENDPOINT, AWS_ACCESS_KEY_ID, ...).
Makes no request itself.
"""
import json
import os
import sys

import boto3
from botocore.config import Config

bucket, prefix, max_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
endpoint = os.environ["SSEC_ENDPOINT"]
out = {}
for name, sig in (("v4", "s3v4"), ("v2", "s3")):
    c = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     config=Config(s3={"addressing_style": "path"}, signature_version=sig))
    out[name] = c.generate_presigned_post(
        bucket, prefix + "${filename}",
        Fields={"success_action_status": "201", "Content-Type": "text/plain"},
        Conditions=[{"success_action_status": "201"}, ["starts-with", "$key", prefix],
                    ["content-length-range", 1, max_size], ["starts-with", "$Content-Type", "text/"]],
        ExpiresIn=600)
print(json.dumps(out))

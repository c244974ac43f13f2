"""Create the MLflow artifact bucket in the S3-compatible store, waiting for the store to be up.

Runs once before the tracking server starts (compose service `create-bucket`, the init container
of k8s/mlflow.yaml); a bucket that already exists is not an error.

    MLFLOW_S3_ENDPOINT_URL=http://minio:9000 AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
        python create_bucket.py mlflow
"""

from __future__ import annotations

import os
import sys
import time

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError

EXISTS = ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")


def bucket_exists(s3, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchBucket"):
            return False
        raise


def create_bucket(bucket: str, endpoint_url: str, timeout_s: float = 120.0) -> bool:
    """True if the bucket was created, False if it was there; raises once timeout_s has passed."""
    s3 = boto3.client("s3", endpoint_url=endpoint_url)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            # Asked first: S3 in us-east-1 answers 200 to creating a bucket one already owns.
            if bucket_exists(s3, bucket):
                return False
            s3.create_bucket(Bucket=bucket)
            return True
        except ClientError as e:
            if e.response["Error"]["Code"] in EXISTS:
                return False
            # MinIO answers 503 while it initialises its drives: wait like for a refused connection.
            if time.monotonic() > deadline:
                raise
        except EndpointConnectionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(2)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: create_bucket.py BUCKET", file=sys.stderr)
        return 2
    created = create_bucket(argv[0], os.environ["MLFLOW_S3_ENDPOINT_URL"])
    print(f"bucket {argv[0]}: {'created' if created else 'exists'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

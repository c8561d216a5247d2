"""A local S3-compatible server (moto in server mode) over real HTTP, for the storage tests."""

import os
import subprocess
import sys
import tempfile
import time

import boto3
import requests

from tests.support.smtp import free_port

ACCESS_KEY, SECRET_KEY, REGION = "test-access-key", "test-secret-key", "us-east-1"


class S3Server:
    def __init__(self, bucket: str = "sf-exports-test"):
        self.bucket = bucket
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - kept to the end

    def __enter__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(self.url, timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the S3 server did not start"
                time.sleep(0.1)
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=10)

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def keys(self) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=self.bucket)
        return [item["Key"] for item in listed.get("Contents", [])]

    def env(self) -> dict[str, str]:
        """The settings a process reads to keep its files here (settings.py, STORAGE_*)."""
        return {
            "STORAGE_BUCKET": self.bucket,
            "STORAGE_ENDPOINT_URL": self.url,
            "STORAGE_REGION": REGION,
            "STORAGE_ACCESS_KEY": ACCESS_KEY,
            "STORAGE_SECRET_KEY": SECRET_KEY,
        }

    def storages_setting(self, prefix: str = "") -> dict:
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": self.bucket,
                "endpoint_url": self.url,
                "region_name": REGION,
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "location": prefix,
                "default_acl": "private",
                "file_overwrite": False,
                "querystring_auth": True,
                "querystring_expire": 300,
            },
        }

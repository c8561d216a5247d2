"""Exports in S3-compatible object storage (issue 30), against a real S3 server over HTTP (moto
in server mode): the file is written to the private bucket, never to the node's disk, and is
handed over only through the job's download view, after the permission check."""

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from attendance.models import BulkJob
from attendance.services.attendance import attendance_expect
from tests.support.auth import log_in_staff
from tests.support.factories import EventFactory, UserFactory
from tests.support.jobs import export_bytes
from tests.support.s3 import S3Server

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def s3_server():
    with S3Server() as server:
        yield server


@pytest.fixture
def object_storage(settings, s3_server, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"  # must stay empty
    settings.STORAGES = {**settings.STORAGES, "default": s3_server.storages_setting("t1")}
    return s3_server


def test_an_export_goes_to_the_bucket_and_only_through_the_download_view(
    object_storage, staff_client, crew, django_capture_on_commit_callbacks, settings, client
):
    event = EventFactory(name="Bucket Night", starts_at=timezone.now() - timedelta(days=1))
    attendance_expect(event=event, user=crew)
    day = timezone.localdate()
    body = export_bytes(
        staff_client,
        "/admin/attendance/attendance/export/",
        {"start": day - timedelta(days=7), "end": day},
        capture=django_capture_on_commit_callbacks,
    )
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0][0] == "event" and rows[1][0] == "Bucket Night"

    job = BulkJob.objects.get()
    key = f"t1/{job.file.name}"
    assert object_storage.keys() == [key]
    stored = object_storage.client().get_object(Bucket=object_storage.bucket, Key=key)
    assert stored["Body"].read() == body
    grants = object_storage.client().get_object_acl(Bucket=object_storage.bucket, Key=key)
    assert all("AllUsers" not in str(g["Grantee"]) for g in grants["Grants"])  # private
    assert not Path(settings.MEDIA_ROOT).exists()  # nothing on this node's disk

    # Someone else on the staff, without the job's permission, gets nothing.
    other = UserFactory(is_staff=True)
    log_in_staff(client, other)
    assert client.get(f"/admin/attendance/bulkjob/{job.pk}/download/").status_code == 403


def test_a_second_export_of_the_same_name_never_replaces_the_first(object_storage):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    first = default_storage.save("exports/same.csv", ContentFile(b"first"))
    second = default_storage.save("exports/same.csv", ContentFile(b"second"))
    assert first != second
    assert default_storage.open(first).read() == b"first"

"""Helpers for tests of admin actions that start background jobs."""

import csv
import io

from attendance.models import BulkJob


def run_action(client, url, data=None, *, capture):
    """Post (or get) an admin action that starts a job; run the job (tasks are in-process,
    queued after commit); return the job, reloaded, and the progress page's text."""
    with capture(execute=True):
        response = client.post(url, data) if data is not None else client.get(url)
    assert response.status_code == 302, response.content.decode()[:1000]
    assert "/admin/attendance/bulkjob/" in response.url
    job = BulkJob.objects.get(pk=int(response.url.rstrip("/").split("/")[-2]))
    page = client.get(response.url)
    assert page.status_code == 200
    return job, page.content.decode()


def export_bytes(client, url, data=None, *, capture) -> bytes:
    """Start an export job, run it, and download its file through the job's page."""
    job, _ = run_action(client, url, data, capture=capture)
    assert job.status == BulkJob.Status.DONE, job.error
    download = client.get(f"/admin/attendance/bulkjob/{job.pk}/download/")
    assert download.status_code == 200
    return b"".join(download.streaming_content)


def export_rows(client, url, data=None, *, capture):
    body = export_bytes(client, url, data, capture=capture).decode()
    return list(csv.reader(io.StringIO(body)))

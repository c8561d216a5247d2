"""Background jobs in admin: where a bulk action lands, and its progress page."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.dateparse import parse_datetime

from attendance.models import BulkJob, BulkJobItem
from attendance.services.jobs.runner import bulk_job_create, bulk_job_progress

from .display import EstimatedCountPaginator, ReadOnlyAdminMixin, status_badge_column


def start_job(request, *, kind: str, targets=(), params=None, total=None, what: str):
    """Create a background job for a bulk action and send the browser to its progress page."""
    job = bulk_job_create(kind=kind, by=request.user, targets=targets, params=params, total=total)
    if job.repeated:
        messages.info(
            request,
            f"Already started a moment ago: {what}. This is that job; nothing was started twice.",
        )
    else:
        messages.info(request, f"Started: {what}. This page follows it; you may leave it.")
    return HttpResponseRedirect(reverse("admin:attendance_bulkjob_change", args=[job.pk]))


def _back_link(job: BulkJob) -> tuple[str, str] | None:
    """Where the person came from: the pay run or the event the job works on."""
    if run := job.params.get("pay_run"):
        return reverse("admin:attendance_payrun_change", args=[run]), "Back to the pay run"
    if event := job.params.get("event"):
        return reverse("admin:attendance_event_board", args=[event]), "Back to the staffing board"
    return None


@admin.register(BulkJob)
class BulkJobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("kind", "status_badge", "progress", "created_by", "created_at", "finished_at")
    list_filter = ("kind", "status")
    list_select_related = ("created_by",)
    ordering = ("-created_at", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    change_form_template = "admin/attendance/bulkjob/progress.html"
    status_badge = status_badge_column(prefix="job-")

    class Media:
        js = ("js/poll.js", "js/admin_job.js")

    @admin.display(description="Progress")
    def progress(self, obj):
        return f"{obj.done + obj.failed + obj.skipped} / {obj.total}"

    def has_view_permission(self, request, obj=None):
        # Whoever started a job may follow it, whatever else their role lets them see.
        mine = obj is not None and obj.created_by_id == request.user.pk
        return mine or super().has_view_permission(request, obj)

    def get_urls(self):
        return [
            path(
                "<int:job_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="attendance_bulkjob_progress",
            ),
            path(
                "<int:job_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name="attendance_bulkjob_download",
            ),
            *super().get_urls(),
        ]

    def _job_for(self, request, job_id) -> BulkJob:
        if not str(job_id).isdigit():
            raise Http404("No such job.")
        job = get_object_or_404(BulkJob, pk=job_id)
        if not self.has_view_permission(request, job):
            raise PermissionDenied("This job belongs to someone else.")
        return job

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self._job_for(request, object_id)
        items = job.items.order_by("position").only("pk", "job_id", "label", "status", "outcome")
        shown = list(items[:1000])
        context = {
            "job": job,
            "items": shown,
            "processed": job.done + job.failed + job.skipped,
            "more_items": max(job.total - len(shown), 0) if shown else 0,
            "progress_url": reverse("admin:attendance_bulkjob_progress", args=[job.pk]),
            "download_url": reverse("admin:attendance_bulkjob_download", args=[job.pk]),
            "statuses": BulkJobItem.Status,
            "back": _back_link(job),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=context)

    def progress_view(self, request, job_id):
        """The progress page asks here every two seconds: counts, and items changed since."""
        job = self._job_for(request, job_id)
        since = parse_datetime(request.GET.get("since", "")) if request.GET.get("since") else None
        return JsonResponse(bulk_job_progress(job=job, items_since=since))

    def download_view(self, request, job_id):
        job = self._job_for(request, job_id)
        if not job.file:
            raise Http404("Not ready yet.")
        return FileResponse(
            job.file.open("rb"), as_attachment=True, filename=job.file.name.rsplit("/", 1)[-1]
        )

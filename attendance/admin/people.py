from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Exists, OuterRef
from django.utils.html import format_html, format_html_join
from django_otp.plugins.otp_totp.models import TOTPDevice

from attendance.models import EventCrew, LedgerEntry, Profile
from attendance.services.core.rows import keep_in_step
from attendance.services.crew.availability import availability_upcoming
from attendance.services.crew.track_record import track_record as member_track_record
from attendance.services.ledger import LedgerError, ledger_add_by_hand, ledger_delta
from attendance.services.people.phones import phone_changed_by_staff
from attendance.services.people.two_factor import two_factor_reset
from attendance.wording import kes

from .display import EstimatedCountPaginator, IndexedSortMixin, notification_history
from .payments import can_request_payments, request_mpesa_payment
from .search import IndexedSearchMixin, month_filter

User = get_user_model()


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False
    fields = ("phone_number", "department", "roles", "skills", "balance")
    readonly_fields = ("balance",)
    filter_horizontal = ("roles",)


admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = [ProfileInline]
    list_display = (
        "username",
        "first_name",
        "last_name",
        "email",
        "is_staff",
        "two_factor",
        "is_active",
    )
    list_select_related = ("profile",)
    actions = ["reset_two_factor"]

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        for inline in formset.forms:
            if isinstance(inline.instance, Profile) and "phone_number" in inline.changed_data:
                phone_changed_by_staff(
                    profile=inline.instance,
                    old=inline.initial.get("phone_number") or "",
                    by=request.user,
                )

    def get_queryset(self, request):
        app = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
        return super().get_queryset(request).annotate(has_two_factor=Exists(app))

    @admin.display(description="Two-factor", boolean=True, ordering="has_two_factor")
    def two_factor(self, obj):
        # Crew accounts have none and need none: a dash, not a red cross.
        return obj.has_two_factor if obj.is_staff else None

    @admin.action(description="Reset two-factor login (lost phone)", permissions=["reset"])
    def reset_two_factor(self, request, queryset):
        users = list(queryset)
        for user in users:
            two_factor_reset(user, by=request.user)
        self.message_user(
            request,
            f"Two-factor login reset for {len(users)} account(s): each sets it up again at "
            "their next admin visit, with their password.",
            messages.SUCCESS,
        )

    def has_reset_permission(self, request):
        # Whoever resets a second factor could take over that account with its password:
        # superusers only, and every reset is in the audit trail.
        return request.user.is_superuser

    def get_inline_instances(self, request, obj=None):
        # The profile is created by a signal when the user is saved; an inline on the add
        # page would try to create a second one.
        return super().get_inline_instances(request, obj) if obj is not None else []


class BalanceFilter(admin.SimpleListFilter):
    title = "balance"
    parameter_name = "balance"

    def lookups(self, request, model_admin):
        return [
            ("owes", "Owes the company"),
            ("owed", "Is owed money"),
            ("settled", "Nothing owed"),
        ]

    def queryset(self, request, queryset):
        match self.value():
            case "owes":
                return queryset.filter(balance__gt=0)
            case "owed":
                return queryset.filter(balance__lt=0)
            case "settled":
                return queryset.filter(balance=0)
        return queryset


class SmsBlockedFilter(admin.SimpleListFilter):
    title = "SMS"
    parameter_name = "sms"

    def lookups(self, request, model_admin):
        return [("blocked", "Texts do not reach them"), ("ok", "Texts reach them")]

    def queryset(self, request, queryset):
        match self.value():
            case "blocked":
                return queryset.filter(sms_blocked_at__isnull=False)
            case "ok":
                return queryset.filter(sms_blocked_at__isnull=True)
        return queryset


@admin.register(Profile)
class ProfileAdmin(IndexedSearchMixin, admin.ModelAdmin):
    list_display = (
        "display_name",
        "username",
        "phone_number",
        "department",
        "message_channel",
        "balance_kes",
    )
    list_filter = ("department", BalanceFilter, "message_channel", SmsBlockedFilter)
    search_fields = ("user__username",)
    search_phone = "phone_number"
    search_account_code = "account_code"
    search_help_text = "A phone number, an account code (SF...), an email address or a name."
    list_select_related = ("user",)
    readonly_fields = (
        "user",
        "account_code",
        "balance",
        "created_at",
        "updated_at",
        "communication_history",
        "unavailable_dates",
        "track_record",
    )
    filter_horizontal = ("roles",)
    fields = (
        "user",
        "phone_number",
        "department",
        "roles",
        "skills",
        "unavailable_dates",
        "track_record",
        "message_channel",
        "sms_blocked_at",
        "sms_blocked_reason",
        "account_code",
        "balance",
        "created_at",
        "updated_at",
        "communication_history",
    )
    ordering = ("user__first_name", "user__last_name")
    show_full_result_count = False
    actions = [request_mpesa_payment]

    def has_add_permission(self, request):
        return False  # profiles come with users

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "phone_number" in form.changed_data:
            phone_changed_by_staff(
                profile=obj, old=form.initial.get("phone_number") or "", by=request.user
            )

    @admin.display(description="Track record (managers only)")
    def track_record(self, obj):
        record = member_track_record(obj.user)
        rated = (
            EventCrew.objects.filter(user=obj.user, rating__isnull=False)
            .select_related("event")
            .order_by("-rated_at")[:5]
        )
        notes = format_html_join(
            "",
            "<div>{}: {}/5{}</div>",
            (
                (a.event.name, a.rating, f", {a.rating_note}" if a.rating_note else "")
                for a in rated
            ),
        )
        return format_html("<div>{}</div>{}", record.summary, notes)

    @admin.display(description="Cannot work (marked by them)")
    def unavailable_dates(self, obj):
        rows = availability_upcoming(obj.user)
        if not rows:
            return "No dates marked."
        return format_html_join(
            "", "<div>{}{}</div>", ((row, f": {row.reason}" if row.reason else "") for row in rows)
        )

    def has_mpesa_request_permission(self, request):
        return can_request_payments(request)

    @admin.display(description="Messages sent to this member (email and SMS)")
    def communication_history(self, obj):
        return notification_history(
            obj.user.notifications.order_by("-created_at", "-id"),
            obj.user.sms_messages.order_by("-created_at", "-id"),
        )

    @admin.display(description="Name", ordering="user__first_name")
    def display_name(self, obj):
        return obj.display_name

    @admin.display(description="Username", ordering="user__username")
    def username(self, obj):
        return obj.user.username

    @admin.display(description="Balance", ordering="balance")
    def balance_kes(self, obj):
        return kes(obj.balance)


class LedgerEntryForm(forms.ModelForm):
    class Meta:
        model = LedgerEntry
        fields = ("user", "kind", "amount", "description")
        help_texts = {
            "amount": "Positive for charges and payments; signed for adjustments "
            "(negative lowers what the member owes).",
        }

    # Earnings come only from approved pay runs and payouts only from M-Pesa's results.
    BY_HAND = (LedgerEntry.Kind.CHARGE, LedgerEntry.Kind.PAYMENT, LedgerEntry.Kind.ADJUSTMENT)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "kind" in self.fields:
            self.fields["kind"].choices = [
                (value, label) for value, label in LedgerEntry.Kind.choices if value in self.BY_HAND
            ]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") and cleaned.get("amount") is not None:
            try:
                ledger_delta(kind=cleaned["kind"], amount=cleaned["amount"])
            except LedgerError as error:
                raise forms.ValidationError({"amount": str(error)}) from error
        return cleaned


@admin.register(LedgerEntry)
class LedgerEntryAdmin(IndexedSortMixin, IndexedSearchMixin, admin.ModelAdmin):
    """Entries are added through the ledger service and never changed afterwards."""

    form = LedgerEntryForm
    list_display = (
        "created_at",
        "user",
        "kind",
        "amount_kes",
        "balance_after_kes",
        "description",
        "created_by",
    )
    list_filter = ("kind", month_filter("created_at"))
    search_fields = ("user__username",)
    search_help_text = "The member's name, username or email address."
    sortable_by = ("created_at", "kind")
    list_select_related = ("user", "created_by")
    autocomplete_fields = ("user",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (
            "user",
            "kind",
            "amount",
            "balance_after",
            "description",
            "created_by",
            "created_at",
            "source_type",
            "source_id",
        )

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "kind", "amount", "description")
        return self.get_readonly_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        # Viewing is allowed; the form is read-only and save_model never updates a row.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            return
        entry = ledger_add_by_hand(
            user=form.cleaned_data["user"],
            kind=form.cleaned_data["kind"],
            amount=form.cleaned_data["amount"],
            description=form.cleaned_data["description"],
            by=request.user,
        )
        keep_in_step(obj, entry)  # admin goes on with obj: the entry the service made

    @admin.display(description="Amount", ordering="amount")
    def amount_kes(self, obj):
        return kes(obj.amount)

    @admin.display(description="Balance after")
    def balance_after_kes(self, obj):
        return kes(obj.balance_after)

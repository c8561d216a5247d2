"""Finance's statutory pages: the dated rate table and each member's statutory profile.

A rate row already in force is history: its figures are read-only (payslips were worked out
with them), and a change in the law is a new row with its own date. Finance may still confirm
a row and improve its sources.
"""

from django.contrib import admin
from django.db.models import Q
from django.utils import timezone

from attendance.models import PayeBand, PublicHoliday, StatutoryProfile, StatutoryRates
from attendance.services.pay.holidays import holidays_in

from .display import member_column

FIGURES = (
    "personal_relief",
    "secondary_rate",
    "secondary_nssf_and_shif",
    "shif_rate",
    "shif_minimum",
    "ahl_employee_rate",
    "ahl_employer_rate",
    "nssf_employee_rate",
    "nssf_employer_rate",
    "nssf_lower_limit",
    "nssf_upper_limit",
    "pension_cap",
    "nssf_reduces_taxable",
    "shif_reduces_taxable",
    "ahl_reduces_taxable",
    "wht_professional_rate",
    "wht_contractual_rate",
    "wht_threshold",
    "unit",
)


def _in_force(rates: StatutoryRates | None) -> bool:
    return rates is not None and rates.pk is not None and rates.valid_from <= timezone.localdate()


class PayeBandInline(admin.TabularInline):
    model = PayeBand
    fields = ("position", "width", "rate")
    extra = 0
    verbose_name_plural = (
        "PAYE bands (monthly taxable pay, lowest first; the top band has no width)"
    )

    def has_add_permission(self, request, obj=None):
        return not _in_force(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return not _in_force(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not _in_force(obj) and super().has_delete_permission(request, obj)


@admin.register(StatutoryRates)
class StatutoryRatesAdmin(admin.ModelAdmin):
    list_display = (
        "valid_from",
        "confirmed",
        "personal_relief",
        "shif_rate",
        "nssf_lower_limit",
        "nssf_upper_limit",
        "wht_threshold",
    )
    inlines = [PayeBandInline]
    fieldsets = (
        (None, {"fields": ("valid_from", "confirmed", "source")}),
        (
            "PAYE",
            {
                "fields": (
                    "personal_relief",
                    "secondary_rate",
                    "pension_cap",
                    ("nssf_reduces_taxable", "shif_reduces_taxable", "ahl_reduces_taxable"),
                    "unit",
                )
            },
        ),
        (
            "SHIF and the housing levy",
            {"fields": ("shif_rate", "shif_minimum", "ahl_employee_rate", "ahl_employer_rate")},
        ),
        (
            "NSSF",
            {
                "fields": (
                    "nssf_employee_rate",
                    "nssf_employer_rate",
                    "nssf_lower_limit",
                    "nssf_upper_limit",
                    "secondary_nssf_and_shif",
                )
            },
        ),
        (
            "Contractors",
            {"fields": ("wht_professional_rate", "wht_contractual_rate", "wht_threshold")},
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        if _in_force(obj):
            # In force: payslips were worked out with these. The law's next change is a new row.
            return ("valid_from", *FIGURES)
        return ()

    def has_delete_permission(self, request, obj=None):
        return not _in_force(obj) and super().has_delete_permission(request, obj)

    def get_actions(self, request):
        # Deleting from the list would not ask whether a row is in force: one row at a time.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class MissingNumbersFilter(admin.SimpleListFilter):
    title = "numbers"
    parameter_name = "numbers"

    def lookups(self, request, model_admin):
        return [("missing", "Missing a number the returns need")]

    def queryset(self, request, queryset):
        if self.value() != "missing":
            return queryset
        employee = Q(classification=StatutoryProfile.Classification.EMPLOYEE)
        primary = employee & Q(secondary_employment=False)
        return queryset.filter(
            Q(kra_pin="")
            | (employee & Q(id_number=""))
            | (primary & (Q(nssf_number="") | Q(shif_number="")))
        )


@admin.register(StatutoryProfile)
class StatutoryProfileAdmin(admin.ModelAdmin):
    """How each member is engaged and their numbers for the returns (Finance only)."""

    list_display = ("member", "classification", "secondary_employment", "missing_numbers")
    list_filter = ("classification", "secondary_employment", MissingNumbersFilter)
    search_fields = ("user__username", "user__first_name", "user__last_name", "=kra_pin")
    search_help_text = "A member's name or username, or a KRA PIN."
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    fieldsets = (
        (None, {"fields": ("user",)}),
        (
            "How we engage them (the accountant decides)",
            {
                "fields": (
                    "classification",
                    "classification_reason",
                    "secondary_employment",
                    "declared_on",
                    "fee_type",
                )
            },
        ),
        (
            "Numbers for the returns",
            {"fields": ("kra_pin", "id_number", "nssf_number", "shif_number")},
        ),
    )

    member = member_column()

    @admin.display(description="Missing")
    def missing_numbers(self, obj):
        return ", ".join(obj.missing()) or "-"


@admin.register(PublicHoliday)
class PublicHolidayAdmin(admin.ModelAdmin):
    """Days the government gazettes beyond the Act's list; the changelist shows this year's
    and next year's holidays as pay counts them, so Finance sees what is there already."""

    list_display = ("date", "name", "gazette_notice", "added_by")
    fields = ("date", "name", "gazette_notice")
    date_hierarchy = None

    def save_model(self, request, obj, form, change):
        if not change:
            obj.added_by = request.user
        super().save_model(request, obj, form, change)

    def changelist_view(self, request, extra_context=None):
        year = timezone.localdate().year
        extra = dict(extra_context or {})
        extra["holiday_years"] = [(y, holidays_in(y)) for y in (year, year + 1)]
        return super().changelist_view(request, extra)

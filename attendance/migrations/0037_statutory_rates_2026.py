"""The statutory rate table's first rows: the law as the product's payroll research found it in
late 2026, each row naming its sources. None is marked confirmed: Finance checks each against the law before the first pay run
with deductions (docs: MPESA_CRM_IMPLEMENTATION.md, "Statutory deductions")."""

from datetime import date
from decimal import Decimal as D

from django.db import migrations

from attendance.services.people.roles import role_grant_existing

# Finance Act 2023 bands (from 1 July 2023), unchanged by the Finance Act 2025. The PAYE
# changes announced on 4 February 2026 are not confirmed as enacted: not seeded.
BANDS = [
    (D(24000), D(10)),
    (D(8333), D(25)),
    (D(467667), D(30)),
    (D(300000), D("32.5")),
    (None, D(35)),
]
SOURCES = (
    "PAYE bands and personal relief: Finance Act 2023 (in force 1 July 2023), unchanged by the "
    "Finance Act 2025; the February 2026 announcement (no PAYE to 30,000, 25 % to 50,000) is "
    "not confirmed as law. SHIF 2.75 %, minimum 300: Social Health Insurance (General) "
    "Regulations 2024, reg. 17(1). Housing levy 1.5 % + 1.5 %: Affordable Housing Act 2024. "
    "SHIF, housing levy and NSSF (pension cap 30,000) reduce taxable pay: Tax Laws (Amendment) "
    "Act 2024, from 27 December 2024. Secondary employment 35 %, no relief, no NSSF or SHIF: "
    "as Odoo's l10n_ke_hr_payroll applies it (unconfirmed in law). Withholding tax 5 % "
    "(professional) / 3 % (contractual), threshold 24,000 a month: KRA FAQ 'More about "
    "withholding tax', ITA s.35(3). "
)
NSSF_YEARS = [
    # from, lower limit, upper limit, source
    (
        date(2024, 12, 27),
        D(7000),
        D(36000),
        "NSSF Year 2 (from February 2024): LEL 7,000, UEL 36,000.",
    ),
    (
        date(2025, 2, 1),
        D(8000),
        D(72000),
        "NSSF Year 3 (from 1 February 2025): LEL 8,000, UEL 72,000.",
    ),
    (
        date(2026, 2, 1),
        D(9000),
        D(108000),
        "NSSF Year 4 (from 1 February 2026): LEL 9,000, UEL 108,000 (Grant Thornton Kenya tax "
        "alert 1/2026).",
    ),
]


def seed(apps, schema_editor):
    StatutoryRates = apps.get_model("attendance", "StatutoryRates")
    PayeBand = apps.get_model("attendance", "PayeBand")
    for valid_from, lower, upper, nssf_source in NSSF_YEARS:
        row, created = StatutoryRates.objects.get_or_create(
            valid_from=valid_from,
            defaults=dict(
                source=SOURCES + nssf_source,
                personal_relief=D(2400),
                secondary_rate=D(35),
                secondary_nssf_and_shif=False,
                shif_rate=D("2.75"),
                shif_minimum=D(300),
                ahl_employee_rate=D("1.5"),
                ahl_employer_rate=D("1.5"),
                nssf_employee_rate=D(6),
                nssf_employer_rate=D(6),
                nssf_lower_limit=lower,
                nssf_upper_limit=upper,
                pension_cap=D(30000),
                wht_professional_rate=D(5),
                wht_contractual_rate=D(3),
                wht_threshold=D(24000),
            ),
        )
        if created:
            PayeBand.objects.bulk_create(
                PayeBand(rates=row, position=n, width=width, rate=rate)
                for n, (width, rate) in enumerate(BANDS)
            )


GRANTS = [
    *(f"{action}_statutoryrates" for action in ("view", "add", "change")),
    *(f"{action}_payeband" for action in ("view", "add", "change", "delete")),
    *(f"{action}_statutoryprofile" for action in ("view", "add", "change")),
]


def grant(apps, schema_editor):
    role_grant_existing(apps, "Finance", GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("attendance", "0036_statutory_rates"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(seed, migrations.RunPython.noop),
        migrations.RunPython(grant, migrations.RunPython.noop),
    ]

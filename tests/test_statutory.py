"""Kenyan statutory deductions: the payroll research's worked examples (its section 9) to the cent,
from the seeded rate table, and the month true-up's properties."""

from datetime import date
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attendance.models import PayeBand, StatutoryProfile, StatutoryRates
from attendance.services.pay.statutory import (
    CONTRACTOR,
    CONTRACTUAL,
    EMPLOYEE,
    Deductions,
    month_deductions,
    month_true_up,
)
from attendance.services.pay.statutory_table import (
    NoStatutoryRates,
    statutory_rates_of,
    statutory_rates_on,
)
from attendance.services.pay.words import english

MARCH_2026 = date(2026, 3, 15)


@pytest.fixture
def rates(db):
    return statutory_rates_on(MARCH_2026)  # the seeded row from 1 February 2026 (NSSF Year 4)


@pytest.mark.parametrize(
    "gross, nssf, shif, ahl, taxable, tax, paye, net, employer",
    [
        # case 1: the SHIF minimum (2.75 % would be 220)
        ("8000", "480", "300", "120", "7100", "710", "0", "7100", "600"),
        ("24000", "1440", "660", "360", "21540", "2154", "0", "21540", "1800"),
        ("60000", "3600", "1650", "900", "53850", "10938.35", "8538.35", "45311.65", "4500"),
        ("150000", "6480", "4125", "2250", "137145", "35926.85", "33526.85", "103618.15", "8730"),
    ],
)
def test_a_casual_employees_month_as_the_worked_examples_say(
    rates, gross, nssf, shif, ahl, taxable, tax, paye, net, employer
):
    month = month_deductions(D(gross), rates, classification=EMPLOYEE)
    assert (month.nssf, month.shif, month.ahl) == (D(nssf), D(shif), D(ahl))
    assert (month.taxable, month.tax, month.paye) == (D(taxable), D(tax), D(paye))
    assert month.net == D(net)
    assert month.employer_cost == D(employer)
    assert month.employer_nssf == month.nssf  # the company matches the member's NSSF
    assert month.nssf + month.shif + month.ahl + month.paye + month.net == month.gross
    assert any("personal relief KES 2,400.00" in english(line) for line in month.working)


def test_a_secondary_employment_pays_the_top_rate_without_relief(rates, db):
    # 5A, the table's default reading (Odoo's): no NSSF or SHIF, 35 % on gross less AHL.
    a = month_deductions(D(60000), rates, classification=EMPLOYEE, secondary=True)
    assert (a.nssf, a.shif, a.ahl, a.taxable, a.paye, a.net) == (
        D(0),
        D(0),
        D(900),
        D(59100),
        D("20685.00"),
        D("38415.00"),
    )
    # 5B: Finance switches the other reading on; the figures follow the table.
    row = StatutoryRates.objects.get(valid_from=date(2026, 2, 1))
    row.secondary_nssf_and_shif = True
    row.save()
    b = month_deductions(D(60000), statutory_rates_of(row), classification=EMPLOYEE, secondary=True)
    assert (b.nssf, b.shif, b.ahl, b.taxable, b.paye, b.net) == (
        D(3600),
        D(1650),
        D(900),
        D(53850),
        D("18847.50"),
        D("35002.50"),
    )


def test_a_contractor_is_withheld_on_the_whole_month_once_it_reaches_the_threshold(rates):
    earlier, shares = Deductions(), []
    for month_so_far in (D(10000), D(20000), D(30000)):  # three pay runs of 10,000
        share = month_true_up(month_so_far, earlier, rates, classification=CONTRACTOR)
        shares.append(share.wht)
        earlier = month_deductions(month_so_far, rates, classification=CONTRACTOR)
    assert shares == [D(0), D(0), D(1500)]
    assert sum(shares) == month_deductions(D(30000), rates, classification=CONTRACTOR).wht
    contractual = month_deductions(D(30000), rates, classification=CONTRACTOR, fee_type=CONTRACTUAL)
    assert contractual.wht == D(900)
    # No employee deductions on a contractor, ever.
    assert contractual.paye == contractual.nssf == contractual.shif == contractual.ahl == 0


def test_the_shif_minimum_never_takes_more_than_a_small_months_pay(rates):
    # An hour's pay in the month: NSSF 10.80 and housing levy 2.70 come first; SHIF's
    # minimum of 300 is taken only as far as the rest of the 180 goes.
    little = month_deductions(D(180), rates, classification=EMPLOYEE)
    assert (little.nssf, little.ahl, little.shif, little.net) == (
        D("10.80"),
        D("2.70"),
        D("166.50"),
        D("0.00"),
    )
    assert any("no more than the pay left" in english(step) for step in little.working)
    # From about 413 a month the whole minimum fits.
    assert month_deductions(D(500), rates, classification=EMPLOYEE).shif == D("300.00")


def test_paye_starts_where_the_notes_say(rates):
    assert month_deductions(D("26740.94"), rates, classification=EMPLOYEE).paye == 0
    # 26,800 x 0.8975 = 24,053 taxable: 2,400 + 53 x 25 % = 2,413.25 tax, less 2,400 relief.
    assert month_deductions(D("26800"), rates, classification=EMPLOYEE).paye == D("13.25")


def test_whole_shilling_rounding_when_finance_chooses_it(db):
    row = StatutoryRates.objects.get(valid_from=date(2026, 2, 1))
    row.unit = StatutoryRates.Unit.SHILLING
    row.save()
    rates = statutory_rates_of(row)
    assert month_deductions(D(60000), rates, classification=EMPLOYEE).paye == D(8538)
    assert month_deductions(D(150000), rates, classification=EMPLOYEE).paye == D(33527)


def test_a_rate_change_dated_next_month_leaves_this_month_alone(db):
    before = month_deductions(D(60000), statutory_rates_on(MARCH_2026), classification=EMPLOYEE)
    row = StatutoryRates.objects.get(valid_from=date(2026, 2, 1))
    row.pk = None
    row.valid_from = date(2026, 4, 1)
    row.shif_rate = D("3.00")
    row.save()
    PayeBand.objects.bulk_create(
        PayeBand(rates=row, position=n, width=width, rate=rate)
        for n, (width, rate) in enumerate([(D(30000), D(0)), (None, D(30))])
    )
    assert (
        month_deductions(D(60000), statutory_rates_on(MARCH_2026), classification=EMPLOYEE)
        == before
    )
    april = month_deductions(
        D(60000), statutory_rates_on(date(2026, 4, 1)), classification=EMPLOYEE
    )
    assert april.shif == D(1800) and april.paye != before.paye


def test_the_seeded_rows_follow_the_nssf_years(db):
    assert statutory_rates_on(date(2025, 6, 1)).nssf_upper_limit == 72000
    assert statutory_rates_on(date(2026, 1, 31)).nssf_upper_limit == 72000
    assert statutory_rates_on(date(2026, 2, 1)).nssf_upper_limit == 108000
    with pytest.raises(NoStatutoryRates, match="add them"):
        statutory_rates_on(date(2024, 1, 1))
    assert not StatutoryRates.objects.filter(confirmed=True).exists()  # Finance confirms them


def _runs(gigs, cuts):
    """The month's gigs paid in runs: each cut ends a run."""
    runs, start = [], 0
    for cut in [*sorted(set(cuts)), len(gigs)]:
        if cut > start:
            runs.append(sum(gigs[start:cut], D(0)))
            start = cut
    return runs


GIGS = st.lists(st.decimals(min_value=D(1), max_value=D(40000), places=2), min_size=1, max_size=20)
KINDS = st.sampled_from(
    [
        (EMPLOYEE, False, "professional"),
        (EMPLOYEE, True, "professional"),
        (CONTRACTOR, False, "professional"),
        (CONTRACTOR, False, CONTRACTUAL),
    ]
)


@pytest.mark.django_db
@settings(max_examples=150, deadline=None)
@given(gigs=GIGS, cuts=st.lists(st.integers(min_value=1, max_value=19), max_size=6), kind=KINDS)
def test_runs_in_a_month_deduct_what_one_run_of_the_month_would(gigs, cuts, kind):
    classification, secondary, fee_type = kind
    rates = statutory_rates_on(MARCH_2026)
    how = {"classification": classification, "secondary": secondary, "fee_type": fee_type}
    earlier, so_far, shares = Deductions(), D(0), []
    for run_gross in _runs(gigs, cuts):
        so_far += run_gross
        share = month_true_up(so_far, earlier, rates, **how)
        assert share.gross == run_gross
        # What comes off a run and what it pays add up to the run, and nothing is negative.
        assert share.net + share.withheld == run_gross
        for name in ("nssf", "shif", "ahl", "paye", "wht", "employer_nssf", "employer_ahl"):
            assert getattr(share, name) >= 0, name
        shares.append(share)
        earlier = month_deductions(so_far, rates, **how)
    whole = month_deductions(sum(gigs, D(0)), rates, **how)
    assert whole.net >= 0  # a month's deductions never exceed its pay
    for name in ("nssf", "shif", "ahl", "paye", "wht", "employer_nssf", "employer_ahl"):
        assert sum((getattr(s, name) for s in shares), D(0)) == getattr(whole, name), name


def test_finance_keeps_the_rate_table_and_a_row_in_force_stays_as_it_was(client, db):
    from tests.support.auth import log_in_staff, staff_in

    finance = log_in_staff(client, staff_in("Finance"))
    row = StatutoryRates.objects.get(valid_from=date(2026, 2, 1))
    page = finance.get(f"/admin/attendance/statutoryrates/{row.pk}/change/")
    assert page.status_code == 200
    # In force: the figures are shown, not offered for editing; confirming is still possible.
    assert 'name="shif_rate"' not in page.content.decode()
    assert 'name="confirmed"' in page.content.decode()
    finance.post(
        f"/admin/attendance/statutoryrates/{row.pk}/change/",
        {
            "confirmed": "on",
            "source": row.source,
            "bands-TOTAL_FORMS": "0",
            "bands-INITIAL_FORMS": "0",
            "shif_rate": "9",
        },
    )
    row.refresh_from_db()
    assert row.confirmed and row.shif_rate == D("2.75")
    assert finance.post(f"/admin/attendance/statutoryrates/{row.pk}/delete/").status_code == 403
    listed = finance.get("/admin/attendance/statutoryrates/").content.decode()
    assert "delete_selected" not in listed  # the list cannot delete a row in force either


def test_statutory_profiles_are_finances_alone(client, db):
    from tests.support.auth import log_in_staff, staff_in
    from tests.support.factories import UserFactory

    member = UserFactory()
    profile = StatutoryProfile.objects.create(user=member, kra_pin="A012345678Z")
    assert profile.missing() == ["ID number", "NSSF number", "SHA / SHIF number"]
    finance = log_in_staff(client, staff_in("Finance"))
    listed = finance.get("/admin/attendance/statutoryprofile/?numbers=missing")
    assert listed.status_code == 200 and "NSSF number" in listed.content.decode()
    client.logout()
    manager = log_in_staff(client, staff_in("Event managers"))
    assert manager.get("/admin/attendance/statutoryprofile/").status_code == 403
    assert (
        manager.get(f"/admin/attendance/statutoryprofile/{profile.pk}/change/").status_code == 403
    )

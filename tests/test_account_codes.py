"""Member account codes (issue 28, first part): what a member will type as the account number
when paying our Paybill from the SIM menu. Easy on a keypad, unique, stable, and a typo names
nobody rather than somebody else."""

import pytest

from attendance.account_codes import account_code_for, account_code_normalise
from attendance.models import Profile
from tests.support.auth import log_in_staff
from tests.support.factories import UserFactory


def test_codes_are_unique_short_and_carry_their_check_digit():
    codes = [account_code_for(n) for n in range(1, 200_001)]
    assert len(set(codes)) == len(codes)
    assert {len(code) for code in codes} == {9}  # SF and 7 digits below a million members
    assert all(account_code_normalise(code) == code for code in codes[:5000])
    assert len(account_code_for(1_000_000)) == 10  # and one more digit past that, still unique


@pytest.mark.parametrize("typed", ["{c}", "{l}", " {c} ", "#{c}", "sf {d3} {d4}", "{d}", "SF-{d}"])
def test_what_people_type_is_read_as_the_code(typed):
    code = account_code_for(4242)
    digits = code[2:]
    text = typed.format(c=code, l=code.lower(), d=digits, d3=digits[:3], d4=digits[3:])
    assert account_code_normalise(text) == code


def test_a_mistyped_digit_or_two_swapped_neighbours_name_nobody():
    for pk in (7, 4242, 99_999):
        digits = account_code_for(pk)[2:]
        for i, old in enumerate(digits):
            for new in "0123456789":
                if new != old:
                    assert account_code_normalise(digits[:i] + new + digits[i + 1 :]) is None
        for i in range(len(digits) - 1):
            swapped = digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]
            if swapped != digits and {digits[i], digits[i + 1]} != {"0", "9"}:
                assert account_code_normalise(swapped) is None
    for nonsense in ("", "SF", "hello", "SF12", "0712345678", None):
        assert account_code_normalise(nonsense) is None


@pytest.mark.django_db
def test_every_new_member_has_a_code_that_never_changes():
    member = UserFactory()
    code = member.profile.account_code
    assert code == account_code_for(member.profile.pk)
    member.profile.skills = "Driving licence BCE"
    member.profile.save()
    assert Profile.objects.get(pk=member.profile.pk).account_code == code


@pytest.mark.django_db
def test_staff_find_a_member_by_the_code_as_the_payer_typed_it(client):
    member = UserFactory(first_name="Wanjiku", last_name="Kamau")
    UserFactory(first_name="Otieno")
    staff = UserFactory(is_staff=True, is_superuser=True)
    log_in_staff(client, staff)
    typed = "sf " + member.profile.account_code[2:].lower()
    page = client.get("/admin/attendance/profile/", {"q": typed}).content.decode()
    assert "Wanjiku Kamau" in page and "Otieno" not in page
    detail = client.get(f"/admin/attendance/profile/{member.profile.pk}/change/").content.decode()
    assert member.profile.account_code in detail


@pytest.mark.django_db(transaction=True)
def test_members_who_exist_before_the_codes_get_theirs():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("attendance", "0026_one_inbox")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    user = old.get_model("auth", "User").objects.create(username="before")
    profile = old.get_model("attendance", "Profile").objects.create(user=user)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert Profile.objects.get(pk=profile.pk).account_code == account_code_for(profile.pk)

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from attendance.phones import format_phone, mask_phone, normalise_phone

subscriber = st.tuples(st.sampled_from("17"), st.text("0123456789", min_size=8, max_size=8)).map(
    "".join
)
separator = st.sampled_from(["", " ", "-", "  ", " - "])


def _spell(digits: str, prefix: str, sep: str) -> str:
    return prefix + sep + digits[:3] + sep + digits[3:6] + sep + digits[6:]


@given(subscriber, st.sampled_from(["0", "+254", "254", "+254 ", "254-"]), separator)
def test_every_accepted_spelling_normalises_to_the_same_number(digits, prefix, sep):
    assert normalise_phone(_spell(digits, prefix, sep)) == "254" + digits


@given(subscriber)
def test_normalising_is_idempotent(digits):
    once = normalise_phone("0" + digits)
    assert normalise_phone(once) == once
    assert len(once) == 12
    assert once[:4] in {"2547", "2541"}


@given(st.text(max_size=20))
def test_anything_else_is_refused_with_a_clear_message(raw):
    cleaned = "".join(c for c in raw if c not in " -().\t\n\r\x0b\x0c")
    looks_valid = (
        (
            (cleaned.startswith("0") and len(cleaned) == 10 and cleaned[1] in "17")
            or (cleaned.startswith("254") and len(cleaned) == 12 and cleaned[3] in "17")
            or (cleaned.startswith("+254") and len(cleaned) == 13 and cleaned[4] in "17")
        )
        and cleaned.lstrip("+").isdigit()
        and cleaned.isascii()
    )
    if looks_valid:
        return
    with pytest.raises(ValidationError, match="Kenyan mobile number"):
        normalise_phone(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "0812345678",
        "071234567",
        "07123456789",
        "+255712345678",
        "254212345678",
        "abc",
        "",
        "2547123456x8",
    ],
)
def test_near_misses_are_refused(raw):
    with pytest.raises(ValidationError):
        normalise_phone(raw)


def test_display_and_masking():
    assert format_phone("254712345678") == "+254 712 345678"
    assert mask_phone("254712345678") == "2547*****678"
    assert "12345" not in mask_phone("254712345678")


def test_profile_stores_the_normalised_number(crew):
    crew.profile.phone_number = "+254 733-111 222"
    crew.profile.save()
    crew.profile.refresh_from_db()
    assert crew.profile.phone_number == "254733111222"
    # and lookups by any spelling find it
    from attendance.models import Profile

    assert Profile.objects.get(phone_number="0733 111 222") == crew.profile


def test_profile_form_refuses_a_bad_number(staff_client, crew):
    response = staff_client.post(
        f"/admin/attendance/profile/{crew.profile.pk}/change/",
        {"phone_number": "12345", "department": "", "skills": ""},
    )
    assert response.status_code == 200
    assert "Enter a Kenyan mobile number" in response.content.decode()

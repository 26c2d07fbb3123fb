"""Profile validation rules, without a server."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shopfleet.users.schemas import Address, AdminProfileUpdate, ProfileUpdate

ADDRESS = {
    "label": "Home",
    "line1": "1 Main St",
    "city": "Oslo",
    "postalCode": "0150",
    "country": "no",
}


@pytest.mark.parametrize(
    "phone", ["+4930123456", "+1 (555) 010-0199", "030.1234.5678", "12345", " +44 20 7946 0958 "]
)
def test_sane_phone_numbers_are_accepted(phone: str) -> None:
    assert ProfileUpdate.model_validate({"phone": phone}).phone == phone.strip()


@pytest.mark.parametrize(
    "phone",
    [
        "",
        "1234",
        "+" + "1" * 16,
        "phone",
        "+49-30-",
        "++4930123456",
        "49 30 12 34 56 78 90 12 34 56 7",
        "+49\n30123456",
    ],
)
def test_other_phone_numbers_are_refused(phone: str) -> None:
    with pytest.raises(ValidationError):
        ProfileUpdate.model_validate({"phone": phone})


def test_address_country_is_an_assigned_alpha2_code_in_upper_case() -> None:
    assert Address.model_validate(ADDRESS).country == "NO"
    for country in ("XX", "ZZ", "N", "NOR", "1A", ""):
        with pytest.raises(ValidationError):
            Address.model_validate({**ADDRESS, "country": country})


def test_address_line2_is_optional_and_fields_are_limited() -> None:
    assert Address.model_validate(ADDRESS).line2 is None
    assert Address.model_validate({**ADDRESS, "line2": "Apt 4"}).line2 == "Apt 4"
    too_long: dict[str, Any] = {
        "label": "x" * 51,
        "line1": "x" * 201,
        "line2": "x" * 201,
        "city": "x" * 101,
        "postalCode": "x" * 21,
    }
    for field, value in too_long.items():
        with pytest.raises(ValidationError):
            Address.model_validate({**ADDRESS, field: value})
    for field in ("label", "line1", "city", "postalCode", "country"):
        with pytest.raises(ValidationError):
            Address.model_validate({k: v for k, v in ADDRESS.items() if k != field})
        with pytest.raises(ValidationError):
            Address.model_validate({**ADDRESS, field: "   "})


def test_at_most_ten_addresses() -> None:
    assert len(ProfileUpdate.model_validate({"addresses": [ADDRESS] * 10}).addresses or []) == 10
    with pytest.raises(ValidationError):
        ProfileUpdate.model_validate({"addresses": [ADDRESS] * 11})


def test_customer_patch_cannot_carry_access_fields_but_admin_patch_can() -> None:
    for field, value in (("role", "admin"), ("active", False), ("email", "a@b.co"), ("id", "x")):
        with pytest.raises(ValidationError):
            ProfileUpdate.model_validate({field: value})
    admin = AdminProfileUpdate.model_validate({"role": "admin", "active": False})
    assert admin.model_dump(exclude_unset=True) == {"role": "admin", "active": False}
    for field in ("name", "addresses", "role", "active"):
        with pytest.raises(ValidationError):
            AdminProfileUpdate.model_validate({field: None})
    assert AdminProfileUpdate.model_validate({"phone": None}).model_dump(exclude_unset=True) == {
        "phone": None
    }

"""Users request and response bodies."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints, field_validator

from shopfleet.common.schemas import SAFE_TEXT, ApiModel, Name, Timestamp
from shopfleet.contracts.auth import Role

MAX_ADDRESSES = 10

# ISO 3166-1 alpha-2: the 249 officially assigned codes.
_COUNTRY_CODES_TEXT = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
"""
COUNTRY_CODES = frozenset(_COUNTRY_CODES_TEXT.split())


def _phone_digits(value: str) -> str:
    digits = sum(character.isdigit() for character in value)
    if not 5 <= digits <= 15:  # E.164 allows at most 15 digits
        raise ValueError("a phone number has 5 to 15 digits")
    return value


def _country_code(value: str) -> str:
    code = value.upper()
    if code not in COUNTRY_CODES:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code, e.g. 'DE'")
    return code


def _text(max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


Label = Annotated[str, _text(50), SAFE_TEXT]
AddressLine = Annotated[str, _text(200), SAFE_TEXT]
City = Annotated[str, _text(100), SAFE_TEXT]
PostalCode = Annotated[str, _text(20), SAFE_TEXT]


# E.164-ish: an optional '+', digits, and the usual separators (space . - ( )).
Phone = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=32,
        pattern=r"^\+?[0-9(][0-9 ().\-]*[0-9]$",
    ),
    AfterValidator(_phone_digits),
    SAFE_TEXT,
]
CountryCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z]{2}$"),
    AfterValidator(_country_code),
    SAFE_TEXT,
]


class Address(ApiModel):
    label: Label
    line1: AddressLine
    line2: AddressLine | None = None
    city: City
    postal_code: PostalCode
    country: CountryCode


def _reject_null(value: object) -> object:
    if value is None:
        raise ValueError("may not be null; leave the field out to keep its value")
    return value


class ProfileUpdate(ApiModel):
    """What a signed-in user may change on their own profile (`phone: null` clears it)."""

    name: Name | None = None
    phone: Phone | None = None
    addresses: list[Address] | None = Field(default=None, max_length=MAX_ADDRESSES)

    @field_validator("name", "addresses")
    @classmethod
    def _present_fields_are_not_null(cls, value: object) -> object:
        return _reject_null(value)


class AdminProfileUpdate(ProfileUpdate):
    """What an admin may change on anyone's profile and account."""

    role: Role | None = None
    active: bool | None = None

    @field_validator("role", "active")
    @classmethod
    def _access_fields_are_not_null(cls, value: object) -> object:
        return _reject_null(value)


class ProfilePublic(ApiModel):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    active: bool
    created_at: Timestamp
    updated_at: Timestamp
    phone: str | None
    addresses: list[Address]

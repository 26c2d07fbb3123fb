"""The two kinds of body a contract defines: what a caller sends, what a server answers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from shopfleet.common.schemas import ApiModel


class ContractRequest(ApiModel):
    """A body a caller sends: camelCase, and the serving side refuses unknown fields."""


class ContractAnswer(BaseModel):
    """A body a server answers: camelCase; callers ignore fields they do not know yet."""

    # A server may then add a field before its callers are deployed with the new contract.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", from_attributes=True
    )


class FieldError(ContractAnswer):
    field: str
    message: str


class Problem(ContractAnswer):
    """An RFC 9457 problem as a caller reads it; `errors` name the fields of a 422."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] = []

"""Users' table: the profile of each account, keyed by auth's account id."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import String, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shopfleet.common.database import JSONType, UTCDateTime, new_metadata, utcnow


class Base(DeclarativeBase):
    metadata = new_metadata()


class Profile(Base):
    """What users owns about an account; the account itself (email, name, role) lives in auth."""

    __tablename__ = "profiles"

    # Auth's account id; no foreign key, the account is in another service's database.
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    phone: Mapped[str | None] = mapped_column(String(32), default=None)
    # A list of address objects with snake_case keys, validated by schemas.Address on write.
    addresses: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

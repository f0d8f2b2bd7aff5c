"""Agents and supervisors: who may register a phone, take calls, and (later) log in.

Kept in the call store's database (same URL), table ``users``. A password is never
stored: the web log-in checks an Argon2 hash (argon2-cffi), and SIP digest authentication
for the user's phone checks HA1 = MD5(user:realm:password), the only form RFC 2617/7616
digest can verify without the password itself. Users are created with
``switchboard users add``; there is no default account, and a user created without a
password gets a random one, printed once.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ROLES = ("agent", "supervisor")

metadata = sa.MetaData()
users = sa.Table(
    "users", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("sip_ha1", sa.String(64), nullable=False),
    sa.Column("sip_realm", sa.String(128), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)


class Role(StrEnum):
    """What a user does."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"


@dataclass(frozen=True)
class User:
    """A person who works the calls."""

    name: str
    role: Role


class UserError(ValueError):
    """A user that cannot be created or found (bad name, unknown role, duplicate)."""


def sip_ha1(name: str, realm: str, password: str) -> str:
    return hashlib.md5(f"{name}:{realm}:{password}".encode()).hexdigest()  # noqa: S324


class UserStore:
    """The users table of the call store's database."""

    def __init__(self, url: str, realm: str = "switchboard"):
        from switchboard.pipeline.store import make_engine

        self._engine, _shared = make_engine(url)
        self.realm = realm
        metadata.create_all(self._engine)
        self._hasher = PasswordHasher()

    def add(self, name: str, role: str, password: str | None = None) -> str:
        """Create a user; returns the password (a random one when none was given)."""
        if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise UserError(f"invalid user name {name!r} (letters, digits, - _ .)")
        if role not in ROLES:
            raise UserError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        password = password or secrets.token_urlsafe(12)
        row = {"name": name, "role": role, "password_hash": self._hasher.hash(password),
               "sip_ha1": sip_ha1(name, self.realm, password), "sip_realm": self.realm,
               "created_at": time.time()}
        with self._engine.begin() as conn:
            if conn.execute(sa.select(users.c.name).where(users.c.name == name)).first():
                raise UserError(f"user {name!r} exists")
            conn.execute(sa.insert(users).values(**row))
        return password

    def remove(self, name: str) -> bool:
        with self._engine.begin() as conn:
            return conn.execute(sa.delete(users).where(users.c.name == name)).rowcount > 0

    def list(self, role: str | None = None) -> list[User]:
        query = sa.select(users.c.name, users.c.role).order_by(users.c.name)
        if role is not None:
            query = query.where(users.c.role == role)
        with self._engine.connect() as conn:
            return [User(r.name, Role(r.role)) for r in conn.execute(query)]

    def verify(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs; None otherwise (unknown or wrong alike)."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name)).first()
        if row is None:
            # Spend the same work as a real check, so timing does not say who exists.
            self._hasher.hash(password)
            return None
        try:
            self._hasher.verify(row.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return User(row.name, Role(row.role))

    def sip_ha1(self, name: str) -> str | None:
        """The HA1 of ``name`` in this realm, for the SIP registrar; None if unknown."""
        with self._engine.connect() as conn:
            return conn.execute(sa.select(users.c.sip_ha1).where(
                users.c.name == name, users.c.sip_realm == self.realm)).scalar()

    def close(self) -> None:
        self._engine.dispose()

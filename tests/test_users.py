import subprocess
import sys

import pytest
from switchboard.telephony.sip.digest import ha1

from switchboard.users import UserError, UserStore


@pytest.fixture()
def users(tmp_path):
    store = UserStore(f"sqlite:///{tmp_path / 'calls.db'}", realm="switchboard")
    yield store
    store.close()


def test_passwords_verify_and_are_not_stored(users, tmp_path):
    users.add("alice", "agent", "correct horse")
    assert users.verify("alice", "correct horse").role == "agent"
    assert users.verify("alice", "wrong") is None
    assert users.verify("nobody", "correct horse") is None
    assert b"correct horse" not in (tmp_path / "calls.db").read_bytes()


def test_sip_digest_gets_ha1_for_known_users_only(users, tmp_path):
    users.add("bob", "agent", "pw")
    assert users.sip_ha1("bob") == ha1("bob", "switchboard", "pw")
    assert users.sip_ha1("eve") is None
    # After a change of realm the stored HA1 is for the old one: no phone can use it.
    moved = UserStore(f"sqlite:///{tmp_path / 'calls.db'}", realm="elsewhere")
    try:
        assert moved.sip_ha1("bob") is None
        assert moved.verify("bob", "pw") is not None  # the web log-in does not use the realm
    finally:
        moved.close()


def test_an_unknown_name_costs_a_password_hash_like_a_known_one(users, monkeypatch):
    """Timing must not say who exists: an unknown name still hashes the password given."""
    users.add("alice", "agent", "pw")
    hashed = []
    real = users._hasher

    class Counting:
        def hash(self, password):
            hashed.append(password)
            return real.hash(password)

        def verify(self, stored, password):
            return real.verify(stored, password)

    monkeypatch.setattr(users, "_hasher", Counting())
    assert users.verify("mallory", "guess") is None
    assert hashed == ["guess"]


def test_no_password_means_a_random_one(users):
    first = users.add("carol", "supervisor")
    second = users.add("dave", "supervisor")
    assert len(first) >= 16 and first != second
    assert users.verify("carol", first) is not None


@pytest.mark.parametrize("name,role", [("alice", "agent"), ("x y", "agent"), ("zed", "root")])
def test_bad_users_are_refused(users, name, role):
    users.add("alice", "agent", "pw")
    with pytest.raises(UserError):
        users.add(name, role, "pw")


def test_cli_adds_lists_and_removes(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "calls.db"}"\n')

    def cli(*args, stdin=None):
        return subprocess.run([sys.executable, "-m", "switchboard.cli", "--config", str(config),
                               "users", *args], input=stdin, capture_output=True, text=True,
                              timeout=60)

    added = cli("add", "erin", "--role", "agent")
    assert added.returncode == 0 and "password (shown once):" in added.stdout
    assert cli("add", "frank", "--password-stdin", stdin="pw123\n").returncode == 0
    assert cli("add", "frank").returncode == 2
    listed = cli("list").stdout
    assert "erin" in listed and "frank" in listed
    assert cli("remove", "erin").returncode == 0
    assert "erin" not in cli("list").stdout
    store = UserStore(f"sqlite:///{tmp_path / 'calls.db'}")
    assert store.verify("frank", "pw123") is not None
    store.close()

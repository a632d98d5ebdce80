"""A questionnaire link names one check-in, cannot be forged and expires."""

from __future__ import annotations

import time

import pytest

from crm_backend.config import Settings
from crm_backend.followups import links


def settings(**values) -> Settings:
    return Settings(SECRET_KEY="test-secret-key", PUBLIC_BASE_URL="https://h5.example.org/", **values)


def test_a_link_opens_the_check_in_it_names():
    url = links.checkin_url(settings(), 42)
    assert url.startswith("https://h5.example.org/followup/q/")
    token = url.rsplit("/", 1)[1]
    assert links.read_checkin_token(settings(), token) == 42


@pytest.mark.parametrize("damage", ["x", "", "..", "a" * 600])
def test_a_damaged_or_forged_link_is_refused(damage):
    token = links.checkin_token(settings(), 7)
    with pytest.raises(links.LinkRefused) as refused:
        links.read_checkin_token(settings(), token[:-2] + damage if damage else "not.a.token")
    assert not refused.value.expired


def test_a_link_signed_with_another_key_is_refused():
    other = Settings(SECRET_KEY="another-key", PUBLIC_BASE_URL="https://h5.example.org")
    with pytest.raises(links.LinkRefused):
        links.read_checkin_token(settings(), links.checkin_token(other, 7))


def test_an_old_link_is_refused_as_expired(monkeypatch):
    token = links.checkin_token(settings(), 7)
    later = time.time() + 3 * 3600 + 5
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(links.LinkRefused) as refused:
        links.read_checkin_token(settings(FOLLOWUP_LINK_HOURS=3), token)
    assert refused.value.expired

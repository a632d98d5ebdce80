"""The bot API token and SECRET_KEY: development values only in the sandbox, required with a real account."""

from __future__ import annotations

import pytest

from crm_backend.config import SANDBOX_INTERNAL_TOKEN, Settings
from crm_backend.runtime import Runtime
from tests.support.api import KEY_A, LOOKUP_KEY

REAL = {
    "WECHAT_OA_APPID": "wx1234567890abcdef",
    "PATIENT_DATA_KEYS": f"a:{KEY_A}",
    "PATIENT_LOOKUP_KEY": LOOKUP_KEY,
}


def test_real_credentials_without_a_token_refuse_to_start() -> None:
    settings = Settings(**REAL, INTERNAL_API_TOKEN="")
    assert settings.bot_api_token == ""  # the sandbox token is never accepted for a real account
    with pytest.raises(RuntimeError, match="INTERNAL_API_TOKEN"):
        Runtime.create(settings)


def test_the_configured_token_is_the_only_one_accepted() -> None:
    assert Settings(**REAL, INTERNAL_API_TOKEN="s3cret-token").bot_api_token == "s3cret-token"
    assert Settings(WECHAT_OA_APPID="", INTERNAL_API_TOKEN="").bot_api_token == SANDBOX_INTERNAL_TOKEN


@pytest.mark.parametrize("secret_key", ["", "  ", "dev-only-change-me"])
def test_real_credentials_with_the_default_secret_key_refuse_to_start(secret_key: str) -> None:
    """Anyone could sign a questionnaire link for any check-in with the published default."""
    settings = Settings(**REAL, INTERNAL_API_TOKEN="s3cret-token", SECRET_KEY=secret_key)
    with pytest.raises(RuntimeError, match="SECRET_KEY must be set"):
        Runtime.create(settings)


def test_the_sandbox_starts_with_the_default_secret_key() -> None:
    settings = Settings(WECHAT_OA_APPID="", SECRET_KEY="dev-only-change-me")
    assert settings.sandbox_enabled and not settings.has_real_secret_key
    Runtime.create(settings)  # no error: the sandbox never talks to real patients

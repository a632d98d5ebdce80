"""Every setting comes from the environment (or `.env`), so one build runs in dev, CI and a hospital."""

from __future__ import annotations

from datetime import datetime, time
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Credentials `make run` uses when no real official account is configured. The sandbox only ever
#: answers for these, so it can never shadow a real account.
#: The hospital's local time: opening hours, send windows and due times are in it.
HOSPITAL_TZ = ZoneInfo("Asia/Shanghai")


def parse_hhmm(value: str) -> time:
    """A setting's hospital-local "HH:MM" (validated by the settings' patterns)."""
    return time.fromisoformat(value)


def within_local_hours(now: datetime, start: str, end: str) -> bool:
    """start <= hospital time < end ("HH:MM" each): the one send-window rule for appointment
    reminders and follow-up check-ins, so both read the same instant the same way."""
    local = now.astimezone(HOSPITAL_TZ).time()
    return parse_hhmm(start) <= local < parse_hhmm(end)


#: SECRET_KEY's development default: known to everyone, so only the sandbox may run with it.
DEV_SECRET_KEY = "dev-only-change-me"
SANDBOX_APPID = "wx_sandbox_appid"
SANDBOX_SECRET = "sandbox-secret"
SANDBOX_TOKEN = "sandbox-token"
#: 43 characters of base64 as WeChat issues them (a 32-byte AES key without the trailing '=').
SANDBOX_AES_KEY = "c2FuZGJveC1hZXMta2V5LWZvci1jYXJlYnJpZGdlISE"
#: The bot API token without real credentials; bot/dialogs/crm.py falls back to the same value.
SANDBOX_INTERNAL_TOKEN = "sandbox-internal-token"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    port: int = Field(8000, alias="PORT")
    database_url: str = Field(
        f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'carebridge.db'}", alias="DATABASE_URL"
    )
    #: PostgreSQL runs the statements a patient waits on through asyncpg directly (database/hot_path.py);
    #: false runs them through the ORM like SQLite. For comparing both paths, not for production.
    database_fast_path: bool = Field(True, alias="DATABASE_FAST_PATH")
    redis_url: str = Field("redis://127.0.0.1:6379/0", alias="REDIS_URL")

    wechat_api_base: str = Field("https://api.weixin.qq.com", alias="WECHAT_API_BASE")
    wechat_oa_appid: str = Field("", alias="WECHAT_OA_APPID")
    wechat_oa_secret: str = Field("", alias="WECHAT_OA_SECRET")
    wechat_oa_token: str = Field("", alias="WECHAT_OA_TOKEN")
    wechat_oa_aes_key: str = Field("", alias="WECHAT_OA_AES_KEY")

    rasa_port: int = Field(5005, alias="RASA_PORT")
    rasa_host: str = Field("127.0.0.1", alias="RASA_HOST")
    action_server_port: int = Field(5055, alias="ACTION_SERVER_PORT")
    action_server_host: str = Field("127.0.0.1", alias="ACTION_SERVER_HOST")
    #: Several Rasa servers (each with its own action server), comma-separated base URLs; when set,
    #: RASA_HOST/RASA_PORT are not used. Turns are spread over them and a server that cannot be
    #: reached is skipped. Rasa's own lock store is not relied on: the patient lock orders turns.
    rasa_servers: str = Field("", alias="RASA_URLS")
    #: The action servers of those Rasa servers, for /healthz (comma-separated base URLs).
    action_servers: str = Field("", alias="ACTION_SERVER_URLS")
    rasa_timeout_seconds: float = Field(20.0, alias="RASA_TIMEOUT_SECONDS")
    #: How long a turn that keeps failing (Rasa or the action server away) is retried before it is
    #: handed to staff; attempts alone are not enough (see conversations/route.py Limits).
    bot_retry_seconds: float = Field(600.0, alias="BOT_RETRY_SECONDS", ge=0)
    #: How long a patient's lock outlives a worker that died holding it (its holder renews it).
    patient_lock_seconds: float = Field(15.0, alias="PATIENT_LOCK_SECONDS", gt=1)
    #: Shared secret the action server presents to the CRM's bot API (/internal/bot/...). Required
    #: with real WeChat credentials; the sandbox falls back to a development token.
    internal_api_token: str = Field("", alias="INTERNAL_API_TOKEN", repr=False)

    #: How long the webhook holds pushes while the database is out of reach (conversations/inbound.py).
    webhook_database_wait_seconds: float = Field(15.0, alias="WEBHOOK_DATABASE_WAIT_SECONDS", ge=0)
    #: Largest webhook body accepted; WeChat pushes are a few KiB.
    max_body_bytes: int = Field(64 * 1024, alias="MAX_BODY_BYTES")
    #: Key prefix for every Redis key this deployment writes (lets two deployments share one Redis).
    redis_prefix: str = Field("cb", alias="REDIS_PREFIX")
    #: Inbound messages stored but not processed after this long are re-queued by the sweeper.
    sweeper_grace_seconds: float = Field(30.0, alias="SWEEPER_GRACE_SECONDS")
    sweeper_interval_seconds: float = Field(10.0, alias="SWEEPER_INTERVAL_SECONDS")
    #: Stream entries a dead consumer held are reclaimed after this idle time.
    stream_reclaim_idle_ms: int = Field(30_000, alias="STREAM_RECLAIM_IDLE_MS")
    max_processing_attempts: int = Field(5, alias="MAX_PROCESSING_ATTEMPTS")
    #: Consumers per queue in one worker process: patients processed in parallel. Scale out with
    #: more worker processes (on other hosts) rather than letting one starve the webhook's CPU.
    worker_concurrency: int = Field(2, alias="WORKER_CONCURRENCY", ge=1, le=64)
    delivery_max_attempts: int = Field(5, alias="DELIVERY_MAX_ATTEMPTS")
    delivery_backoff_seconds: float = Field(0.5, alias="DELIVERY_BACKOFF_SECONDS")
    #: How long a message WeChat cannot be reached for stays queued (the sweeper tries it again)
    #: before it is marked failed; later messages of that conversation wait behind it, in order.
    delivery_retry_seconds: float = Field(600.0, alias="DELIVERY_RETRY_SECONDS", ge=0)
    token_refresh_margin_seconds: int = Field(600, alias="TOKEN_REFRESH_MARGIN_SECONDS")

    #: Version of the privacy notice shown on subscribe; consent records point at it.
    privacy_notice_version: str = Field("2026-11", alias="PRIVACY_NOTICE_VERSION")
    #: Serve the fake WeChat API and the simulator even if credentials look real (tests only).
    sandbox_force: bool = Field(False, alias="SANDBOX_FORCE")
    log_level: str = Field("INFO", alias="LOG_LEVEL")

    # -- staff console -------------------------------------------------------------------------
    #: Keys derived from it sign the follow-up questionnaire links and the known-device login
    #: cookies. Web and worker refuse to start with the default or an empty value when real WeChat
    #: credentials are configured (Runtime.create).
    secret_key: str = Field(DEV_SECRET_KEY, alias="SECRET_KEY", repr=False)
    #: The first admin, created at start-up when no admin exists yet.
    admin_username: str = Field("", alias="ADMIN_USERNAME")
    admin_password: str = Field("", alias="ADMIN_PASSWORD")
    #: Send session cookies only over HTTPS (turn off only for local http://127.0.0.1 use).
    session_cookie_secure: bool = Field(False, alias="SESSION_COOKIE_SECURE")
    session_ttl_seconds: int = Field(12 * 3600, alias="SESSION_TTL_SECONDS")
    #: Failed logins allowed within the window before 429, counted per username for browsers
    #: that have not logged in as that user before, and apart for each browser that has (its
    #: known-device cookie), so strangers cannot lock a user out of their own browser
    #: (staff/throttle.py).
    login_max_failures: int = Field(5, alias="LOGIN_MAX_FAILURES", ge=1)
    #: Failed logins allowed per client address within the window, across usernames, from browsers
    #: without a known-device cookie. High: a hospital's staff may all share one NAT address.
    login_max_failures_per_address: int = Field(100, alias="LOGIN_MAX_FAILURES_PER_ADDRESS", ge=1)
    login_window_seconds: int = Field(900, alias="LOGIN_WINDOW_SECONDS", ge=1)
    #: How long a browser stays a known device of a user after their last login there.
    login_device_days: int = Field(180, alias="LOGIN_DEVICE_DAYS", ge=1)
    #: Addresses of the proxies whose X-Forwarded-For / X-Forwarded-Proto are believed
    #: (comma-separated IPs or networks, "*" for any); empty: none, the peer is the client. Applied
    #: by crm_backend/web.py, the only way the web app is started.
    forwarded_allow_ips: str = Field("", alias="FORWARDED_ALLOW_IPS")
    #: When people answer escalated chats, Asia/Shanghai time, e.g. "08:00-20:00".
    staffed_hours: str = Field(
        "08:00-20:00",
        alias="STAFFED_HOURS",
        pattern=r"^\s*([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?\s*-\s*([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?\s*$",
    )
    #: ISO weekdays staffed, 1 = Monday.
    staffed_days: str = Field("1,2,3,4,5,6,7", alias="STAFFED_DAYS", pattern=r"^\s*[1-7](\s*,\s*[1-7])*\s*$")
    #: Time to first response targets per priority, in seconds.
    sla_urgent_seconds: int = Field(120, alias="SLA_URGENT_SECONDS")
    sla_high_seconds: int = Field(300, alias="SLA_HIGH_SECONDS")
    sla_normal_seconds: int = Field(900, alias="SLA_NORMAL_SECONDS")
    #: While a chat waits for staff, the patient's further messages get at most one
    #: acknowledgement (place in the queue, or when staff reply) this often (route.py).
    waiting_ack_seconds: float = Field(180, alias="WAITING_ACK_SECONDS", ge=0)
    #: The hospital's service phone the bot names when it cannot help (after 不同意, say).
    #: The default is a placeholder that says so: set the real number.
    hospital_service_phone: str = Field(
        "400-000-0000（演示号码）", alias="HOSPITAL_SERVICE_PHONE", min_length=1
    )
    #: The hospital's name as patients know it ("这里是XX医院随访服务").
    hospital_name: str = Field("示例市人民医院", alias="HOSPITAL_NAME", min_length=1, max_length=40)
    #: A console page silent this long counts as closed: its online staff member becomes away.
    console_gone_after_seconds: float = Field(80, alias="CONSOLE_GONE_AFTER_SECONDS")

    # -- patient records -----------------------------------------------------------------------
    #: "kid:<base64 32 bytes>,kid2:..." AES-256-GCM keys for ID, phone and card numbers; the first
    #: encrypts, all decrypt (rotation). Required with real WeChat credentials.
    patient_data_keys: str = Field("", alias="PATIENT_DATA_KEYS", repr=False)
    #: base64 key (>= 32 bytes) for the HMAC lookup hashes that make those fields searchable.
    patient_lookup_key: str = Field("", alias="PATIENT_LOOKUP_KEY", repr=False)

    # -- booking -------------------------------------------------------------------------------
    #: Patients may not cancel within this many hours of the session start (am 08:00, pm 13:30).
    booking_cancel_cutoff_hours: float = Field(2.0, alias="BOOKING_CANCEL_CUTOFF_HOURS", ge=0)

    # -- reminders -----------------------------------------------------------------------------
    #: WeChat template for day-before reminders outside the 48-hour customer-service window; empty:
    #: those patients get no reminder (recorded as skipped, "no template configured").
    reminder_template_id: str = Field("", alias="REMINDER_TEMPLATE_ID")
    #: Reminders go out on the day before, from this local (Asia/Shanghai) time, "HH:MM" ...
    reminder_send_from: str = Field("09:00", alias="REMINDER_SEND_FROM", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    #: ... and never at or after this one, so nobody is woken.
    reminder_send_until: str = Field(
        "20:00", alias="REMINDER_SEND_UNTIL", pattern=r"^([01]\d|2[0-3]):[0-5]\d$"
    )
    #: How often the worker looks for reminders due.
    reminder_interval_seconds: float = Field(300.0, alias="REMINDER_INTERVAL_SECONDS", gt=0)

    # -- post-operative follow-up ----------------------------------------------------------------
    #: Check-ins (and their reminders) start from this local time, "HH:MM" ...
    followup_send_from: str = Field("09:00", alias="FOLLOWUP_SEND_FROM", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    #: ... and never at or after this one.
    followup_send_until: str = Field(
        "20:00", alias="FOLLOWUP_SEND_UNTIL", pattern=r"^([01]\d|2[0-3]):[0-5]\d$"
    )
    #: How often the worker looks for check-ins due, reminders and missed check-ins.
    followup_interval_seconds: float = Field(60.0, alias="FOLLOWUP_INTERVAL_SECONDS", gt=0)
    #: A check-in claimed this long ago and still not started belongs to a worker that died (a start
    #: takes well under a second) and is taken over. Taking over a start still under way is safe:
    #: its dialogue key exists once; each takeover counts towards the tries before the phone list.
    followup_claim_timeout_seconds: float = Field(60.0, alias="FOLLOWUP_CLAIM_TIMEOUT_SECONDS", gt=0)
    #: WeChat template inviting to a check-in outside the 48-hour window; empty: those check-ins
    #: wait for the patient to write (and are missed if nobody does).
    followup_template_id: str = Field("", alias="FOLLOWUP_TEMPLATE_ID")
    #: At most this many check-in starts and reminders a minute, across all workers (pace.py);
    #: 0: as fast as the workers go.
    followup_starts_per_minute: int = Field(1200, alias="FOLLOWUP_STARTS_PER_MINUTE", ge=0)
    #: A started check-in still unanswered after this many hours gets one reminder.
    followup_reminder_after_hours: float = Field(24.0, alias="FOLLOWUP_REMINDER_AFTER_HOURS", gt=0)
    #: A check-in's answer window: until the next time point, and at most this many hours after it
    #: was due; then it is missed and goes onto the team's phone list.
    followup_missed_after_hours: float = Field(72.0, alias="FOLLOWUP_MISSED_AFTER_HOURS", gt=0)
    #: After this many missed check-ins of one enrolment the patient counts as lost to follow-up (失访).
    followup_lost_after_missed: int = Field(2, alias="FOLLOWUP_LOST_AFTER_MISSED", ge=1)
    #: How long a questionnaire link in a template message works.
    followup_link_hours: float = Field(72.0, alias="FOLLOWUP_LINK_HOURS", gt=0)
    #: The address patients' phones open questionnaire links at (the web app as WeChat users reach it).
    public_base_url: str = Field("http://127.0.0.1:8000", alias="PUBLIC_BASE_URL")
    #: Bearer token of the HIS calling POST /api/his/discharges; empty: that endpoint is off (404).
    his_api_token: str = Field("", alias="HIS_API_TOKEN", repr=False)

    # -- complaints --------------------------------------------------------------------------------
    #: Days after the answer in which a patient who does not accept it reopens the case; after them
    #: an answered case with no reply is closed, and a late disagreement is recorded on the timeline.
    complaint_reopen_days: int = Field(7, alias="COMPLAINT_REOPEN_DAYS", ge=1)
    #: How often the worker flags cases nearing or past their deadline.
    complaint_interval_seconds: float = Field(300.0, alias="COMPLAINT_INTERVAL_SECONDS", gt=0)
    #: WeChat template carrying a case's answer outside the 48-hour window; empty: the answer waits
    #: for the patient's next message.
    complaint_template_id: str = Field("", alias="COMPLAINT_TEMPLATE_ID")

    @property
    def sandbox_enabled(self) -> bool:
        """The sandbox runs only when no real account is configured."""
        return self.sandbox_force or self.wechat_oa_appid in ("", SANDBOX_APPID)

    @property
    def has_real_secret_key(self) -> bool:
        return self.secret_key.strip() not in ("", DEV_SECRET_KEY)

    @property
    def oa_appid(self) -> str:
        return self.wechat_oa_appid or SANDBOX_APPID

    @property
    def oa_secret(self) -> str:
        return self.wechat_oa_secret or (SANDBOX_SECRET if self.sandbox_enabled else "")

    @property
    def oa_token(self) -> str:
        return self.wechat_oa_token or (SANDBOX_TOKEN if self.sandbox_enabled else "")

    @property
    def oa_aes_key(self) -> str:
        return self.wechat_oa_aes_key or (SANDBOX_AES_KEY if self.sandbox_enabled else "")

    @property
    def bot_api_token(self) -> str:
        """The token the bot API accepts; empty (every request refused) when none is configured."""
        return self.internal_api_token or (SANDBOX_INTERNAL_TOKEN if self.sandbox_enabled else "")

    @property
    def rasa_urls(self) -> list[str]:
        return _url_list(self.rasa_servers) or [f"http://{self.rasa_host}:{self.rasa_port}"]

    @property
    def action_server_urls(self) -> list[str]:
        return _url_list(self.action_servers) or [
            f"http://{self.action_server_host}:{self.action_server_port}"
        ]

    def key(self, *parts: object) -> str:
        """A namespaced Redis key."""
        return ":".join([self.redis_prefix, *map(str, parts)])


def _url_list(value: str) -> list[str]:
    return [url.strip().rstrip("/") for url in value.split(",") if url.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()

"""The sender id the worker gives Rasa is the one the CRM's bot API reads back."""

from crm_backend.escalations.service import sender_id
from crm_backend.patients.models import WeChatIdentity
from crm_backend.patients.service import rasa_sender, read_rasa_sender


def test_sender_id_reads_back_as_the_same_identity() -> None:
    # openids are base64-like and may contain '-' and '_'; nothing stops a ':' in them either.
    sender = rasa_sender("wx1234567890abcdef", "oAbC-12_x:y")
    assert read_rasa_sender(sender) == ("wx1234567890abcdef", "oAbC-12_x:y")


def test_escalation_and_processing_name_the_patient_alike() -> None:
    identity = WeChatIdentity(app_id="wxapp", openid="o-patient-1")
    assert sender_id(identity) == rasa_sender("wxapp", "o-patient-1")

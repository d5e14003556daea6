"""The SIP driver: our own asyncio SIP user agent (no third-party SIP library). See ``docs/sip.md``."""

from dialer.telephony.sip.config import DeviceAccount, SipSettings, TrunkConfig
from dialer.telephony.sip.driver import SipTelephony, outcome
from dialer.telephony.sip.registrar import Registration

__all__ = ["DeviceAccount", "Registration", "SipSettings", "SipTelephony", "TrunkConfig", "outcome"]

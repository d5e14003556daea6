"""ORM models; importing this package registers every table on ``Base.metadata``."""

from dialer.models.audit import AuditEntry
from dialer.models.base import Base
from dialer.models.campaign import (
    Callback,
    CallerId,
    CallerIdGroup,
    Campaign,
    CampaignSchedule,
    CompletionCode,
    CompletionCodeGroup,
    Holiday,
    Selection,
    Strategy,
    StrategyOutcomeRetry,
    StrategyResultRule,
    caller_id_group_members,
    campaign_lists,
    campaign_pools,
    completion_code_group_members,
)
from dialer.models.contact import (
    Contact,
    ContactList,
    ContactPhone,
    DncEntry,
    DncList,
    Field,
    ImportJob,
    ListField,
    PhoneCode,
    TimeZone,
)
from dialer.models.crm import (  # noqa: F401
    CrmConnector,
    CrmRecord,
    IntegrationAllow,
    IntegrationRequest,
    OutboxItem,
    WebhookSubscription,
)
from dialer.models.delivery import ReportRun, ReportSchedule  # noqa: F401
from dialer.models.engine import Attempt, EngineCommand, EngineRun, OperatorStateLog
from dialer.models.enums import *  # noqa: F403
from dialer.models.media import Recording, RecordMode, RecordOverride  # noqa: F401
from dialer.models.operator import Operator, OperatorPool, OperatorSkill, Skill, pool_operators
from dialer.models.reports import (  # noqa: F401
    AttemptHour,
    OperatorDay,
    OutcomeHour,
    ReportView,
    RollupMark,
    StateDay,
    StateHour,
    SuccessfulCode,
)
from dialer.models.user import (
    ApiToken,
    LoginFailure,
    Permission,
    Role,
    User,
    UserPermissionGrant,
    UserSession,
    role_permissions,
    user_roles,
)
from dialer.models.voip import SipDevice, SipRegistration, SipTrunk, SipTrunkState

__all__ = [
    "ApiToken",
    "Attempt",
    "AuditEntry",
    "Base",
    "Callback",
    "CallerId",
    "CallerIdGroup",
    "Campaign",
    "CampaignSchedule",
    "CompletionCode",
    "CompletionCodeGroup",
    "Contact",
    "ContactList",
    "ContactPhone",
    "DncEntry",
    "DncList",
    "EngineCommand",
    "EngineRun",
    "Field",
    "Holiday",
    "ImportJob",
    "ListField",
    "LoginFailure",
    "Operator",
    "OperatorPool",
    "OperatorSkill",
    "OperatorStateLog",
    "Permission",
    "PhoneCode",
    "Role",
    "Selection",
    "SipDevice",
    "SipRegistration",
    "SipTrunk",
    "SipTrunkState",
    "Skill",
    "Strategy",
    "StrategyOutcomeRetry",
    "StrategyResultRule",
    "TimeZone",
    "User",
    "UserPermissionGrant",
    "UserSession",
    "caller_id_group_members",
    "campaign_lists",
    "campaign_pools",
    "completion_code_group_members",
    "pool_operators",
    "role_permissions",
    "user_roles",
]
from dialer.models.transfer import CallTransfer  # noqa: F401  (issue #12 §2: transfers)
from dialer.reports.clickhouse.models import ClickhouseCopyStatus, ClickhouseOutbox  # noqa: F401  (#14 §4)

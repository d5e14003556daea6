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
from dialer.models.enums import *  # noqa: F403
from dialer.models.operator import Operator, OperatorPool, OperatorSkill, Skill, pool_operators
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

__all__ = [
    "ApiToken", "AuditEntry", "Base", "Callback", "CallerId", "CallerIdGroup", "Campaign", "CampaignSchedule",
    "CompletionCode", "CompletionCodeGroup", "Contact", "ContactList", "ContactPhone", "DncEntry", "DncList",
    "Field", "Holiday", "ImportJob", "ListField", "LoginFailure", "Operator", "OperatorPool", "OperatorSkill",
    "Permission", "PhoneCode", "Role", "Selection", "Skill", "Strategy", "StrategyOutcomeRetry",
    "StrategyResultRule", "TimeZone", "User", "UserPermissionGrant", "UserSession", "caller_id_group_members",
    "campaign_lists", "campaign_pools", "completion_code_group_members", "pool_operators", "role_permissions",
    "user_roles",
]

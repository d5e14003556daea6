"""SIP: digest algorithms per device, TLS and DNS lookups of trunks

``sip_devices.digest_algorithms``: the digest algorithms the registrar offers that phone, in RFC 8760's order of
preference (``SHA-256,MD5``, ``SHA-256`` or ``MD5``); null offers the driver's default (MD5). Some phones give up when
a challenge names an algorithm they lack (baresip 1.0 with SHA-256).

``sip_trunks.transport`` may be ``tls`` (SIP over TLS, RFC 3261 §26); ``tls_verify`` checks the carrier's
certificate and name; ``dns_lookup`` says how the trunk's host is resolved: ``a`` (address records, the port as
configured), ``srv`` (RFC 3263 SRV records of the transport) or ``naptr`` (NAPTR, then SRV, then address records).

Revision ID: 0012_sip
Revises: 0011
Create Date: 2026-12-07 22:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012_sip'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('sip_devices', sa.Column('digest_algorithms', sa.String(length=20), nullable=True))
    op.create_check_constraint(op.f('ck_sip_devices_digest_algorithms'), 'sip_devices',
                               "digest_algorithms IN ('SHA-256,MD5', 'SHA-256', 'MD5')")
    op.drop_constraint(op.f('ck_sip_trunks_transport'), 'sip_trunks', type_='check')
    op.create_check_constraint(op.f('ck_sip_trunks_transport'), 'sip_trunks', "transport IN ('udp', 'tcp', 'tls')")
    op.add_column('sip_trunks', sa.Column('tls_verify', sa.Boolean(), server_default='true', nullable=False))
    op.add_column('sip_trunks', sa.Column('dns_lookup', sa.String(length=8), server_default='a', nullable=False))
    op.create_check_constraint(op.f('ck_sip_trunks_dns_lookup'), 'sip_trunks', "dns_lookup IN ('a', 'srv', 'naptr')")


def downgrade() -> None:
    op.drop_constraint(op.f('ck_sip_trunks_dns_lookup'), 'sip_trunks', type_='check')
    op.drop_column('sip_trunks', 'dns_lookup')
    op.drop_column('sip_trunks', 'tls_verify')
    op.execute("UPDATE sip_trunks SET transport = 'tcp' WHERE transport = 'tls'")
    op.drop_constraint(op.f('ck_sip_trunks_transport'), 'sip_trunks', type_='check')
    op.create_check_constraint(op.f('ck_sip_trunks_transport'), 'sip_trunks', "transport IN ('udp', 'tcp')")
    op.drop_constraint(op.f('ck_sip_devices_digest_algorithms'), 'sip_devices', type_='check')
    op.drop_column('sip_devices', 'digest_algorithms')

"""``dialer demo``: the whole product on one machine with nothing configured.

An embedded PostgreSQL (in the data directory), a sample collection campaign of 10,000 contacts across Russia's
time zones (:mod:`dialer.tools.sample`), 10 simulated operators plus one operator login for a person, the engine
on simulated telephony in real time (25 % of calls answered by a person, as the issue's ``s20_p25``), and the API
served by the same process. The second start reuses everything (and prints the same credentials).

A person takes part as the operator ``operator1``: log in (``POST /api/auth/login``), go ready (``POST
/api/workplace/ready``), watch ``GET /api/workplace/state`` for the call and its card, hang up or wait for the
customer, set a code (``POST /api/workplace/complete``). A supervisor watches ``GET /api/monitoring/live``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dialer.auth.service import hash_password
from dialer.campaign import service as campaign_service
from dialer.campaign.status import Action
from dialer.config import Settings, get_settings
from dialer.contact.indexes import ensure_field_indexes
from dialer.core.clock import SystemClock
from dialer.db import make_engine, make_sessionmaker, resolve_url
from dialer.engine.assign import Assignment
from dialer.engine.journal import ENGINE_ACTOR
from dialer.engine.runner import EngineConfig
from dialer.migrate import prepare_database
from dialer.models import Campaign, Operator, Role, User, user_roles
from dialer.models.enums import CampaignKind, CampaignStatus, DialMode
from dialer.telephony.sim import SimTelephony
from dialer.telephony.traffic import LogNormal, Outcomes, Scenario, Uniform
from dialer.timezone.service import load_bundled
from dialer.tools.sample import FIELDS, Sample, create_sample, find_sample
from dialer.tools.serve import serve

__all__ = ["DEMO_CAMPAIGN", "DEMO_SCENARIO", "DemoSetup", "ensure_demo", "run_demo"]

DEMO_CAMPAIGN = "Демо: взыскание"
CREDENTIALS_FILE = "demo-credentials.json"

#: Traffic of the demo: a quarter of the calls answered by a person (the issue's s20_p25), shorter talks than the
#: benchmark's 150 s so that something happens on screen.
DEMO_SCENARIO = Scenario(
    name="demo", operators=11, hours=24, seed=1,
    outcomes=Outcomes(human=0.25, machine=0.10, busy=0.10, failed=0.03, rejected=0.02),
    answer_after_s=Uniform(4.0, 15.0), no_answer_timeout_s=26.0, machine_detect_s=3.0,
    talk_time_s=LogNormal(75.0, 0.6), wrap_up_s=Uniform(8.0, 20.0), abandon_after_s=2.0)


@dataclasses.dataclass
class DemoSetup:
    sample: Sample
    human_operator_id: int
    credentials: dict[str, str]
    created: bool

    @property
    def simulated_operator_ids(self) -> list[int]:
        return [i for i in self.sample.operator_ids if i != self.human_operator_id]


async def _user(maker: async_sessionmaker[AsyncSession], login: str, role: str, full_name: str,
                known: dict[str, str]) -> tuple[int, str | None]:
    """The user ``login`` (created with a fresh password if missing); returns its id and the password if known."""
    async with maker() as session, session.begin():
        session.info["actor"] = ENGINE_ACTOR
        user = (await session.scalars(select(User).where(User.login == login))).one_or_none()
        if user is not None:
            return user.id, known.get(login)
        password = secrets.token_urlsafe(9)
        user = User(login=login, full_name=full_name, password_hash=hash_password(password))
        session.add(user)
        await session.flush()
        role_id = (await session.scalars(select(Role.id).where(Role.code == role))).one()
        await session.execute(insert(user_roles).values(user_id=user.id, role_id=role_id))
        return user.id, password


def _read_credentials(path: Path) -> dict[str, str]:
    return dict(json.loads(path.read_text())) if path.exists() else {}


def _write_credentials(path: Path, known: dict[str, str]) -> None:
    """The passwords the demo made, readable by the owner only (printed again at the next start)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(known, ensure_ascii=False, indent=1))
    path.chmod(0o600)


async def ensure_demo(maker: async_sessionmaker[AsyncSession], db: AsyncEngine, data_dir: Path, *,
                      contacts: int = 10_000, operators: int = 10, seed: int = 1) -> DemoSetup:
    """Create the demo's data, or find it; idempotent. Credentials are kept in ``data_dir/demo-credentials.json``."""
    path = data_dir / CREDENTIALS_FILE
    known = await asyncio.to_thread(_read_credentials, path)
    credentials: dict[str, str] = {}
    for login, role, name in (("admin", "admin", "Администратор"), ("supervisor1", "supervisor", "Старший смены"),
                              ("operator1", "operator", "Оператор")):
        _, password = await _user(maker, login, role, name, known)
        credentials[login] = password or "(задан до демо, не изменён)"
        if password is not None:
            known[login] = password
    await asyncio.to_thread(_write_credentials, path, known)
    operator_user = await _user(maker, "operator1", "operator", "Оператор", known)
    created = False
    sample = await find_sample(maker, DEMO_CAMPAIGN)
    if sample is None:
        suffix = ""
        for suffix in ("", " (демо)"):
            try:
                sample = await create_sample(maker, name=DEMO_CAMPAIGN, contacts=contacts, operators=operators,
                                             suffix=suffix, mode=DialMode.predictive, kind=CampaignKind.finite,
                                             human_user_id=operator_user[0], wrap_up_s=60, seed=seed)
                break
            except IntegrityError:  # the installation already has a field or code of that name
                continue
        if sample is None:
            raise RuntimeError("could not create the demo campaign: its names are taken")
        for label, ftype in FIELDS:
            await ensure_field_indexes(db, sample.field_ids[label], ftype)
        created = True
    async with maker() as session, session.begin():
        session.info["actor"] = ENGINE_ACTOR
        human = (await session.scalars(select(Operator.id).where(Operator.user_id == operator_user[0]))).one()
        campaign = await session.get(Campaign, sample.campaign_id)
        if campaign is not None and campaign.status in (CampaignStatus.stopped, CampaignStatus.paused,
                                                        CampaignStatus.draft):
            action = Action.resume if campaign.status is CampaignStatus.paused else Action.start
            await campaign_service.change_status(session, campaign.id, action, "запуск демо")
    return DemoSetup(sample, human, credentials, created)


def _banner(setup: DemoSetup, host: str, port: int, contacts: int, path: Path) -> str:
    base = f"http://{host}:{port}"
    c = setup.credentials
    return "\n".join([
        "",
        f"Демо Dialer запущено: откройте {base}/ в браузере (API: {base}/docs)",
        f"  кампания «{DEMO_CAMPAIGN}»: {_grouped(contacts)} контактов в 12 городах, предиктивный набор, "
        f"симулированных операторов: {len(setup.simulated_operator_ids)}, симулированная телефония в реальном "
        "времени (25 % звонков отвечает человек)" + ("" if setup.created else " — данные прошлого запуска"),
        f"  оператор       operator1 / {c['operator1']}    {base}/operator — вы «Оператор (вы)»: нажмите «Готов» "
        "(F2), принимайте звонки, ставьте результат",
        f"  супервайзер    supervisor1 / {c['supervisor1']}    {base}/supervisor — зал в реальном времени",
        f"  администратор  admin / {c['admin']}    {base}/admin — листы, кампании, стратегии, пользователи …",
        f"Пароли сохранены в {path}.",
        "Ctrl+C останавливает демо (идущие звонки сначала завершаются). Встроенный PostgreSQL после этого продолжает "
        "работать, чтобы следующий запуск был быстрым; остановить его: .venv/bin/dialer db stop",
        "",
    ])


def _grouped(n: int) -> str:
    """10000 -> "10 000": thousands separated by a no-break space, as Russian texts write them."""
    return f"{n:,}".replace(",", "\u00a0")


async def run_demo(settings: Settings | None = None, *, host: str | None = None, port: int | None = None,
                   contacts: int = 10_000, operators: int = 10, seed: int = 1, database_url: str | None = None,
                   stop: asyncio.Event | None = None, say: Callable[[str], Any] = print,
                   config: EngineConfig | None = None, log_level: str = "warning") -> None:
    """Set up (or reuse) the demo and run API + engine until Ctrl+C (or ``stop``); what ``dialer demo`` calls."""
    settings = settings or get_settings()
    url = database_url if database_url else await asyncio.to_thread(resolve_url, settings)
    await prepare_database(url, settings)
    db = make_engine(url, pool_size=2)
    try:
        # zones from the first start: the bundled Rossvyaz snapshot while the phone-code table is empty
        await load_bundled(make_sessionmaker(db), only_if_empty=True)
        setup = await ensure_demo(make_sessionmaker(db), db, settings.data_dir, contacts=contacts,
                                  operators=operators, seed=seed)
    finally:
        await db.dispose()
    host, port = host or settings.host, port or settings.port
    say(_banner(setup, host, port, contacts, settings.data_dir / CREDENTIALS_FILE))
    clock = SystemClock()
    sim = SimTelephony(clock, DEMO_SCENARIO, seed=seed)
    await serve(settings, host=host, port=port, database_url=url, telephony=sim, clock=clock,
                watch_embedded=not database_url and not settings.database_url,
                # fewest calls first: the person at the keyboard gets his share of calls from the start
                config=config or EngineConfig(seed=seed, assignment=Assignment.fewest_calls),
                sim_operators=setup.simulated_operator_ids,
                human_operators=[setup.human_operator_id], sim_wrap_up_s=Uniform(8.0, 20.0), prepare=False,
                stop=stop, log_level=log_level)

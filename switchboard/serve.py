"""``switchboard serve``: one process, one event loop, every part of the call center.

Starts, on embedded defaults: the call store (SQLite; calls a previous process left live
are marked interrupted), the models (loaded once, shared by every call), the call center,
the SIP endpoint (UDP and TCP), the WebRTC and media-stream gateways, the agents' desk
(browser agents beside SIP phones) and the HTTP server (health, JSON API, /metrics, the
caller and agent pages). Ctrl-C or SIGTERM ends every live call cleanly (BYE) and keeps
its record.

On a fresh database (no users yet) it creates a demo agent and a demo supervisor, each
with a random password printed once in the banner, as Jupyter prints its token: there is
no default password. Long digit strings (cards, accounts) are masked in every log record
while it runs (pipeline/redact.py, ``[privacy] redact_logs``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from switchboard.browser_agents import AgentDesk, AgentLines
from switchboard.callcenter import CallCenter
from switchboard.coach_ui.app import make_app
from switchboard.config import Settings
from switchboard.media_stream_gateway import MediaStreamGateway
from switchboard.pipeline.budgets import Metrics
from switchboard.pipeline.redact import install_log_filter
from switchboard.pipeline.store import CallStore
from switchboard.sip_gateway import SipGateway
from switchboard.users import UserStore
from switchboard.webrtc_gateway import WebRtcGateway

log = logging.getLogger(__name__)


@dataclass
class Running:
    """What a started server is made of (for tests and the banner)."""

    center: CallCenter
    store: CallStore
    users: UserStore
    token: str
    http_url: str
    sip_uri: str
    sip: SipGateway
    runner: web.AppRunner
    metrics: Metrics
    media_streams: MediaStreamGateway | None = None
    webrtc: WebRtcGateway | None = None
    #: The agents' page, once the server serves one.
    agent_page: str = ""
    desk: AgentDesk | None = None
    #: Users this start created on an empty database: name → (role, password), shown once.
    demo_users: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: Takes the log redaction filter off again (at stop).
    unfilter_logs: Callable[[], None] | None = None

    @property
    def media_stream_url(self) -> str:
        """Where a carrier's media stream connects (ws://; wss:// behind a TLS proxy)."""
        return self.http_url.replace("http", "ws", 1) + "/media-stream"


async def start(settings: Settings, bundle) -> Running:
    """Start every part; :func:`stop` ends them."""
    unfilter = (install_log_filter(settings.privacy.min_digits)
                if settings.privacy.redact_logs else None)
    store = CallStore.from_options(settings.store, settings.privacy)
    interrupted = store.recover()
    if interrupted:
        log.warning("%d call(s) left live by a previous process marked interrupted",
                    interrupted)
    users = UserStore(settings.store.url, realm=settings.sip.realm)
    demo = await asyncio.to_thread(demo_users, users)
    metrics = Metrics()
    center = CallCenter(settings, bundle, store=store, metrics=metrics)
    await center.prewarm()
    token = settings.server.api_token or secrets.token_urlsafe(24)
    desk = AgentDesk()
    app = make_app(center, store, token, metrics.registry, users=users, desk=desk)
    media_streams = MediaStreamGateway(center)
    media_streams.install(app)
    webrtc = WebRtcGateway(center)
    webrtc.install(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.server.http_host, settings.server.http_port)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else settings.server.http_port
    http_url = f"http://{settings.server.http_host}:{port}"
    sip = SipGateway(settings, center, users, api_url=http_url)
    # Agents are rung where they are: the agent page when it is open, else their phone.
    center.agents.line = AgentLines(desk, center.agents.line)
    phone_reachable = center.agents.reachable
    center.agents.reachable = lambda agent: desk.present(agent) or phone_reachable(agent)
    await sip.start()
    return Running(center, store, users, token, http_url, sip.uri, sip, runner, metrics,
                   media_streams, webrtc, agent_page="/agent", desk=desk, demo_users=demo,
                   unfilter_logs=unfilter)


#: The users a fresh database gets, so a first run can be tried at once.
DEMO_USERS = (("demo-agent", "agent"), ("demo-supervisor", "supervisor"))


def demo_users(users: UserStore) -> dict[str, tuple[str, str]]:
    """On a database without users, a demo agent and supervisor with random passwords
    (name → (role, password)); nothing when any user exists."""
    if users.list():
        return {}
    return {name: (role, users.add(name, role)) for name, role in DEMO_USERS}


async def stop(running: Running) -> None:
    """End live calls (BYE), then the SIP endpoint, the HTTP server and the store."""
    await running.center.shutdown()
    if running.webrtc is not None:
        await running.webrtc.stop()
    await running.sip.stop()
    await running.runner.cleanup()
    running.store.close()
    running.users.close()
    if running.unfilter_logs is not None:
        running.unfilter_logs()


async def serve(settings: Settings, bundle,
                on_ready: Callable[[Running], None] | None = None) -> int:
    """Run until SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    running = await start(settings, bundle)
    if on_ready:
        on_ready(running)
    try:
        await stopping.wait()
    finally:
        await stop(running)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0




def banner(running: Running) -> str:
    """What a person needs to start: where to go, where to call, how to read the API."""
    # A browser treats only localhost as a secure context (microphone allowed) and cannot
    # open 0.0.0.0: pages are offered on 127.0.0.1 when the server listens everywhere.
    pages = running.http_url.replace("://0.0.0.0:", "://127.0.0.1:")
    lines = [
        "Switchboard is running.",
        f"  Call the bot from your browser:  {pages}/call",
    ]
    if running.agent_page:
        lines.append(f"  Agents take handed-off calls:    {pages}{running.agent_page}"
                     "  (switchboard users add NAME --role agent)")
        code = running.center.settings.supervision.feature_code
        lines.append(f"  Supervisors watch live calls:    {pages}/board"
                     f"  (from a SIP phone: dial {code}<call number>)")
    for name, (role, password) in running.demo_users.items():
        lines.append(f"  Demo {role:10}  log in as {name}, password {password}  (shown once)")
    lines += [
        f"  Dial from a SIP phone:           {running.sip_uri} (UDP or TCP)",
        f"  Twilio Media Streams:            {running.media_stream_url}",
        f"  HTTP      {running.http_url}  (health: /health, metrics: /metrics)",
        f"  API token {running.token}",
        f"            curl -H 'Authorization: Bearer {running.token}' "
        f"{running.http_url}/api/calls",
        "Ctrl-C ends every call cleanly and stops.",
    ]
    return "\n".join(lines)

"""Host health over real sockets on 127.0.0.1: hosts that never answer, refuse,
do not resolve or rate-limit, and what a run does about each (mirror.net.hosts)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_fetch import JPEG, Answers, Run, image, wayback_toml

from faultserver import FaultServer, SilentHost, UnreachableHost, refusing_base
from mirror.models import HostEvent
from mirror.net.hosts import PROBE_AFTER, HostDown, Hosts


@pytest.fixture
def server() -> FaultServer:
    with FaultServer() as running:
        yield running  # type: ignore[misc]


def test_a_host_that_never_answers_is_given_up_after_the_threshold(tmp_path: Path) -> None:
    with SilentHost() as silent:
        run = Run(tmp_path, "per_host = 2\nretries = 4\nstall_timeout = 0.3\ntimeout = 30\n")
        outcomes = run.fetch(*(f"{silent.base}/{n}.jpg" for n in range(10)))
    # Without the host's health: 10 URLs x 5 attempts. With it: the first round
    # of attempts (two at once) until three in a row have timed out.
    assert silent.connections <= 3 + 2 - 1
    assert {o.status for o in outcomes} == {"failed"}
    assert all(o.error == "host down (3 timeouts in a row)" for o in outcomes[2:])
    waited = "timed out waiting for an answer (no byte for 0.3 s, download.stall_timeout)"
    assert all(o.error in (f"{waited} (after 2 attempts)", "host down (3 timeouts in a row)")
               for o in outcomes[:2]), outcomes[:2]  # fmt: skip
    assert run.host_events == [
        HostEvent(f"127.0.0.1:{silent.port}", "down", "host down (3 timeouts in a row)")
    ]


def test_a_down_host_s_urls_go_straight_to_the_next_origin_and_the_wayback(
    tmp_path: Path, server: FaultServer
) -> None:
    good = [server.file(f"/img/{n}.jpg", image(colour=(20 * n, 0, 0))) for n in range(4)]
    archived = "http://old.example/a.jpg"
    server.file(f"/web/2id_/{archived}", JPEG)
    with SilentHost() as silent:
        toml = (
            "retries = 4\nstall_timeout = 0.3\ntimeout = 30\n" + wayback_toml(server)
            + f'[download.origins]\n"img.example" = ["{silent.base}", "{server.base}"]\n'
            f'"old.example" = ["{silent.base}"]\n'
        )  # fmt: skip
        run = Run(tmp_path, toml)
        outcomes = run.fetch(
            *(u.replace(server.base, "http://img.example") for u in good), archived
        )
    assert [o.status for o in outcomes] == ["mirrored"] * 5
    assert [o.source for o in outcomes] == ["alternative"] * 4 + ["wayback"]
    assert silent.connections <= 3 + 4 - 1


def test_one_answer_resets_the_count(tmp_path: Path, server: FaultServer) -> None:
    """per_host = 1: the URLs go in order; two timeouts, an answer, two timeouts
    never make three in a row. Then three in a row do."""
    run = Run(tmp_path, "per_host = 1\nretries = 0\nstall_timeout = 0.3\ntimeout = 30\n")
    slow = [server.stall(f"/slow/{n}.jpg", 30) for n in range(7)]
    good = [server.file(f"/good/{n}.jpg", JPEG) for n in range(3)]
    first = run.fetch(slow[0], slow[1], good[0], slow[2], slow[3], good[1])
    assert [o.status for o in first] == ["failed", "failed", "mirrored"] * 2
    assert run.host_events == []
    second = run.fetch(slow[4], slow[5], slow[6], good[2])
    assert second[3].error == "host down (3 timeouts in a row)" and second[3].attempts == 0
    assert server.hits["/good/2.jpg"] == 0


def test_refused_connections_skip_the_retries_once_the_host_is_down(tmp_path: Path) -> None:
    base = refusing_base()
    run = Run(tmp_path, "per_host = 1\nretries = 4\n")
    outcomes = run.fetch(*(f"{base}/{n}.jpg" for n in range(6)))
    # The first URL's three refused attempts make the host down; nothing more is tried.
    assert [o.attempts for o in outcomes] == [3, 0, 0, 0, 0, 0]
    assert {o.error for o in outcomes} == {"host down (3 refused connections in a row)"}


def test_a_host_that_no_longer_resolves_is_asked_for_three_times_only(
    tmp_path: Path, server: FaultServer
) -> None:
    urls = [f"http://gone.example/{n}.jpg" for n in range(5)]
    for url in urls:
        server.file(f"/web/2id_/{url}", JPEG)
    dns = Answers({})
    run = Run(tmp_path, "per_host = 1\nretries = 4\n" + wayback_toml(server), resolver=dns)
    outcomes = run.fetch(*urls)
    assert dns.asked == ["gone.example"] * 3
    assert [(o.status, o.source) for o in outcomes] == [("mirrored", "wayback")] * 5


def test_the_connect_timeout_is_not_the_response_timeout(tmp_path: Path) -> None:
    with UnreachableHost() as unreachable:
        run = Run(tmp_path, "retries = 0\nconnect_timeout = 0.3\ntimeout = 60\n")
        outcome = run.one(f"{unreachable.base}/a.jpg")
    assert outcome.error == (
        "timed out connecting (0.3 s, download.connect_timeout) (after 1 attempt)"
    )


def test_a_stall_mid_body_fails_the_attempt(tmp_path: Path, server: FaultServer) -> None:
    run = Run(tmp_path, "retries = 0\nstall_timeout = 0.3\ntimeout = 60\n")
    outcome = run.one(server.stall("/held.jpg", 30, JPEG, before_headers=False))
    assert outcome.error == (
        "stalled mid-body (no byte for 0.3 s, download.stall_timeout) (after 1 attempt)"
    )


def test_a_429_storm_lowers_the_host_s_concurrency(tmp_path: Path, server: FaultServer) -> None:
    """The server answers two requests at a time and 429 to any more. Eight at
    once (per_host) is cut to fewer, every image comes, and late in the run the
    requests arriving find at most a few others in flight."""
    server.limit(2)
    urls = [server.stall(f"/r/{n}.jpg", 0.05, image(colour=(9 * n, 0, 0))) for n in range(24)]
    run = Run(tmp_path, "per_host = 8\nconcurrency = 16\nretries = 6\n")
    outcomes = run.fetch(*urls)
    assert [o.status for o in outcomes] == ["mirrored"] * 24
    late = server.in_flight[len(server.in_flight) // 2 :]
    assert max(late) <= 3, server.in_flight
    assert server.limited < 24, server.limited
    assert run.host_events[0] == HostEvent(
        f"127.0.0.1:{server.port}", "throttled", "rate-limited, 4 requests at a time"
    )


def test_a_host_answering_only_429_is_given_up_with_a_clear_reason(
    tmp_path: Path, server: FaultServer
) -> None:
    server.limit(0, retry_after="30")
    urls = [server.file(f"/n/{n}.jpg", JPEG) for n in range(8)]
    run = Run(tmp_path, "per_host = 2\nretries = 2\nretry_after_max = 30\n")
    outcomes = run.fetch(*urls)
    assert {o.status for o in outcomes} == {"failed"}
    reason = "only 429/503 for"
    assert any(reason in (o.error or "") for o in outcomes)
    assert server.limited < 8 * 3  # later URLs were not each asked three times


# --- the host's state alone (no sockets) -----------------------------------------


def test_a_down_host_lets_one_probe_through_after_a_pause() -> None:
    now = [0.0]
    events: list[HostEvent] = []

    async def no_wait(seconds: float) -> None:
        pass

    async def go() -> None:
        hosts = Hosts(
            per_host=4, down_after=3, retry_after_max=60, retries=4,
            on_event=events.append, clock=lambda: now[0], sleep=no_wait,
        )  # fmt: skip
        host = hosts["img.example"]
        for _ in range(3):
            async with host.slot():
                host.unreachable("timeout")
        with pytest.raises(HostDown, match=r"host down \(3 timeouts in a row\)"):
            async with host.slot():
                pass
        now[0] += PROBE_AFTER
        async with host.slot() as started:
            with pytest.raises(HostDown):  # one probe at a time
                async with host.slot():
                    pass
            host.answered(started, throttled=False, retry_after=None)
        async with host.slot():  # up again
            pass

    asyncio.run(go())
    assert [e.kind for e in events] == ["down", "up"]


def test_an_attempt_that_waited_into_the_probe_leaves_the_next_probe_possible() -> None:
    # Review finding: an attempt admitted while the host was up, that waits for
    # its slot until the host has been down longer than the pause, becomes the
    # probe; its probing flag must be reset, or the host is never asked again.
    now = [0.0]

    async def go() -> None:
        hosts = Hosts(per_host=1, down_after=1, retry_after_max=10, retries=2, clock=lambda: now[0])
        host = hosts["img.example"]
        first_in, release = asyncio.Event(), asyncio.Event()

        async def first() -> None:
            async with host.slot():
                first_in.set()
                await asyncio.sleep(0)
                host.unreachable("refused")  # down while the second waits its turn
                await release.wait()

        async def second() -> None:
            await first_in.wait()
            async with host.slot():  # admitted while up; the probe once its turn comes
                host.unreachable("refused")

        tasks = [asyncio.ensure_future(first()), asyncio.ensure_future(second())]
        await asyncio.sleep(0.01)
        now[0] = PROBE_AFTER + 1
        release.set()
        await asyncio.gather(*tasks)
        now[0] = 3 * PROBE_AFTER  # a pause later: one more probe is let through
        async with host.slot():
            pass

    asyncio.run(go())


def test_retry_after_holds_every_request_to_the_host_up_to_the_cap() -> None:
    waits: list[float] = []
    now = [0.0]

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    async def go() -> None:
        hosts = Hosts(per_host=4, down_after=3, retry_after_max=60, retries=4,
                      clock=lambda: now[0], sleep=sleep)  # fmt: skip
        host = hosts["img.example"]
        async with host.slot() as started:
            host.answered(started, throttled=True, retry_after=5)
        async with host.slot(), hosts["other.example"].slot():  # another URL, another host
            pass
        async with host.slot() as started:
            host.answered(started, throttled=True, retry_after=3600)
        async with host.slot():
            pass

    asyncio.run(go())
    assert waits == [5.0, 60.0]  # not the other host; Retry-After capped by retry_after_max

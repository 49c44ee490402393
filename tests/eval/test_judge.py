"""The judge client against a real HTTP server on loopback that injects faults."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sftmix.errors import ConfigError, SftmixError
from sftmix.eval.tasks.judge import ChatRequest, JudgeClient, JudgeConfig
from tests.eval.fake_openai import (
    FakeOpenAI,
    Fault,
    malformed,
    no_choices,
    rate_limited,
    server_error,
    slow,
)


class Sleeps(list):
    """Records the waits the client asks for, without waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def config(server: FakeOpenAI, tmp_path: Path | None = None, **kw) -> JudgeConfig:
    defaults = {"base_url": server.url, "model": "judge-x", "api_key": "sk-test",
                "cache_path": tmp_path / "judge.sqlite" if tmp_path else None,
                "max_retries": 4, "backoff_base_s": 0.05, "timeout_s": 5.0}
    return JudgeConfig(**{**defaults, **kw})


def ask(text: str, repetition: int = 0) -> ChatRequest:
    return ChatRequest((("system", "You grade."), ("user", text)), repetition)


def test_reply_and_request_format() -> None:
    with FakeOpenAI(lambda req: f"echo {req['messages'][-1]['content']}", api_key="sk-test") as srv, \
            JudgeClient(config(srv), progress=False) as client:
        replies = client.complete_many([ask("one"), ask("two")])
    assert [r.content for r in replies] == ["echo one", "echo two"]
    assert all(r.attempts == 1 and not r.cached for r in replies)
    req = srv.requests[0]
    assert req["model"] == "judge-x" and req["temperature"] == 0.0
    assert req["messages"][0] == {"role": "system", "content": "You grade."}


def test_bad_key_stops_with_a_message_naming_the_setting() -> None:
    with FakeOpenAI(api_key="right") as srv, \
            JudgeClient(config(srv, api_key="wrong"), progress=False) as client, \
            pytest.raises(SftmixError, match=r"HTTP 401.*SFTMIX_JUDGE_API_KEY"):
        client.complete(ask("x"))


def test_429_waits_at_least_retry_after() -> None:
    sleeps = Sleeps()
    with FakeOpenAI() as srv, JudgeClient(config(srv), sleep=sleeps, progress=False) as client:
        srv.inject(rate_limited("3"), rate_limited("1"))
        reply = client.complete(ask("x"))
    assert reply.content is not None and reply.attempts == 3
    assert sleeps[0] >= 3 and sleeps[1] >= 1
    assert len(srv.requests) == 3


@pytest.mark.parametrize("fault", [server_error(500), server_error(503), malformed(), no_choices()],
                         ids=["500", "503", "malformed", "no-choices"])
def test_transient_faults_are_retried(fault: Fault) -> None:
    sleeps = Sleeps()
    with FakeOpenAI() as srv, JudgeClient(config(srv), sleep=sleeps, progress=False) as client:
        srv.inject(fault, fault)
        reply = client.complete(ask("x"))
    assert reply.content == "The answer is adequate. Rating: [[5]]"
    assert reply.attempts == 3 and len(sleeps) == 2


def test_backoff_grows_exponentially_within_bounds() -> None:
    sleeps = Sleeps()
    with FakeOpenAI() as srv, JudgeClient(config(srv, max_retries=5, backoff_base_s=1.0,
                                                 backoff_max_s=4.0),
                                          sleep=sleeps, seed=1, progress=False) as client:
        srv.inject(*[server_error()] * 6)
        reply = client.complete(ask("x"))
    assert reply.content is None and "HTTP 500" in reply.error and reply.attempts == 6
    caps = [1, 2, 4, 4, 4]
    assert len(sleeps) == 5 and all(0 <= s <= cap for s, cap in zip(sleeps, caps, strict=True))


def test_slow_reply_times_out_and_is_retried() -> None:
    with FakeOpenAI() as srv, JudgeClient(config(srv, timeout_s=0.3), sleep=Sleeps(),
                                          progress=False) as client:
        srv.inject(slow(1.5))
        reply = client.complete(ask("x"))
    assert reply.content is not None and reply.attempts == 2


def test_client_error_is_not_retried() -> None:
    sleeps = Sleeps()
    with FakeOpenAI() as srv, JudgeClient(config(srv), sleep=sleeps, progress=False) as client:
        srv.inject(server_error(400))
        reply = client.complete(ask("x"))
    assert reply.content is None and "HTTP 400" in reply.error
    assert reply.attempts == 1 and sleeps == []


def test_cache_means_a_rerun_asks_nothing(tmp_path: Path) -> None:
    requests = [ask("a"), ask("a", repetition=1), ask("b")]
    with FakeOpenAI(lambda req: f"r{len(srv.requests)}") as srv:
        with JudgeClient(config(srv, tmp_path), progress=False) as client:
            first = client.complete_many(requests)
        assert len(srv.requests) == 3  # repetitions are distinct requests
        with JudgeClient(config(srv, tmp_path), progress=False) as client:
            second = client.complete_many([*requests, ask("c")])
        assert len(srv.requests) == 4 and client.cache_hits == 3
    assert [r.content for r in second[:3]] == [r.content for r in first]
    assert all(r.cached for r in second[:3]) and not second[3].cached


def test_failed_replies_are_not_cached(tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        srv.inject(*[server_error()] * 2)
        with JudgeClient(config(srv, tmp_path, max_retries=1), sleep=Sleeps(),
                         progress=False) as client:
            assert client.complete_many([ask("a")])[0].content is None
        with JudgeClient(config(srv, tmp_path), progress=False) as client:
            assert client.complete_many([ask("a")])[0].content is not None


def test_concurrency_is_bounded() -> None:
    lock, state = threading.Lock(), {"now": 0, "max": 0}

    def responder(req: dict) -> str:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.15)
        with lock:
            state["now"] -= 1
        return "[[7]]"

    with FakeOpenAI(responder) as srv, JudgeClient(config(srv, concurrency=3),
                                                   progress=False) as client:
        replies = client.complete_many([ask(str(i)) for i in range(12)])
    assert [r.content for r in replies] == ["[[7]]"] * 12
    assert 2 <= state["max"] <= 3


def test_config_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SFTMIX_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("SFTMIX_JUDGE_MODEL", "m-env")
    monkeypatch.delenv("SFTMIX_JUDGE_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    cfg = JudgeConfig.from_env(cache_path=tmp_path / "c.sqlite", concurrency=2)
    assert (cfg.base_url, cfg.model, cfg.api_key, cfg.concurrency) == (
        "http://127.0.0.1:9/v1", "m-env", "sk-env", 2)
    assert "sk-env" not in repr(cfg)
    monkeypatch.setenv("SFTMIX_JUDGE_API_KEY", "sk-first")
    assert JudgeConfig.from_env().api_key == "sk-first"
    with pytest.raises(ConfigError, match=r"unknown judge option.*'modle'.*accepted"):
        JudgeConfig.from_env(modle="x")


def test_an_unreachable_judge_is_given_up_after_one_round_of_retries() -> None:
    closed = FakeOpenAI()  # a loopback port nobody listens on once the server is closed
    closed._server.server_close()
    sleeps = Sleeps()
    cfg = JudgeConfig(base_url=closed.url, api_key="k", cache_path=None, max_retries=2,
                      backoff_base_s=0.01, concurrency=1)
    with JudgeClient(cfg, sleep=sleeps, seed=0) as client:
        replies = client.complete_many([ask(f"q{i}") for i in range(5)])
    assert all(r.content is None for r in replies)
    assert "connection error" in replies[0].error and replies[0].attempts == 3
    assert all(r.error.startswith("not sent: the judge did not answer any request") for r in replies[1:])
    assert client.sent == 3 and len(sleeps) == 2

"""A client for any OpenAI-compatible chat-completions endpoint, used as a judge.

Judging a study means thousands of requests to a service that rate-limits, times
out and occasionally answers garbage, so the client:

* runs a bounded number of requests at once (a thread pool over one
  ``httpx.Client``; the calls are I/O-bound);
* retries timeouts, connection errors, 429, 5xx and malformed bodies with
  exponential backoff and full jitter, waiting at least what ``Retry-After`` asks;
* keeps every successful answer in a SQLite cache keyed by a hash of the request
  (model, messages, sampling settings and a repetition number), so a rerun --
  after a crash, or with more models -- never pays twice for the same judgement.

A request that still fails after its retries comes back with ``content=None`` and
the error; the caller records the judgement as missing. When one runs out of
retries on connection errors before any request was answered, the endpoint is
taken as unreachable and the requests not yet started are not sent (a run
without network stops after one round of retries, not one per request). Errors that no retry can
fix (401/403: bad key; 404: wrong URL or model) stop the run with a message that
says which setting to change.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tqdm.auto import tqdm

from sftmix.errors import ConfigError, SftmixError
from sftmix.hashing import config_hash

log = logging.getLogger(__name__)

ENV_BASE_URL = "SFTMIX_JUDGE_BASE_URL"
ENV_MODEL = "SFTMIX_JUDGE_MODEL"
ENV_API_KEYS = ("SFTMIX_JUDGE_API_KEY", "OPENAI_API_KEY")
ENV_CACHE = "SFTMIX_JUDGE_CACHE"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_CACHE = Path("~/.cache/sftmix/judge.sqlite")
FATAL_STATUS = {401: "the API key was refused", 403: "the API key is not allowed to do this",
                404: "no such endpoint or model"}


@dataclass(frozen=True)
class JudgeConfig:
    """Where the judge lives and how patiently to ask it."""

    base_url: str = DEFAULT_BASE_URL
    model: str = "gpt-4"
    api_key: str | None = field(default=None, repr=False)
    temperature: float = 0.0
    max_tokens: int = 2048
    timeout_s: float = 120.0
    concurrency: int = 8
    max_retries: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    cache_path: Path | None = DEFAULT_CACHE  # None: no cache

    @classmethod
    def from_env(cls, **overrides: Any) -> JudgeConfig:
        """Defaults, then ``SFTMIX_JUDGE_*`` / ``OPENAI_API_KEY``, then ``overrides``."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown judge option(s) {', '.join(map(repr, unknown))}; "
                              f"accepted: {', '.join(sorted(known))}")
        from sftmix.settings import current

        env = current()
        found = {"base_url": env.judge_base_url, "model": env.judge_model, "cache_path": env.judge_cache,
                 "api_key": env.judge_api_key}
        values: dict[str, Any] = {k: v for k, v in found.items() if v is not None}
        values.update({k: v for k, v in overrides.items() if v is not None or k == "cache_path"})
        if values.get("cache_path") is not None:
            values["cache_path"] = Path(values["cache_path"]).expanduser()
        config = cls(**values)
        if config.concurrency < 1 or config.max_retries < 0:
            raise ConfigError(f"judge options: concurrency ({config.concurrency}) must be >= 1 and "
                              f"max_retries ({config.max_retries}) >= 0")
        return config


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[tuple[str, str], ...]  # (role, content)
    # Distinguishes the N repetitions of one judgement: each is asked (and cached) apart.
    repetition: int = 0

    def payload(self, config: JudgeConfig) -> dict[str, Any]:
        return {"model": config.model, "temperature": config.temperature,
                "max_tokens": config.max_tokens,
                "messages": [{"role": r, "content": c} for r, c in self.messages]}

    def key(self, config: JudgeConfig) -> str:
        return config_hash({"request": self.payload(config), "repetition": self.repetition}, 32)


@dataclass(frozen=True)
class ChatReply:
    content: str | None  # None: no usable answer after every retry
    error: str = ""
    cached: bool = False
    attempts: int = 0


class ReplyCache:
    """Answers already obtained, keyed by request hash, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, "
                         "request TEXT NOT NULL, content TEXT NOT NULL, created REAL NOT NULL)")
        self._db.commit()

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT content FROM replies WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, request: dict[str, Any], content: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?)",
                             (key, json.dumps(request, sort_keys=True), content, time.time()))
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Retry(Exception):
    def __init__(self, reason: str, wait_at_least: float = 0.0, final: bool = False) -> None:
        super().__init__(reason)
        self.wait_at_least = wait_at_least
        self.final = final  # asking again cannot help (e.g. HTTP 400: the request is refused)


def _retry_after(value: str | None) -> float:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value.strip() else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else 0.0


class JudgeClient:
    """Chat completions with concurrency, retries and a persistent cache."""

    def __init__(self, config: JudgeConfig, *, sleep: Callable[[float], None] = time.sleep,
                 seed: int | None = None, progress: bool = True) -> None:
        self.config = config
        self._sleep = sleep
        self._rng = random.Random(seed)
        self.progress = progress
        self.cache = ReplyCache(config.cache_path) if config.cache_path else None
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = httpx.Client(base_url=config.base_url.rstrip("/"), headers=headers,
                                  timeout=config.timeout_s,
                                  limits=httpx.Limits(max_connections=config.concurrency))
        self.sent = 0  # HTTP requests made (retries included)
        self.cache_hits = 0
        self._count_lock = threading.Lock()
        self._answered = 0
        # Set when a request ran out of retries on connection errors before any answer came:
        # the endpoint is unreachable, and the requests not yet started are not sent.
        self._unreachable: str | None = None

    def __enter__(self) -> JudgeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
        if self.cache:
            self.cache.close()

    def complete_many(self, requests: Sequence[ChatRequest]) -> list[ChatReply]:
        """Replies in the order of ``requests``; cached ones are not sent again."""
        replies: list[ChatReply | None] = [None] * len(requests)
        todo = []
        for i, req in enumerate(requests):
            hit = self.cache.get(req.key(self.config)) if self.cache else None
            if hit is not None:
                replies[i] = ChatReply(hit, cached=True)
                self.cache_hits += 1
            else:
                todo.append(i)
        log.info("judge %s: %d request(s), %d from cache", self.config.model, len(requests),
                 len(requests) - len(todo))
        if todo:
            with ThreadPoolExecutor(self.config.concurrency) as pool, \
                    tqdm(total=len(todo), desc="judge", disable=not self.progress, leave=False) as bar:
                for i, reply in zip(todo, pool.map(lambda j: self.complete(requests[j]), todo),
                                    strict=True):
                    replies[i] = reply
                    bar.update(1)
        return [r if r is not None else ChatReply(None, "not asked") for r in replies]

    def complete(self, request: ChatRequest) -> ChatReply:
        key = request.key(self.config)
        payload = request.payload(self.config)
        attempts, reason = 0, ""
        if self._unreachable is not None:
            return ChatReply(None, error=f"not sent: {self._unreachable}")
        while attempts <= self.config.max_retries:
            attempts += 1
            try:
                content = self._post(payload)
            except _Retry as retry:
                reason = str(retry)
                if retry.final or attempts > self.config.max_retries:
                    break
                delay = self.config.backoff_base_s * 2 ** (attempts - 1)
                delay = self._rng.uniform(0, min(self.config.backoff_max_s, delay))
                delay = max(delay, min(retry.wait_at_least, self.config.backoff_max_s))
                log.debug("judge request failed (%s); retry %d in %.2fs", reason, attempts, delay)
                self._sleep(delay)
                continue
            if self.cache:
                self.cache.put(key, payload, content)
            with self._count_lock:
                self._answered += 1
            return ChatReply(content, attempts=attempts)
        log.warning("judge request gave up after %d attempt(s): %s", attempts, reason)
        with self._count_lock:
            if reason.startswith("connection error") and not self._answered:
                self._unreachable = f"the judge did not answer any request ({reason})"
        return ChatReply(None, error=reason, attempts=attempts)

    def _post(self, payload: dict[str, Any]) -> str:
        with self._count_lock:
            self.sent += 1
        try:
            response = self._http.post("/chat/completions", json=payload)
        except httpx.TimeoutException as exc:
            raise _Retry(f"timeout ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise _Retry(f"connection error ({exc})") from None
        status = response.status_code
        if status in FATAL_STATUS:
            raise SftmixError(
                f"judge endpoint {self.config.base_url} answered HTTP {status} "
                f"({FATAL_STATUS[status]}) for model {self.config.model!r}. "
                + judge_settings_hint())
        if status == 429 or status >= 500:
            raise _Retry(f"HTTP {status}", _retry_after(response.headers.get("retry-after")))
        if status >= 400:
            raise _Retry(f"HTTP {status}: {response.text[:200]}", final=True)
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _Retry(f"malformed reply body {response.text[:120]!r}") from None
        if not isinstance(content, str):
            raise _Retry(f"reply content is {type(content).__name__}, not text")
        return content


def judge_settings_hint() -> str:
    """What to set to reach a judge, in both spellings (environment and options)."""
    return (f"Set {ENV_BASE_URL} (any OpenAI-compatible server), {ENV_MODEL} and "
            f"{ENV_API_KEYS[0]} (or {ENV_API_KEYS[1]}); or the judge options: "
            "--set mtbench.judge.base_url=... for sftmix eval, "
            "evaluation: {mtbench: {judge: {base_url: ...}}} in a study")


def endpoint_problem(config: JudgeConfig) -> str | None:
    """Why the judge's ``base_url`` cannot be an endpoint at all (checked without asking it)."""
    try:
        url = httpx.URL(config.base_url)
    except (httpx.InvalidURL, TypeError) as exc:
        url, why = None, str(exc)
    else:
        why = "" if url.scheme in ("http", "https") and url.host else "no http(s) scheme and host"
    if url is not None and not why:
        return None
    return (f"the judge's base_url is {config.base_url!r} ({why}); expected the URL of an "
            f"OpenAI-compatible server such as {DEFAULT_BASE_URL}. {judge_settings_hint()}")


def missing_key_problem(config: JudgeConfig) -> str | None:
    """Why the judge cannot work before a single request: OpenAI's own endpoint with no key."""
    if config.api_key or config.base_url.rstrip("/") != DEFAULT_BASE_URL:
        return None
    return f"the judge is {DEFAULT_BASE_URL} but no API key is set. {judge_settings_hint()}"


def judge_config(options: dict[str, Any] | JudgeConfig | None) -> JudgeConfig:
    """A config from task options (a mapping of JudgeConfig fields) over the environment."""
    if isinstance(options, JudgeConfig):
        return options
    return JudgeConfig.from_env(**(options or {}))


"""The chat-model factory: one `match` over `settings.llm`, with lazy imports."""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

from assistant.errors import ServiceUnavailable, UserError
from assistant.settings import Settings

log = logging.getLogger(__name__)

MAX_ANSWER_TOKENS = 384
LOCAL_CTX_TOKENS = 4096
_LOCAL_SERVERS: dict[str, LocalServer] = {}
_LOCK = threading.Lock()


def make_chat_model(settings: Settings) -> Any:
    """A LangChain chat model for `settings.llm`, or None for the extractive answerer."""
    match settings.llm:
        case "extractive" | "" | "none":
            return None
        case "openai":
            if not settings.llm_base_url and not settings.llm_api_key:
                raise UserError(
                    "llm_not_configured",
                    "ASSISTANT_LLM=openai needs ASSISTANT_LLM_BASE_URL or ASSISTANT_LLM_API_KEY.",
                    "ASSISTANT_LLM=openai には ASSISTANT_LLM_BASE_URL または ASSISTANT_LLM_API_KEY が必要です。",
                )
            return _openai(settings, settings.llm_base_url, settings.llm_model or "gpt-4o-mini")
        case "ollama":
            # Ollama serves an OpenAI-compatible API under /v1, so no extra dependency is needed.
            base = (settings.llm_base_url or "http://127.0.0.1:11434").rstrip("/")
            if not base.endswith("/v1"):
                base += "/v1"
            return _openai(settings, base, settings.llm_model or "qwen2.5:1.5b-instruct")
        case "local":
            server = start_local_server(settings)
            return _openai(settings, server.base_url, settings.llm_model or "local")
        case other:
            raise UserError(
                "unknown_llm",
                f"Unknown chat model provider {other!r}: use extractive, openai, ollama or local.",
                f"不明なチャットモデルの種類です（{other!r}）。extractive、openai、ollama、local のいずれかを指定してください。",
            )


def _openai(settings: Settings, base_url: str | None, model: str) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=base_url,
        model=model,
        api_key=settings.llm_api_key or "none",  # type: ignore[arg-type]
        timeout=settings.llm_timeout_s,
        max_retries=0,  # a failed call falls back to the extractive answer at once
        temperature=0,
        max_tokens=MAX_ANSWER_TOKENS,  # type: ignore[call-arg]
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalServer:
    """llama.cpp (through xllamacpp) serving one GGUF file on loopback, OpenAI-compatible."""

    def __init__(self, gguf: Path, threads: int = 0, ctx_tokens: int = LOCAL_CTX_TOKENS,
                 ready_timeout_s: float = 120.0) -> None:
        import os

        # llama.cpp's OpenMP workers spin while idle; on a busy 2-core machine that starves the
        # HTTP thread and the other workers. Must be set before the library starts its threads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import xllamacpp  # type: ignore[import-untyped]

        params = xllamacpp.CommonParams()
        params.model.path = str(gguf)
        params.hostnames = ["127.0.0.1"]
        params.port = free_port()
        params.n_parallel = 1
        # llama.cpp logs every request at info level (3) on stderr; warnings and errors are enough.
        params.verbosity = 3 if log.isEnabledFor(logging.DEBUG) else 2
        params.n_ctx = ctx_tokens
        n = threads or os.cpu_count() or 1
        params.cpuparams.n_threads = n
        params.cpuparams_batch.n_threads = n
        # Busy-polling threads compete with the HTTP thread on small machines and slow decoding tenfold.
        params.cpuparams.poll = 0
        params.cpuparams_batch.poll = 0
        self._server = xllamacpp.Server(params)
        self.url = str(self._server.listening_address).rstrip("/")
        self.base_url = self.url + "/v1"
        self._wait_ready(ready_timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise ServiceUnavailable(
            "llm_unavailable",
            f"The local chat model did not start within {timeout_s:.0f} s.",
            f"ローカルのチャットモデルが {timeout_s:.0f} 秒以内に起動しませんでした。",
        )

    def close(self) -> None:
        self._server = None


def start_local_server(settings: Settings) -> LocalServer:
    """The process's server for `settings.llm_gguf`, started on first use on a free loopback port."""
    from assistant.localmodel import default_path

    gguf = settings.llm_gguf or default_path(settings.model_dir)
    if not Path(gguf).is_file():
        raise UserError(
            "llm_gguf_missing",
            f"ASSISTANT_LLM=local needs a model file: run `assistant install-local-model`, or set "
            f"ASSISTANT_LLM_GGUF to a GGUF file (looked for {gguf}).",
            f"ASSISTANT_LLM=local にはモデルファイルが必要です。`assistant install-local-model` を実行するか、"
            f"ASSISTANT_LLM_GGUF に GGUF ファイルを指定してください（{gguf} を探しました）。",
        )
    key = str(Path(gguf).resolve())
    with _LOCK:
        server = _LOCAL_SERVERS.get(key)
        if server is None:
            try:
                import xllamacpp  # type: ignore[import-untyped]  # noqa: F401
            except ImportError as exc:
                raise UserError(
                    "llm_local_missing",
                    "ASSISTANT_LLM=local needs the xllamacpp package (see README).",
                    "ASSISTANT_LLM=local には xllamacpp パッケージが必要です（README 参照）。",
                ) from exc
            log.info("starting local chat model %s", key)
            server = LocalServer(Path(key))
            _LOCAL_SERVERS[key] = server
    return server

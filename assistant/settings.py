"""The one reader of the environment: every setting, its default and its variable.

Precedence: arguments passed to `Settings(...)`, then the environment (`ASSISTANT_*`, and Slack's
own `SLACK_*` names), then a `.env` file in the current directory, then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Nothing may reach a model hub or an analytics host. These are process-wide switches read by the
# libraries themselves, so they are set (not only read) here, once, by `apply_offline_env`.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "DO_NOT_TRACK": "1",
}


def apply_offline_env() -> None:
    """Switch off every hub download and telemetry call for this process and its children."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


class Settings(BaseSettings):
    """All settings; see README "Settings" for the table."""

    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_", env_file=".env", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Path(".data")
    models_dir: Path | None = None
    chroma_url: str | None = None
    collection: str = "passages"
    # Every call to a Chroma server is bounded: a silent or stopped server gives `chroma_unavailable`.
    chroma_connect_timeout_s: float = 3.0
    chroma_timeout_s: float = 10.0  # waiting for each read (and write) of a response

    # Chunking
    chunk_chars: int = 400
    chunk_max_chars: int = 600
    chunk_overlap_sentences: int = 1

    # Ingestion
    max_file_mb: float = 20.0
    max_pdf_pages: int = 2000  # longer PDFs are refused before their text is read
    ocr: bool = True
    ocr_languages: str = "jpn+eng"

    # Embedding
    embed_backend: str = "auto"  # auto | onnx | torch
    embed_batch_size: int = 16
    embed_threads: int = 0  # 0: all cores
    embed_with_title: bool = True

    # Retrieval
    top_k: int = 5
    candidates_k: int = 30

    # Answering
    llm: str = "extractive"
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout_s: float = 60.0
    llm_gguf: Path | None = None
    max_question_chars: int = 2000
    # The fitted answer judge (a cross-encoder) scores the candidate sentences; off (the default), the
    # similarity and keyword scorer alone.
    answer_judge: bool = False

    # Server
    host: str = "127.0.0.1"
    port: int = 7860
    public_url: str | None = None
    auth_file: Path | None = None
    api_tokens_file: Path | None = None
    allow_unauthenticated: bool = False
    query_log: bool = True
    query_log_retention_days: int = 30
    rate_limit_per_min: int = 60
    upload_rate_limit_per_min: int = 20
    max_upload_mb: float = 20.0
    # Comma-separated lists. Hosts the server answers to besides the bound address, localhost,
    # 127.0.0.1 and [::1] ("*" for any; "*.example.org" for subdomains); origins allowed to call the
    # API from other sites (none by default); proxies whose X-Forwarded-For is believed (IPs or CIDRs).
    allowed_hosts: str = ""
    cors_origins: str = ""
    trusted_proxies: str = ""
    session_ttl_h: float = 12.0

    # Slack keeps its conventional names.
    slack_bot_token: str | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "slack_bot_token")
    )
    slack_signing_secret: str | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "slack_signing_secret")
    )
    slack_app_token: str | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "slack_app_token")
    )
    slack_api_url: str | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_API_URL", "slack_api_url")
    )

    @property
    def model_dir(self) -> Path:
        """Folder that holds built models (the embedding model's sentence-transformers folder)."""
        return Path(self.models_dir) if self.models_dir else Path(self.data_dir) / "models"

    @property
    def chroma_dir(self) -> Path:
        return Path(self.data_dir) / "chroma"

    @property
    def index_db(self) -> Path:
        """SQLite file holding ingestion records, chunk texts and the keyword index."""
        return Path(self.data_dir) / "index.sqlite3"

    @property
    def documents_dir(self) -> Path:
        return Path(self.data_dir) / "documents"

    @property
    def feedback_db(self) -> Path:
        return Path(self.data_dir) / "feedback.sqlite3"

    @property
    def sessions_db(self) -> Path:
        return Path(self.data_dir) / "sessions.sqlite3"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

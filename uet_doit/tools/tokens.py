"""Counting tokens for a forecast: tiktoken when its encoding is already on this machine.

tiktoken downloads an encoding the first time one is asked for; a forecast must never
reach the network, so an encoding is used only when its file is already cached (tiktoken's
cache folder, or the copies litellm ships) and its checksum is right. Otherwise the count
is the text's UTF-8 bytes divided by BYTES_PER_TOKEN, about right for English prose and
code with OpenAI's and Anthropic's tokenizers (3.5-4.5 bytes a token).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

#: the fallback ratio: UTF-8 bytes per token
BYTES_PER_TOKEN = 4.0

_BASE_URL = "https://openaipublic.blob.core.windows.net/encodings/"
#: sha256 of each encoding file, as tiktoken checks it (tiktoken_ext.openai_public)
_EXPECTED_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
_ENV_LOCK = threading.Lock()


@dataclass(frozen=True)
class TokenCounter:
    """A way to count tokens, and its name for the forecast's assumptions."""

    count: Callable[[str], int]
    name: str


def bytes_counter() -> TokenCounter:
    return TokenCounter(
        lambda text: round(len(text.encode("utf-8")) / BYTES_PER_TOKEN),
        f"~{BYTES_PER_TOKEN:g} bytes/token",
    )


def encoding_for(model: str | None) -> str:
    """OpenAI's newer models use o200k_base; others are approximated with cl100k_base."""
    name = (model or "").lower().rsplit("/", 1)[-1]
    if name.startswith(("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4", "codex")):
        return "o200k_base"
    return "cl100k_base"


def _cache_dirs() -> list[str]:
    dirs = [os.environ.get("TIKTOKEN_CACHE_DIR"), os.environ.get("DATA_GYM_CACHE_DIR")]
    dirs.append(os.path.join(tempfile.gettempdir(), "data-gym-cache"))
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):
        spec = None
    for folder in (spec.submodule_search_locations or ()) if spec else ():
        dirs.append(os.path.join(folder, "litellm_core_utils", "tokenizers"))
    return [d for d in dirs if d]


def cached_encoding_dir(encoding: str, dirs: list[str] | None = None) -> str | None:
    """The folder holding a verified copy of `encoding`, or None (never downloads)."""
    expected = _EXPECTED_SHA256.get(encoding)
    if expected is None:
        return None
    key = hashlib.sha1((_BASE_URL + encoding + ".tiktoken").encode()).hexdigest()
    for folder in _cache_dirs() if dirs is None else dirs:
        path = os.path.join(folder, key)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        if hashlib.sha256(data).hexdigest() == expected:
            return folder
    return None


@cache
def _tiktoken_counter(encoding: str) -> TokenCounter | None:
    if importlib.util.find_spec("tiktoken") is None:
        return None
    folder = cached_encoding_dir(encoding)
    if folder is None:
        return None
    import tiktoken

    with _ENV_LOCK:  # tiktoken reads its cache folder from the environment
        before = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = folder
        try:
            enc = tiktoken.get_encoding(encoding)
        except Exception:  # a broken install falls back to the ratio
            return None
        finally:
            if before is None:
                os.environ.pop("TIKTOKEN_CACHE_DIR", None)
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = before
    return TokenCounter(
        lambda text: len(enc.encode(text, disallowed_special=())), f"tiktoken {encoding}"
    )


def token_counter(model: str | None, allow_tokenizer: bool = True) -> TokenCounter:
    """tiktoken with the model's encoding (or the other one) when cached, else the ratio."""
    if allow_tokenizer:
        wanted = encoding_for(model)
        for encoding in (wanted, *[e for e in _EXPECTED_SHA256 if e != wanted]):
            counter = _tiktoken_counter(encoding)
            if counter is not None:
                return counter
    return bytes_counter()

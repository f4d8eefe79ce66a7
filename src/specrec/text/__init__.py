"""Item text encoding: one sentence-embedding vector per item, from its synopsis or a metadata fallback."""

from specrec.text.encode import (
    DEFAULT_MODEL,
    TextModelUnavailableError,
    encode_items,
    encode_texts,
    item_texts,
    load_model,
    resolve_model,
    text_model_slug,
)

__all__ = [
    "DEFAULT_MODEL",
    "TextModelUnavailableError",
    "encode_items",
    "encode_texts",
    "item_texts",
    "load_model",
    "resolve_model",
    "text_model_slug",
]

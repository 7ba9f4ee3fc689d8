"""The embedded paper broker (the default)."""

from __future__ import annotations

from typing import Any

__all__ = ["PaperAdapter", "PaperConfig"]


def __getattr__(name: str) -> Any:  # lazy, so the engine can import the config without a cycle
    if name == "PaperAdapter":
        from .adapter import PaperAdapter

        return PaperAdapter
    if name == "PaperConfig":
        from workbench.paper.config import PaperConfig

        return PaperConfig
    raise AttributeError(name)

"""The ``widgets`` settings section (its model is SDK-free, in :mod:`workbench.core.widgets_config`, so
that every settings load validates it)."""

from __future__ import annotations

from workbench.core.settings import Settings
from workbench.core.widgets_config import WidgetsConfig

__all__ = ["WidgetsConfig", "widgets_config"]


def widgets_config(settings: Settings) -> WidgetsConfig:
    """The validated ``widgets`` section (ConfigError naming ``widgets.<key>`` when wrong)."""
    return settings.section_model("widgets", WidgetsConfig)

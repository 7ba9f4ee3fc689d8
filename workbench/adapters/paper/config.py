"""The ``paper`` section's model lives next to the engine (:mod:`workbench.paper.config`)."""

from workbench.paper.config import Commission, PaperConfig

__all__ = ["Commission", "PaperConfig"]

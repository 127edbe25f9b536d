"""What the Gradio handlers call: one module per step, and the :class:`Studio` of process-wide services.

The public names are importable from here (``from session import Studio, Session``).
"""

from session.errors import ModelsUnavailable, StudioError, user_message
from session.state import (
                           Comic,
                           ComicUpdate,
                           DrawnPanel,
                           PanelCard,
                           ParseOutcome,
                           RestoredProject,
                           Session,
                           StyleSettings,
)
from session.studio import Studio

__all__ = ["Comic", "ComicUpdate", "DrawnPanel", "ModelsUnavailable", "PanelCard", "ParseOutcome",
           "RestoredProject", "Session", "StudioError", "StyleSettings", "Studio", "user_message"]

"""Where ``docfs.control`` finds RSpace's control-socket actions (``{"op": "rspace"}``).

The sharing commands moved into the RSpace package (``docfs/backends/rspace/commands.py``);
this name stays only for the control channel's import until it asks the registry instead
(``docfs.registry.control_handler(op)``, which the RSpace descriptor answers for ``rspace``).
"""

from __future__ import annotations

from docfs.backends.rspace.commands import serve_control

__all__ = ["serve_control"]

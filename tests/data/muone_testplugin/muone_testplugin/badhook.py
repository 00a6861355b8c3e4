"""An entry point whose hook raises: reported by name, the other plugins still load."""

import muone


@muone.hookimpl
def muone_plugins():
    raise RuntimeError("deliberately failing hook")

"""An entry point whose module cannot be imported: it must be reported, not hide others."""

raise ImportError("this test plugin is deliberately broken")

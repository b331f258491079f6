"""Widgets and map tools: the dock and what it opens. Everything here runs on the main thread."""

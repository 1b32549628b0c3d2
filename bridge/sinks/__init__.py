"""Sinks: how comments and linkbacks reach a blog (WordPress REST, pingback, webmention, none)."""

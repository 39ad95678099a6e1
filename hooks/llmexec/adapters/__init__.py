"""Thin adapters of the core: the MkDocs hook's events, a Python-Markdown extension (Zensical), the command line."""

"""Plan: find the blocks and claims of a page (Markdown or notebook) and key them; nothing is executed here."""

"""llmexec: executes Markdown blocks against a base and an instruct model at MkDocs build time."""

SCHEMA_VERSION = 1  # bump when the result format or the key recipe changes

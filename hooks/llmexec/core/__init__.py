"""The renderer-neutral core values: settings, model specs and recipes, the runner protocol, files."""

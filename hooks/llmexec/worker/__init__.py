"""The worker process (`python -m llmexec.worker`): models, code jobs and generate jobs, each in a forked child."""

"""Generation on a serving engine (vLLM, SGLang, llama.cpp's server) over the OpenAI-compatible HTTP API."""

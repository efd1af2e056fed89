"""Test helpers: a loopback OpenAI-compatible endpoint (openai_stub)."""

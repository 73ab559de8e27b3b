"""Turn events → OpenAI responses: one accumulator, one encoder per API (see app.translate)."""

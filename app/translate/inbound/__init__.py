"""OpenAI requests → `TurnPlan`, one module per API on shared checks (see app.translate)."""

"""The web UI and HTTP API: `create_app(config)` builds the FastAPI app that `lorag serve` runs."""

"""Platform logic behind the API routes and the CLI (api -> services -> core)."""

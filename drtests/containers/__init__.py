"""Containers mode: PostgreSQL and S3 as containers of a Docker-API engine (Docker, or
Podman through its compatible API), started and removed by testcontainers."""

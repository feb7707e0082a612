"""Deployment checks: docker-compose.yaml, deploy/, the Dockerfile and the Helm values."""

"""Deployment helpers: `.env` generation for docker-compose and the campaign bucket's setup."""

"""Dagster orchestration of the project's Meltano jobs: one job and schedule per cadence group."""

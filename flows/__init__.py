"""Durable, replayable flows."""

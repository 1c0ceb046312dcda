"""Database models and engine setup; imports nothing from the services above it."""

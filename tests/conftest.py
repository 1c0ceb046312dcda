"""Shared fixtures live in tests/fixtures/, one module per collaborator."""

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.servers",
    "tests.fixtures.sandbox",
    "tests.fixtures.smtp",
    "tests.fixtures.app",
    "tests.fixtures.browser",
]

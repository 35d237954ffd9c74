"""Wires in this repository's test harness; the scenario fixtures come with the installed
plugin (``drtests.plugin``)."""

pytest_plugins = [
    "fixtures.kubernetes",
    "fixtures.profiles",
]

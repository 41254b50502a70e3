"""The ``ripples`` command: the local stack and, later, the demo, the report and the bench."""

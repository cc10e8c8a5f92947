"""Offline engine: the program under Pulumi mocks, for tests and `make synth`."""

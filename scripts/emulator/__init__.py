"""The emulator behind scripts/moto_server.py: one module per AWS service, wired by `app`."""

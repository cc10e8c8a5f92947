"""The placeholder service image: its server (server.py) and Dockerfile."""

"""Pulumi ComponentResources of the Financial Planning platform, one module per concern."""

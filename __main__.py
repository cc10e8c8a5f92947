"""The Financial Planning platform: load this stack's settings, build it, export what users need."""

import pulumi

from components.platform import build
from stacks import load_secrets, load_settings

settings = load_settings()
platform = build(pulumi.get_project(), pulumi.get_stack(), settings, load_secrets(settings))
for name, value in platform.exports().items():
    pulumi.export(name, value)

"""`make dev-images`: the images the development stack's Deployments pull, when they are the
placeholder's: built once from devloop/placeholder/ and pushed under each of those names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from components.local_platform import PLACEHOLDER_IMAGE
from devloop.runner import DevLoopError, Runner
from offline.engine import (
    PROJECT_DIR,
    StackRun,
    project_name,
    project_values,
    run_stack,
    stack_config,
    stack_names,
    unknown_stack,
)
from offline.first_up import images
from stacks.environments import TARGETS
from stacks.loader import environment_of
from stacks.local_settings import LocalStackSettings

PLACEHOLDER_DIR = Path(__file__).resolve().parent / "placeholder"


@dataclass(frozen=True)
class DevStack:
    stack: str
    settings: LocalStackSettings
    # Every image the stack's Deployments pull, as the offline render has them.
    images: list[str]

    @property
    def placeholder_repository(self) -> str:
        return f"{self.settings.image_registry}/{PLACEHOLDER_IMAGE}"


def dev_stack(stack: str) -> DevStack:
    """The stack's settings and images, from its offline render (no CLI, no cluster). A stack
    whose stack file names an EKS environment is refused before rendering."""
    if stack not in stack_names():
        raise DevLoopError(unknown_stack(stack))
    environment = eks_environment(stack)
    if environment is not None:
        raise DevLoopError(not_local(stack, environment))
    try:
        run = run_stack(stack)
    except Exception as error:
        raise DevLoopError(f"rendering {stack} failed: {error}") from None
    return from_render(run)


def eks_environment(stack: str, project_dir: Path = PROJECT_DIR) -> str | None:
    """The environment the stack file names (or, naming none, the stack's name) when it is one
    on EKS; None otherwise. A stack file the loader would refuse (unreadable, an environment
    with no defaults) is left to the render, which says what is wrong with it."""
    try:
        config, _ = stack_config(stack, project_dir)
        values = project_values(config, project_name(project_dir))
    except Exception:  # any broken stack file or Pulumi.yaml: the render reports it in one line
        return None
    environment = environment_of(stack, values)
    if isinstance(environment, str) and TARGETS.get(environment) == "eks":
        return environment
    return None


def not_local(stack: str, environment: str) -> str:
    return (
        f"{stack} deploys to Amazon EKS: the local loop takes a stack of a local "
        f"cluster (environment {environment} is not one; development is)"
    )


def from_render(run: StackRun) -> DevStack:
    settings = run.namespace["settings"]
    if not isinstance(settings, LocalStackSettings):
        raise DevLoopError(not_local(run.stack, settings.environment))
    return DevStack(run.stack, settings, images(run.resources))


def placeholder_images(dev: DevStack) -> list[str]:
    """The images to build from the placeholder, or none when the stack runs the product's."""
    if not dev.settings.placeholder_images:
        return []
    foreign = [i for i in dev.images if i.rsplit(":", 1)[0] != dev.placeholder_repository]
    if foreign:
        raise DevLoopError(
            f"{dev.stack} sets placeholderImages yet pulls {', '.join(foreign)}: "
            f"only {dev.placeholder_repository} can be built here"
        )
    return dev.images


def push(runner: Runner, dev: DevStack) -> None:
    built = placeholder_images(dev)
    if not built:
        print(
            f"note: {dev.stack} runs the product's images (placeholderImages is not set): "
            f"they must be in {dev.settings.image_registry} already: {', '.join(dev.images)}"
        )
        return
    tags = [flag for image in built for flag in ("--tag", image)]
    runner.run("docker", "build", *tags, str(PLACEHOLDER_DIR))
    for image in built:
        runner.run("docker", "push", image)

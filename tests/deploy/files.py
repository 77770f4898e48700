"""What the deploy tests read: deploy/'s YAML documents, the CLI parser they run commands through,
and the environment names graphworks reads (Settings' fields and the CLI's own variables)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml

from graphworks.cli.main import cli
from graphworks_core.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
IMAGE = "graphworks"  # the image the manifests name; kustomization.yaml's `images:` rewrites it


@dataclass(frozen=True)
class Doc:
    path: Path
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind"))

    @property
    def name(self) -> str:
        return str(self.body.get("metadata", {}).get("name"))

    def where(self) -> str:
        return f"{self.path.relative_to(DEPLOY)}: {self.kind}/{self.name}"


def docs(root: Path = K8S) -> list[Doc]:
    """Every YAML document under `root` (kustomizations and templates included)."""
    found = []
    for path in sorted(root.rglob("*.yaml")):
        for body in yaml.safe_load_all(path.read_text()):
            if body is not None:
                found.append(Doc(path, body))
    return found


def of_kind(kind: str, root: Path = K8S) -> list[Doc]:
    return [d for d in docs(root) if d.kind == kind]


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def graphworks_containers(deployment: Doc) -> list[dict[str, Any]]:
    return [c for c in containers(deployment.body["spec"]["template"]["spec"]) if c["image"].startswith(IMAGE)]


def deployment_running(command: str, role: str | None = None) -> Doc:
    """The one Deployment whose graphworks container runs `command` (with `--role role`, if given)."""
    found = [
        d
        for d in of_kind("Deployment")
        for c in graphworks_containers(d)
        if c.get("args", [None])[0] == command and (role is None or option(c["args"], "--role") == role)
    ]
    assert len(found) == 1, (command, role, [d.where() for d in found])
    return found[0]


def option(args: list[str], name: str) -> str:
    """The value after `name` in an argv."""
    assert name in args, (name, args)
    return args[args.index(name) + 1]


def parse_command(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Run `graphworks ARGV` through the real click parser down to its command, without invoking
    anything: (the command path, that command's parsed parameters). An unknown command or option,
    or a value its type refuses, raises click.UsageError."""
    ctx = cli.make_context("graphworks", list(argv))
    command: click.Command = cli
    path = ["graphworks"]
    while isinstance(command, click.Group):
        with warnings.catch_warnings():  # click 8.2+ keeps the subcommand in args; before, in protected_args
            warnings.simplefilter("ignore", DeprecationWarning)
            rest = [*getattr(ctx, "protected_args", ()), *ctx.args]
        name, sub, args = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None, rest
        ctx = sub.make_context(name, args, parent=ctx)
        command, path = sub, [*path, name]
    assert not ctx.args, f"unexpected arguments {ctx.args} for {' '.join(path)}"
    return path, ctx.params


def setting_names() -> set[str]:
    """Every environment variable graphworks reads: Settings' fields (by name and alias; the env
    prefix is empty) and the variables the CLI's options default from (e.g. LOG_LEVEL)."""
    assert Settings.model_config.get("env_prefix", "") == ""
    names = set()
    for field_name, info in Settings.model_fields.items():
        names.add(field_name.upper())
        for alias in (info.alias, info.validation_alias):
            if isinstance(alias, str):
                names.add(alias.upper())
    return names | set(_cli_env(cli))


def _cli_env(command: click.Command) -> Iterator[str]:
    for p in command.params:
        envvars = [p.envvar] if isinstance(p.envvar, str) else list(p.envvar or ())
        yield from envvars
        shown = getattr(p, "show_default", None)
        if isinstance(shown, str):
            yield from re.findall(r"\$([A-Z][A-Z0-9_]*)", shown)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            yield from _cli_env(sub)

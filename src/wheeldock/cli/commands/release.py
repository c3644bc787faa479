"""wheeldock release: push every service's image to a registry and write compose.release.yaml.

--output docker://HOST/REPO/{service}:TAG says where (several --platform values push an index).
compose.release.yaml, beside the compose file, pins each service's image: by digest and has no
build: sections: on a kiosk, `docker compose -f compose.release.yaml pull && docker compose -f
compose.release.yaml up -d` runs exactly what was pushed. The bytes a kiosk pulls for each
service (its manifest, config and compressed layers) are printed. --cache works as for build.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wheeldock import platforms, project
from wheeldock.build.install import BYTECODE_MODES
from wheeldock.build.session import Session
from wheeldock.cli.commands import add_command, add_flags, add_json, add_platforms, add_services
from wheeldock.cli.commands.build import add_cache, options_from
from wheeldock.cli.output import console, print_json
from wheeldock.deps import pylock
from wheeldock.errors import UsageError
from wheeldock.oci.digest import Digest
from wheeldock.oci.reference import RegistryRef, coerce


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(sub, "release", description=__doc__)
    add_services(parser)
    parser.add_argument(
        "--output",
        "-o",
        required=True,
        metavar="REF",
        help="where each service's image is pushed: docker://HOST/REPO/{service}:TAG ({service} "
        "is replaced by its name)",
    )
    parser.add_argument(
        "--base", default=None, help="slim, minimal or an image REF (default: each service's)"
    )
    parser.add_argument("--bytecode", choices=BYTECODE_MODES, default="full", help="as for build")
    add_platforms(
        parser,
        help=f"target platform(s) ({platforms.accepted()}); several push an index "
        f"(default: {pylock.DEFAULT_PLATFORM})",
    )
    add_cache(parser)
    add_flags(
        parser,
        relock="also re-resolve a stale lock whose requirements changed by more than versions "
        "moving (one whose versions moved is updated without it)",
    )
    add_json(parser, "released images")
    parser.set_defaults(func=run, compression="gzip")


@dataclass(frozen=True)
class Released:
    """One service as released: where its image went, pinned, and what a kiosk pulls."""

    service: str
    image: str  # HOST/REPO/service@sha256:…
    digest: Digest
    pull_bytes: dict[str, int]  # platform → bytes

    def to_json(self) -> dict[str, object]:
        return {
            "service": self.service,
            "image": self.image,
            "digest": str(self.digest),
            "pull_bytes": self.pull_bytes,
        }


def _check_output(ref: str, services: int) -> None:
    if not isinstance(coerce(ref.replace("{service}", "service")), RegistryRef):
        raise UsageError(
            f"--output {ref}: a release is pushed to a registry",
            fix="write it docker://HOST/REPO/{service}:TAG",
        )
    if services > 1 and "{service}" not in ref:
        raise UsageError(
            f"--output {ref} names one image, but {services} services are released",
            fix="put {service} in it: docker://HOST/REPO/{service}:TAG",
        )


def _compose_path(proj: project.Project) -> Path:
    from wheeldock.compose import files

    if proj.compose_file:
        return proj.root / proj.compose_file
    return files.find_files(proj.root)[0]


def run(args: argparse.Namespace) -> int:
    targets = platforms.parse_list(args.platform, default=pylock.DEFAULT_PLATFORM)
    proj = project.load(args.project)
    services = proj.buildable(args.services)
    _check_output(args.output, len(services))
    compose_path = _compose_path(proj)
    with Session() as session:
        released = _release(args, proj, services, targets, session)
    from wheeldock.compose import release

    written = release.write(compose_path, {r.service: r.image for r in released})
    _render(released, written, as_json=args.json)
    return 0


def _release(
    args: argparse.Namespace,
    proj: project.Project,
    services: Sequence[project.Service],
    targets: Sequence[platforms.Target],
    session: Session,
) -> list[Released]:
    from wheeldock.compose.release import pinned

    options = options_from(args, targets[0].name)
    if len(targets) == 1 and targets[0] == platforms.host():
        from wheeldock.build import builder

        built = builder.build(proj, services, [args.output], options, session=session)
        return [
            Released(
                r.service,
                pinned(r.outputs[0].ref, r.outputs[0].digest),
                r.outputs[0].digest,
                {targets[0].name: r.image.size},
            )
            for r in built
        ]
    from wheeldock.build import multiarch

    many = multiarch.build(
        proj,
        services,
        targets,
        multiarch.MultiOptions(outputs=(args.output,), make_sbom=False),
        options,
        session=session,
    )
    return [
        Released(
            m.service,
            pinned(m.outputs[0].ref, m.outputs[0].digest),
            m.outputs[0].digest,
            {p.target.name: p.image.size for p in m.images},
        )
        for m in many
    ]


def _render(released: Sequence[Released], written: Path, *, as_json: bool) -> None:
    if as_json:
        print_json({"compose": str(written), "services": [r.to_json() for r in released]})
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("service", "image", "a kiosk pulls"):
        table.add_column(col)
    for r in released:
        pulls = ", ".join(f"{p}: {size / 1e6:.1f} MB" for p, size in r.pull_bytes.items())
        table.add_row(r.service, r.image, pulls)
    console.print(table)
    console.print(f"wrote {written}")

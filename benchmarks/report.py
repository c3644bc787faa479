"""Render docs/bench/hot-paths.md from pytest-benchmark's JSON (``make bench-suite`` runs it).

    python benchmarks/report.py docs/bench/hot-paths.json docs/bench/hot-paths.md

Everything above the findings marker is generated; the hand-written findings below it are
kept when the file is rendered again.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FINDINGS_MARKER = "<!-- findings: written by hand, kept by benchmarks/report.py -->"

#: The floors measured on this machine when the layer writer was designed (brief of this
#: suite), for ~84 MB of site-packages tar: seconds per operation.
REFERENCE_FLOORS = {"tar": 0.14, "sha256": 0.04, "isal-gzip-1": 0.15, "zlib-gzip-6": 2.1}
REFERENCE_BYTES = 84e6

RERUN = """\
## Re-running

```sh
make bench-suite        # = pytest benchmarks --benchmark-enable --benchmark-only \\
                        #     --benchmark-json docs/bench/hot-paths.json, then this report
```

The first run makes its data once under `benchmarks/.data/` (not committed; override with
`WHEELDOCK_BENCH_DATA`): a site-packages tree (`uv pip install --target`), cb-totem's
wheelhouse, and a wheeldock cache with the Debian index and the `slim` base rootfs
(mmdebstrap, about two minutes). Later runs only measure. `make test` does not run
`benchmarks/` (its testpaths are `tests/` and the example's tests). One file alone:
`.venv/bin/pytest benchmarks/test_bench_layer.py --benchmark-enable --benchmark-only`.
"""


@dataclass(frozen=True)
class Result:
    group: str
    name: str
    median: float
    min: float
    max: float
    rounds: int
    extra: Mapping[str, Any]


def load(path: Path) -> tuple[dict[str, Any], list[Result]]:
    doc = json.loads(path.read_text())
    results = [
        Result(
            group=str(b.get("group") or ""),
            name=str(b["name"]).removeprefix("test_"),
            median=float(b["stats"]["median"]),
            min=float(b["stats"]["min"]),
            max=float(b["stats"]["max"]),
            rounds=int(b["stats"]["rounds"]),
            extra=b.get("extra_info") or {},
        )
        for b in doc["benchmarks"]
    ]
    return doc, results


def seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.1f} µs"


def size_text(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _mb_per_s(result: Result) -> str:
    size = result.extra.get("tar_bytes") or result.extra.get("content_bytes")
    if not size or result.median <= 0:
        return ""
    return f"{size / 1e6 / result.median:,.0f} MB/s"


def _note(result: Result) -> str:
    extra = result.extra
    parts: list[str] = []
    if "tar_bytes" in extra:
        parts.append(f"{size_text(extra['tar_bytes'])} tar")
    if "content_bytes" in extra:
        parts.append(f"{size_text(extra['content_bytes'])} of file content")
    if "blob_bytes" in extra and extra.get("tar_bytes"):
        parts.append(f"→ {size_text(extra['blob_bytes'])}")
    if "rebuilt" in extra:
        rebuilt = extra["rebuilt"]
        parts.append("rebuilt: " + (", ".join(rebuilt) if rebuilt else "nothing"))
        if extra.get("rebuilt_bytes"):
            parts.append(f"{size_text(extra['rebuilt_bytes'])} of new layers")
    if "elf_files" in extra:
        packages = ", ".join(extra.get("packages") or []) or "none"
        parts.append(f"{extra['wheels']} wheels, {extra['elf_files']} ELF files → {packages}")
    if "packages" in extra and "elf_files" not in extra:
        parts.append(f"{extra['packages']} packages, {size_text(extra['bytes'])}")
    elif "bytes" in extra:
        parts.append(f"{extra['bytes']:,} bytes")
    return "; ".join(parts)


def table(rows: Iterable[Result]) -> list[str]:
    out = [
        "| benchmark | median | min | max | rounds | throughput | notes |",
        "|---|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        out.append(
            f"| `{r.name}` | {seconds(r.median)} | {seconds(r.min)} | {seconds(r.max)} "
            f"| {r.rounds} | {_mb_per_s(r)} | {_note(r)} |"
        )
    return out


def _find(results: list[Result], name: str) -> Result | None:
    return next((r for r in results if r.name == name), None)


def floors(results: list[Result]) -> list[str]:
    tar = _find(results, "floor_tarfile")
    size = float(tar.extra.get("tar_bytes", 0)) if tar else 0.0
    scale = size / REFERENCE_BYTES if size else 1.0
    names = {
        "tar": "floor_tarfile",
        "read files": "floor_read_files",
        "sha256": "floor_sha256",
        "isal-gzip-1": "floor_compress[isal-gzip-1]",
        "zlib-gzip-6": "floor_compress[zlib-gzip-6]",
        "zstd-3": "floor_compress[zstd-3]",
    }
    out = [
        f"The reference floors were measured on this machine for ~84 MB; scaled here to this "
        f"run's {size / 1e6:.1f} MB tar.",
        "",
        "| floor | this run: median | this run: min | reference (scaled) | min / reference |",
        "|---|--:|--:|--:|--:|",
    ]
    for label, name in names.items():
        r = _find(results, name)
        if r is None:
            continue
        ref = REFERENCE_FLOORS.get(label)
        ref_text = seconds(ref * scale) if ref is not None else "—"
        ratio = f"{r.min / (ref * scale):.1f}×" if ref is not None else "—"
        out.append(f"| {label} | {seconds(r.median)} | {seconds(r.min)} | {ref_text} | {ratio} |")
    return out


def _pair(median: float, minimum: float) -> str:
    return f"{seconds(median)} ({seconds(minimum)})"


def overhead(results: list[Result]) -> list[str]:
    """``build_layer`` against the sum of the floors of the steps it performs."""
    tar = _find(results, "floor_tarfile")
    read = _find(results, "floor_read_files")
    sha = _find(results, "floor_sha256")
    if tar is None or sha is None or read is None:
        return []
    size = float(tar.extra.get("tar_bytes") or 1)
    compressors = {
        "none": None,
        "gzip": _find(results, "floor_compress[isal-gzip-1]"),
        "zstd": _find(results, "floor_compress[zstd-3]"),
    }
    ref_scale = size / REFERENCE_BYTES
    out = [
        "A layer's floor is the sum of the steps `build_layer` performs, each timed alone on "
        "the same data: making the tar + sha256 of the tar (diff_id) + the compressor + "
        "sha256 of the blob (its digest; for `none` the blob is the tar, hashed a second "
        "time). Floor A makes the tar with `tarfile`; floor B only walks the folder and reads "
        "every file (no headers), the least any tar writer does. The reference floor sums the "
        "reference figures below the same way (there is no zstd reference). Times are median "
        "(min); ratios below 1× mean the one streaming pass beats the steps run separately.",
        "",
        "| layer | ours | floor A (tarfile) | ours / A | floor B (read files) | ours / B "
        "| reference floor | ours min / reference |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for compression, comp in compressors.items():
        ours = _find(results, f"build_layer_site_packages[{compression}]")
        if ours is None or (compression != "none" and comp is None):
            continue
        blob = float(ours.extra.get("blob_bytes") or size)
        hashing_med = sha.median * (1 + blob / size)
        hashing_min = sha.min * (1 + blob / size)
        comp_med = comp.median if comp is not None else 0.0
        comp_min = comp.min if comp is not None else 0.0
        a_med, a_min = tar.median + hashing_med + comp_med, tar.min + hashing_min + comp_min
        b_med, b_min = read.median + hashing_med + comp_med, read.min + hashing_min + comp_min
        reference: float | None = None
        if compression in ("none", "gzip"):
            reference = REFERENCE_FLOORS["tar"] + REFERENCE_FLOORS["sha256"] * (1 + blob / size)
            if compression == "gzip":
                reference += REFERENCE_FLOORS["isal-gzip-1"]
            reference *= ref_scale
        ref_cols = (
            f"{seconds(reference)} | {ours.min / reference:.1f}×"
            if reference is not None
            else "— | —"
        )
        out.append(
            f"| `{compression}` | {_pair(ours.median, ours.min)} | {_pair(a_med, a_min)} "
            f"| {ours.median / a_med:.2f}× | {_pair(b_med, b_min)} | {ours.median / b_med:.2f}× "
            f"| {ref_cols} |"
        )
    return out


def machine(doc: Mapping[str, Any]) -> list[str]:
    info = doc.get("machine_info", {})
    cpu = info.get("cpu", {})
    commit = doc.get("commit_info", {})
    load_start = ", ".join(f"{x:.2f}" for x in info.get("loadavg_start", []))
    load_end = ", ".join(f"{x:.2f}" for x in info.get("loadavg_end", []))
    rev = str(commit.get("id", ""))[:12] + (" (uncommitted changes)" if commit.get("dirty") else "")
    return [
        f"- CPU: {cpu.get('brand_raw', info.get('processor', '?'))}, "
        f"{cpu.get('count', info.get('cpus_online', '?'))} cores "
        f"({cpu.get('arch_string_raw', info.get('machine', '?'))})",
        f"- Python {info.get('python_version', '?')} ({info.get('python_implementation', '')}), "
        f"{info.get('system', '')} {info.get('release', '')}",
        f"- date: {doc.get('datetime', '?')} (UTC); pytest-benchmark {doc.get('version', '?')}; "
        f"commit {rev or '?'}",
        f"- load average (1, 5, 15 min) at start: {load_start or '?'}; at end: {load_end or '?'} "
        "— the machine is shared: other work running at the same time slows every figure, "
        "so compare minima first",
    ]


def render(doc: Mapping[str, Any], results: list[Result], findings: str) -> str:
    groups: dict[str, list[Result]] = {}
    for r in results:
        groups.setdefault(r.group, []).append(r)
    lines = [
        "# Hot-path benchmarks",
        "",
        "pytest-benchmark figures for wheeldock's hot paths: layer tarring, hashing and "
        "compression (against the plain library floors), lock parsing, the ELF scan, image "
        "config/manifest serialisation, and incremental native builds of cb-totem. Raw data: "
        "[hot-paths.json](hot-paths.json). Performance targets live here, not in the unit "
        "tests.",
        "",
        "## Machine",
        "",
        *machine(doc),
        "",
        "## Layer overhead over the floor",
        "",
        *overhead(results),
        "",
        "## Floors",
        "",
        *floors(results),
        "",
        "## All results",
        "",
    ]
    for group in sorted(groups):
        lines += [f"### {group}", "", *table(groups[group]), ""]
    lines += [RERUN, FINDINGS_MARKER, findings.strip("\n"), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    source, dest = Path(args[0]), Path(args[1])
    doc, results = load(source)
    findings = ""
    if dest.is_file():
        old = dest.read_text()
        if FINDINGS_MARKER in old:
            findings = old.split(FINDINGS_MARKER, 1)[1]
    if not findings.strip():
        findings = "\n## Findings\n\n(none written yet)\n"
    dest.write_text(render(doc, results, findings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

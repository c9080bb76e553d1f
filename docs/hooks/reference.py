"""mkdocs hook: the site's home from README.md, and the references generated from the code.

- ``index.md``: README.md, its ``docs/`` links made relative to the site;
- ``reference/cli.md``: typer's own ``typer phasegate.cli utils docs``;
- ``reference/contract.md`` and ``reference/schemas/*.json``: ``phasegate schema export``.

Every page is generated in memory at build time; nothing is written into the checkout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

CONSTRAINTS = ("minimum", "maximum", "exclusiveMinimum", "minLength", "maxLength", "pattern")


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = Path(config.config_file_path).parent
    readme = (root / "README.md").read_text().replace("](docs/", "](")
    files.append(File.generated(config, "index.md", content=readme))
    files.append(File.generated(config, "reference/cli.md", content=cli_reference(root)))
    schemas = exported_schemas(root)
    files.append(File.generated(config, "reference/contract.md", content=contract(schemas)))
    for name, text in schemas.items():
        files.append(File.generated(config, f"reference/schemas/{name}", content=text))
    return files


def run(root: Path, *args: str) -> str:
    """``python ARGS`` in the checkout (so its own code is imported); its output."""
    done = subprocess.run([sys.executable, *args], cwd=root, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def cli_reference(root: Path) -> str:
    text = run(root, "-m", "typer", "phasegate.cli", "utils", "docs", "--name", "phasegate")
    return text.replace("# `phasegate`", "# Command reference\n\n## `phasegate`", 1)


def exported_schemas(root: Path) -> dict[str, str]:
    """File name -> JSON text of every schema ``phasegate schema export`` writes."""
    with tempfile.TemporaryDirectory() as folder:
        run(root, "-m", "phasegate.cli", "schema", "export", folder)
        return {p.name: p.read_text() for p in sorted(Path(folder).glob("*.json"))}


def contract(schemas: dict[str, str]) -> str:
    """One section per message type: its fields, then the nested types it uses."""
    lines = [
        "# Contract reference (v1)",
        "",
        "Generated from `phasegate schema export DIR`, the JSON Schema of every message;",
        "each section links its schema file. Unknown fields are ignored, so v1 can grow.",
    ]
    for name, text in schemas.items():
        schema = json.loads(text)
        lines += ["", f"## {name.split('.')[0]}", "", schema.get("description", "").strip()]
        lines += ["", f"Schema: [{name}](schemas/{name})", "", *fields_table(schema)]
        for sub, definition in schema.get("$defs", {}).items():
            lines += ["", f"**{sub}**", "", *fields_table(definition)]
    return "\n".join(lines) + "\n"


def fields_table(schema: dict[str, Any]) -> list[str]:
    if "enum" in schema:
        return ["one of: " + ", ".join(f"`{v}`" for v in schema["enum"])]
    required = set(schema.get("required", []))
    rows = ["| field | type | required | constraints |", "|---|---|---|---|"]
    for field, spec in schema.get("properties", {}).items():
        rows.append(
            f"| `{field}` | {type_of(spec)} | {'yes' if field in required else 'no'} "
            f"| {constraints(spec)} |"
        )
    return rows


def type_of(spec: dict[str, Any]) -> str:
    if "$ref" in spec:
        return spec["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in spec:
        return " or ".join(type_of(s) for s in spec["anyOf"])
    if "const" in spec:
        return f"`{json.dumps(spec['const'])}`"
    if "enum" in spec:
        return " \\| ".join(f"`{v}`" for v in spec["enum"])
    kind = spec.get("type", "any")
    if kind == "array":
        return f"array of {type_of(spec.get('items', {}))}"
    return f"{kind} ({spec['format']})" if "format" in spec else kind


def constraints(spec: dict[str, Any]) -> str:
    found = [f"{c} {spec[c]}" for c in CONSTRAINTS if c in spec]
    for option in spec.get("anyOf", []):
        found += [f"{c} {option[c]}" for c in CONSTRAINTS if c in option]
    if "default" in spec:
        found.append(f"default `{json.dumps(spec['default'])}`")
    return "; ".join(found).replace("|", "\\|")

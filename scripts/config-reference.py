#!/usr/bin/env python3
"""docs/configuration.md: every setting of every binary, generated from the
code, and checked by `make test` to match it.

For each binary (the gateway and every crate under services/) it runs the
debug build with `--check-config` on the binary's own `config/base.yaml`
alone (an empty environment file, no APP_* variables), which prints the
settings struct as loaded: every key, including those only the code's
`Default` sets. The keys come from that output, their defaults are its
values, the environment variable names follow kit::config's scheme, and the
descriptions are the `///` comments on the struct fields (read from the
sources by struct and field name).

    scripts/config-reference.py [--bin-dir DIR] [--check | --write]

`--check` (make test) fails when docs/configuration.md differs from what it
would write; `--write` rewrites it. Without either it prints it.
"""

import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "configuration.md")
# Placeholders for what a binary refuses to start without; printed redacted.
REQUIRED = {"gateway": {"APP_GATEWAY__AUTH__JWT_SECRET": "x" * 32}}


def binaries():
    services = sorted(os.path.basename(os.path.dirname(p))
                      for p in glob.glob(os.path.join(ROOT, "services", "*", "Cargo.toml")))
    return [("gateway", "gateway/config")] + [(s, f"services/{s}/config") for s in services]


def field_docs():
    """(struct name, field name) → the field's doc comment, from the sources."""
    docs = {}
    sources = glob.glob(os.path.join(ROOT, "kit", "src", "**", "*.rs"), recursive=True)
    sources += glob.glob(os.path.join(ROOT, "gateway", "src", "**", "*.rs"), recursive=True)
    sources += glob.glob(os.path.join(ROOT, "services", "*", "src", "**", "*.rs"), recursive=True)
    for path in sorted(sources):
        struct, depth, comment = None, 0, []
        for line in open(path, encoding="utf-8"):
            stripped = line.strip()
            m = re.match(r"pub struct (\w+)\s*\{", stripped)
            if m and struct is None:
                struct, depth, comment = m.group(1), 1, []
                continue
            if struct is None:
                continue
            depth += stripped.count("{") - stripped.count("}")
            if depth <= 0:
                struct = None
                continue
            if stripped.startswith("///"):
                comment.append(stripped[3:].strip())
            elif stripped.startswith("#["):
                continue
            else:
                f = re.match(r"pub (\w+)\s*:", stripped)
                if f and comment and depth == 1:
                    docs.setdefault((struct, f.group(1)), " ".join(comment))
                comment = []
    return docs


def loaded(name, config_dir, bin_dir):
    """The binary's `--check-config` settings dump, on base.yaml alone."""
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(ROOT, config_dir, "base.yaml"), encoding="utf-8") as f:
            base = f.read()
        with open(os.path.join(tmp, "base.yaml"), "w", encoding="utf-8") as f:
            f.write(base)
        open(os.path.join(tmp, "reference.yaml"), "w").close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
        env.update(APP_ENVIRONMENT="reference", APP_CONFIG_DIR=tmp, **REQUIRED.get(name, {}))
        out = subprocess.run([os.path.join(bin_dir, name), "--check-config"], env=env,
                             check=True, capture_output=True, text=True).stdout
    return out.split("\ncontract:")[0]


def parse(dump):
    """[(path, struct, field, value)] of every leaf of a `{:#?}` dump."""
    rows, stack = [], []  # stack: (path, struct type)
    lines = dump.splitlines()
    i = 0
    first = re.match(r"(\w+) \{$", lines[0].strip())
    stack.append(([], first.group(1)))
    i = 1
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if re.match(r"^[}\])]+,?$", line):
            if line.startswith("}") or line.startswith(")"):
                if stack:
                    stack.pop()
            continue
        m = re.match(r'^(?:(\w+)|"([^"]+)"): (.*)$', line)
        if not m:
            # `Type {` opening the value of a `Some(` line.
            t = re.match(r"^(\w+) \{$", line)
            if t and stack:
                stack.append((stack[-1][0], t.group(1)))
            continue
        key = m.group(1) or m.group(2)
        value = m.group(3)
        path, struct = stack[-1]
        if value.endswith("{") and re.match(r"^\w+ \{$", value):
            stack.append((path + [key], value[:-2]))
        elif value == "{":
            # A map (resilience overrides): one row per entry, sorted, its
            # value compacted (serde_json's Debug is verbose).
            indent = len(lines[i - 1]) - len(lines[i - 1].lstrip())
            block = []
            while len(lines[i]) - len(lines[i].lstrip()) > indent:
                block.append(lines[i])
                i += 1
            i += 1
            for entry_key, entry in sorted(map_entries(block, indent + 4)):
                rows.append((path + [key, f'"{entry_key}"'], struct, key, entry))
        elif value == "[":
            items = []
            while not re.match(r"^\],?$", lines[i].strip()):
                items.append(lines[i].strip().rstrip(","))
                i += 1
            i += 1
            rows.append((path + [key], struct, key, "[" + ", ".join(items) + "]"))
        elif value == "Some(" and re.match(r"^\w+ \{$", lines[i].strip()):
            # Some(Struct { … }) spans lines: descend, keyed like the field.
            stack.append((path + [key], None))
        elif value == "Some(":
            inner = []
            while not re.match(r"^\),?$", lines[i].strip()):
                inner.append(lines[i].strip().rstrip(","))
                i += 1
            i += 1
            rows.append((path + [key], struct, key, "Some(" + " ".join(inner) + ")"))
        else:
            value = value.rstrip(",")
            if value.startswith("SecretBox<"):
                value = "(secret: not printed)"
            rows.append((path + [key], struct, key, value))
    return rows


def map_entries(block, indent):
    """(key, compact value) of each entry of a `{:#?}` map block."""
    entries, current = [], None
    for line in block:
        if len(line) - len(line.lstrip()) == indent and line.strip().startswith('"'):
            key, _, rest = line.strip().partition('": ')
            current = [key[1:], [rest]]
            entries.append(current)
        elif current is not None:
            current[1].append(line.strip())
    out = []
    for key, parts in entries:
        text = " ".join(parts).rstrip(",")
        text = re.sub(r'String\("([^"]*)"\)', r"\1", text)
        text = re.sub(r"(Number|Bool)\(([^)]*)\)", r"\2", text)
        text = text.replace("Object ", "")
        text = re.sub(r'"(\w+)":', r"\1:", text)
        text = re.sub(r",\s*}", " }", text)
        out.append((key, text))
    return out


def env_name(binary, path):
    if any("." in p or "/" in p for p in path):
        return ""
    if path[0] == "platform":
        return "APP_PLATFORM__" + "__".join(p.upper() for p in path[1:])
    return f"APP_{binary.upper()}__" + "__".join(p.upper() for p in path)


def cell(text):
    return text.replace("|", "\\|")


def render(bin_dir):
    docs = field_docs()
    names = [n for n, _ in binaries()]
    per_binary = {name: parse(loaded(name, d, bin_dir)) for name, d in binaries()}
    out = [
        "# Configuration reference",
        "",
        "Generated by `scripts/config-reference.py --write` from the settings structs",
        "(`--check-config` of each binary on its `config/base.yaml` alone) and their",
        "doc comments; `make test` fails when this file and the code disagree.",
        "",
        "Each binary reads `config/base.yaml`, then `config/<APP_ENVIRONMENT>.yaml`",
        "(`local` by default, `production` in the images), then the environment:",
        "`APP_PLATFORM__<SECTION>__<KEY>` for `platform.*` of every binary and",
        "`APP_<BINARY>__<SECTION>__<KEY>` for one binary only (which wins). Values",
        "below are the defaults of `base.yaml` and the code; `production.yaml`",
        "changes hosts, etcd endpoints and log format. Lists are YAML lists in an",
        "environment variable (`'[\"http://etcd:2379\"]'`); durations are",
        "humantime (`10s`, `500ms`). Keys with a dot or a slash in a segment",
        "(resilience overrides by gRPC service or method) can only be set in a file.",
        "",
        "## platform (every binary)",
        "",
        "Set for all binaries with `APP_PLATFORM__…`, or for one with",
        "`APP_<BINARY>__PLATFORM__…`. A column per binary: its default.",
        "",
        "| key | variable | " + " | ".join(names) + " | description |",
        "| --- | --- | " + " | ".join("---" for _ in names) + " | --- |",
    ]
    platform = {}
    order = []
    for name in names:
        for path, struct, field, value in per_binary[name]:
            if path[0] != "platform":
                continue
            key = ".".join(path)
            if key not in platform:
                platform[key] = {"path": path, "doc": docs.get((struct, field), "")}
                order.append(key)
            platform[key][name] = value
    for key in order:
        row = platform[key]
        values = " | ".join(f"`{cell(row[n])}`" if n in row else "" for n in names)
        var = env_name("x", row["path"])
        out.append(f"| `{cell(key)}` | {f'`{var}`' if var else ''} | {values} | {cell(row['doc'])} |")
    for name in names:
        rows = [r for r in per_binary[name] if r[0][0] != "platform"]
        out += ["", f"## {name}", ""]
        if not rows:
            out.append("Only `platform`.")
            continue
        out += ["| key | variable | default | description |", "| --- | --- | --- | --- |"]
        for path, struct, field, value in rows:
            var = env_name(name, path)
            out.append(f"| `{cell('.'.join(path))}` | {f'`{var}`' if var else ''} | "
                       f"`{cell(value)}` | {cell(docs.get((struct, field), ''))} |")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    parser.add_argument("--bin-dir", default=os.path.join(target, "debug"))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--write", action="store_true")
    args = parser.parse_args()
    text = render(args.bin_dir)
    if args.write:
        with open(OUT, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {os.path.relpath(OUT, ROOT)}")
    elif args.check:
        current = open(OUT, encoding="utf-8").read() if os.path.exists(OUT) else ""
        if current != text:
            import difflib
            sys.stdout.writelines(difflib.unified_diff(
                current.splitlines(True), text.splitlines(True),
                "docs/configuration.md", "generated", n=1))
            print("docs/configuration.md is stale: scripts/config-reference.py --write", file=sys.stderr)
            return 1
        print(f"docs/configuration.md matches the code ({text.count(chr(10))} lines)")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

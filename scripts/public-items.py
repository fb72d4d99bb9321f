#!/usr/bin/env python3
"""Counts the public items (with a path: modules, types, traits, functions,
constants, macros) of each provider crate, from rustdoc's JSON output.

Usage: scripts/public-items.py [FEATURES]   (run from the workspace root)
"""
import json
import os
import subprocess
import sys

CRATES = ["keypair-binder-huawei", "keypair-binder-volcengine", "keypair-binder-alibaba", "keypair-binder-tencent"]
features = sys.argv[1] if len(sys.argv) > 1 else ""
env = dict(os.environ, RUSTC_BOOTSTRAP="1")
total = 0
for crate in CRATES:
    args = ["cargo", "rustdoc", "-q", "-p", crate]
    if features:
        args += ["--features", features]
    args += ["--", "-Z", "unstable-options", "--output-format", "json"]
    subprocess.run(args, check=True, env=env)
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    with open(f"{target}/doc/{crate.replace('-', '_')}.json") as f:
        doc = json.load(f)
    items = [p for p in doc["paths"].values() if p["crate_id"] == 0]
    total += len(items)
    print(f"{crate}: {len(items)}")
print(f"total: {total}")

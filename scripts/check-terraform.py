"""Offline checks of infra/ (no terraform binary here, and no provider schemas): every file parses
as HCL; every `var.x` used is declared, and every variable and output says what it is; every
`resource.name` reference points at a resource or data source declared in the module. What is
not checked: attribute names and types against the AWS provider (terraform validate would)."""

import pathlib
import re
import sys

import hcl2

root = pathlib.Path(sys.argv[1])
declared_vars, outputs, resources, text = {}, {}, set(), ""
for path in sorted(root.glob("*.tf")):
    source = path.read_text()
    text += source
    with path.open() as handle:
        module = hcl2.load(handle)  # raises on a syntax error
    for block in module.get("variable", []):
        declared_vars.update(block)
    for block in module.get("output", []):
        outputs.update(block)
    for kind in ("resource", "data"):
        for block in module.get(kind, []):
            for type_name, named in block.items():
                for name in named:
                    resources.add(f"{'data.' if kind == 'data' else ''}{type_name}.{name}")

problems = []
for name, spec in {**declared_vars, **outputs}.items():
    if not spec.get("description"):
        problems.append(f"{name}: no description")
for name, spec in declared_vars.items():
    if not spec.get("type"):
        problems.append(f"variable {name}: no type")
for used in sorted(set(re.findall(r"\bvar\.([a-z_][a-z0-9_]*)", text))):
    if used not in declared_vars:
        problems.append(f"var.{used} is used but not declared")
for kind, name in sorted(set(re.findall(r"\b((?:data\.)?aws_[a-z0-9_]+)\.([a-z_][a-z0-9_]*)\b", text))):
    if f"{kind}.{name}" not in resources:
        problems.append(f"{kind}.{name} is referenced but not declared")
if problems:
    sys.exit("infra/: " + "; ".join(problems))
print(f"infra/: {len(resources)} resources and data sources, {len(declared_vars)} variables, {len(outputs)} outputs parsed and cross-checked")

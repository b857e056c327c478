"""Repository conventions a reviewer would otherwise check by hand."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

ROLES = sorted(p for p in (REPO_ROOT / "roles").iterdir() if p.is_dir())


def _yaml(path):
    return yaml.safe_load(path.read_text()) or {}


def test_there_are_roles():
    assert ROLES, "no roles found under roles/"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_has_docs_meta_and_specs(role):
    for rel in ("README.md", "meta/main.yml", "meta/argument_specs.yml", "tasks/main.yml"):
        assert (role / rel).is_file(), f"{role.name}: missing {rel}"
    assert "main" in _yaml(role / "meta/argument_specs.yml")["argument_specs"]


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_defaults_prefixed_and_specified(role):
    defaults_file = role / "defaults/main.yml"
    defaults = _yaml(defaults_file) if defaults_file.exists() else {}
    options = _yaml(role / "meta/argument_specs.yml")["argument_specs"]["main"].get("options", {}) or {}
    for name in defaults:
        assert name.startswith(role.name + "_"), f"{role.name}: default '{name}' is not prefixed '{role.name}_'"
        assert name in options, f"{role.name}: default '{name}' has no entry in meta/argument_specs.yml"
        assert options[name].get("description"), f"{role.name}: '{name}' has no description in the argument spec"


def test_role_readmes_generated_from_argument_specs():
    # Role documentation comes from the argument specs; a stale README fails here.
    result = subprocess.run([sys.executable, str(REPO_ROOT / "scripts/role_docs.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_test_command_is_what_ci_runs():
    readme = (REPO_ROOT / "README.md").read_text()
    ci = (REPO_ROOT / ".ci/run").read_text()
    blocks = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", readme, re.S)
    assert len(blocks) >= 2, "README must open with the deploy and the test command"
    test_cmd = blocks[1].strip().splitlines()[-1]
    assert "scripts/test.sh" in test_cmd and "scripts/test.sh" in ci
    assert "scripts/deploy.sh" in blocks[0]


def test_requirements_yml_matches_what_the_suite_uses():
    """Galaxy users get what CI tests: each collection in requirements.yml is the one setup.sh
    extracted from the pinned ansible wheel, at a version inside the declared range."""
    import json

    from ansible.galaxy.dependency_resolution.versioning import meets_requirements

    wanted = _yaml(REPO_ROOT / "requirements.yml")["collections"]
    assert wanted, "requirements.yml lists no collections"
    for entry in wanted:
        namespace, name = entry["name"].split(".")
        manifest = REPO_ROOT / "collections/ansible_collections" / namespace / name / "MANIFEST.json"
        assert manifest.is_file(), f"{entry['name']} is not installed: run scripts/setup.sh"
        version = json.loads(manifest.read_text())["collection_info"]["version"]
        assert meets_requirements(version, entry["version"]), (entry["name"], version, entry["version"])


MODULES = sorted((REPO_ROOT / "collections/ansible_collections/homelab/ai/plugins/modules").glob("[!_]*.py"))


def _module_documentation(path):
    import ast

    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DOCUMENTATION" for t in node.targets):
            return yaml.safe_load(node.value.value)
    raise AssertionError(f"{path.name}: no DOCUMENTATION")


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.stem)
def test_module_docs_extend_the_shared_attributes(module):
    """What every module documents alike lives in plugins/doc_fragments; homelab.ai.attributes
    carries idempotent without a support level, so validate-modules fails a module that does not
    state its own. A module that skips the fragment would skip that check: it may not."""
    fragments = _module_documentation(module).get("extends_documentation_fragment") or []
    assert "homelab.ai.attributes" in fragments, f"{module.name}: extends_documentation_fragment lacks homelab.ai.attributes"


def test_module_docs_state_idempotence():
    """The merged documentation (fragments applied, as ansible-doc shows it) gives every module an
    idempotent attribute with a support level and a sentence saying why."""
    import json

    names = ["homelab.ai." + m.stem for m in MODULES]
    result = subprocess.run([str(Path(sys.executable).parent / "ansible-doc"), "-t", "module", "--json", *names],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    docs = json.loads(result.stdout)
    for name in names:
        idempotent = docs[name]["doc"].get("attributes", {}).get("idempotent", {})
        assert idempotent.get("support") in ("full", "partial", "none"), (name, idempotent)
        assert idempotent.get("details"), f"{name}: idempotent attribute without details saying why"

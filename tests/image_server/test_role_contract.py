"""Role contracts that need no Docker: argument specs match defaults, the Dockerfile takes its
base and pins as inputs, and the check command imports what the server loads."""
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("role", ["image_server", "dashboard"])
def test_argument_specs_cover_every_default_with_the_same_value(role):
    defaults = yaml.safe_load((ROOT / f"roles/{role}/defaults/main.yml").read_text())
    specs = yaml.safe_load((ROOT / f"roles/{role}/meta/argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    # A secret has no default on purpose (a vaulted variable): it is in the spec, under no_log, only.
    secrets = {name for name, spec in options.items() if spec.get("no_log") and "default" not in spec}
    assert set(defaults) == set(options) - secrets
    for name, value in defaults.items():
        assert name.startswith(role + "_"), name
        assert options[name].get("default") == value, name


def test_image_server_dockerfile_builds_from_inputs_and_runs_unprivileged():
    text = (ROOT / "roles/image_server/files/Dockerfile").read_text()
    assert "ARG BASE_IMAGE" in text and "FROM ${BASE_IMAGE}" in text
    assert "-r /opt/image-server/requirements.txt" in text
    assert "-c /opt/image-server/constraints.txt" in text  # torch cannot be swapped by pip
    user_lines = [line for line in text.splitlines() if line.startswith("USER ")]
    assert user_lines and user_lines[-1].split()[1] not in ("root", "0")


def test_check_command_imports_the_served_pipeline():
    defaults = yaml.safe_load((ROOT / "roles/image_server/defaults/main.yml").read_text())
    check = " ".join(defaults["image_server_check_command"])
    assert defaults["image_server_pipeline_class"] in check
    for name in ("transformers", "diffusers", "CLIPTextModel"):
        assert name in check


def test_requirements_template_renders_the_matrix_rows():
    from jinja2 import Environment

    from ansible_collections.homelab.ai.plugins.filter.image_server_pins import image_server_pins

    template = Environment().from_string((ROOT / "roles/image_server/templates/requirements.txt.j2").read_text())
    out = template.render(ansible_managed="managed", image_server_pins=image_server_pins("2.2.0"))
    lines = [line for line in out.splitlines() if line and not line.startswith("#")]
    assert "diffusers>=0.27.0,<0.30.0" in lines and "transformers>=4.51.3,<5.0.0" in lines

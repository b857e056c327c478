"""The doc fragment that is composed in Python (homelab.ai.image_build: image_build's options, and the same
options as container_rollout's build) gets the yamllint that ansible-test's sanity test gives every literal
fragment (one document that libyaml parses, then yamllint with ansible-test's own configuration for plugins);
and its two strings say the same options."""
import importlib.util
import os

import ansible_test
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from tests.conftest import REPO_ROOT

FRAGMENT = REPO_ROOT / "collections/ansible_collections/homelab/ai/plugins/doc_fragments/image_build.py"
SANITY_CONFIG = os.path.join(os.path.dirname(ansible_test.__file__), "_util/controller/sanity/yamllint/config/plugins.yml")


def fragment_class():
    spec = importlib.util.spec_from_file_location("image_build_fragment", FRAGMENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ModuleDocFragment


@pytest.mark.parametrize("attribute", ["DOCUMENTATION", "BUILD"])
def test_the_composed_fragment_passes_ansible_tests_yamllint(attribute):
    text = getattr(fragment_class(), attribute)
    assert len(list(yaml.load_all(text, Loader=yaml.CSafeLoader))) == 1
    problems = list(linter.run(text, YamlLintConfig(file=SANITY_CONFIG)))
    assert not problems, "\n".join("%s:%d:%d %s" % (attribute, p.line, p.column, p.desc) for p in problems)


def test_build_documents_the_same_options_as_image_build():
    fragment = fragment_class()
    own = yaml.safe_load(fragment.DOCUMENTATION)["options"]
    build = yaml.safe_load(fragment.BUILD)["options"]["build"]
    assert build["type"] == "dict" and set(own) == set(build["suboptions"]) and "registry" in own
    assert own["name"] == build["suboptions"]["name"]

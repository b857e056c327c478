"""The router image's build check (homelab.ai.image_build check_command): the proxy imports and the
baked configuration is one LiteLLM accepts - every deployment a hosted_vllm model with an api_base, the
master key and every upstream key read from the environment, never written into the image."""
import sys

import yaml
from litellm import Router

with open("/etc/litellm/config.yaml", encoding="utf-8") as handle:
    config = yaml.safe_load(handle)
problems = []
for entry in config.get("model_list") or []:
    params = entry.get("litellm_params") or {}
    if not str(params.get("model", "")).startswith("hosted_vllm/") or not params.get("api_base"):
        problems.append("%s: not a hosted_vllm deployment with an api_base" % entry.get("model_name"))
    if params.get("api_key") not in (None, "none") and not str(params["api_key"]).startswith("os.environ/"):
        problems.append("%s: an upstream key is written into the configuration" % entry.get("model_name"))
if not config.get("model_list"):
    problems.append("no deployment in model_list")
if not str((config.get("general_settings") or {}).get("master_key", "")).startswith("os.environ/"):
    problems.append("general_settings.master_key is not read from the environment")
if problems:
    sys.exit("router configuration refused: " + "; ".join(problems))
# LiteLLM's own Router takes the deployments as the proxy will (keys resolved later, at start).
Router(model_list=[dict(entry, litellm_params=dict(entry["litellm_params"], api_key="check"))
                   for entry in config["model_list"]], **(config.get("router_settings") or {}))
print("router configuration accepted: %d deployments of %d models"
      % (len(config["model_list"]), len({entry["model_name"] for entry in config["model_list"]})))

"""The OpenAPI document as committed in openapi/openapi.yaml."""
import yaml

from casesvc.extensions import api


def spec_yaml() -> str:
    return yaml.safe_dump(api.spec.to_dict(), sort_keys=True, allow_unicode=True, width=100)

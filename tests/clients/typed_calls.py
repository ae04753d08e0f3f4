"""Typed calls through a Python client generated from permledger's OpenAPI document.

Run by scripts/api-test against a live server: `python typed_calls.py BASE_URL TOKEN`, with
the generated package `permledger_client` on PYTHONPATH and org `acme` created by ann.
"""

import sys

from permledger_client import AuthenticatedClient
from permledger_client.api.default import check, health, who_can
from permledger_client.models import CheckAnswer, ErrorBody, HealthAnswer, WhoCanAnswer


def main(base: str, token: str) -> None:
    client = AuthenticatedClient(base_url=base, token=token, raise_on_unexpected_status=True)

    up = health.sync(client=client)
    assert isinstance(up, HealthAnswer), up
    assert up.seq >= 1, up

    allowed = check.sync(
        client=client, org="acme", user="ann", permission="org.members.invite", scope="org"
    )
    assert isinstance(allowed, CheckAnswer), allowed
    assert allowed.allowed is True, allowed
    assert allowed.at.seq == up.seq, allowed

    denied = check.sync(client=client, org="acme", user="bob", permission="team.view", scope="org")
    assert isinstance(denied, CheckAnswer), denied
    assert denied.allowed is False, denied

    users = who_can.sync(client=client, org="acme", permission="org.members.invite", scope="org")
    assert isinstance(users, WhoCanAnswer), users
    assert users.users == ["ann"], users

    refused = check.sync_detailed(
        client=client, org="acme", user="ann", permission="Not A Key", scope="org"
    )
    assert refused.status_code == 400, refused
    assert isinstance(refused.parsed, ErrorBody), refused.parsed
    assert refused.parsed.code == "invalid", refused.parsed
    print("typed calls ok:", allowed.allowed, denied.allowed, users.users)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

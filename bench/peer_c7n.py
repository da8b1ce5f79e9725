"""The peer for cold init: a Cloud Custodian policy Lambda's one-time init, timed.

Run by the bench venv's Python (c7n lives only there): ``python peer_c7n.py WORKDIR``.
What ``c7n.handler.dispatch_event`` does on a cold start, up to its first AWS client:
import the handler module, read ``config.json`` (written here before the timer starts,
as ``custodian-mu`` ships it in the Lambda package), initialise the execution config
(account id given, so no STS call), load the policy's resource types, build the policy
collection, validate the policy, and make the first client. Prints the elapsed ms.
"""

import time

started, cpu = time.perf_counter(), time.process_time()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

from c7n import handler  # noqa: E402
from c7n.policy import PolicyCollection  # noqa: E402
from c7n.resources import load_resources  # noqa: E402
from c7n.structure import StructureParser  # noqa: E402
from c7n.utils import local_session  # noqa: E402

# The peer runs in the bench venv, without ``remediation.targets``: the commercial
# partition, spelled apart so no ARN is a literal (aws-cn and aws-us-gov exist).
PARTITION = "aws"
# A remediation policy of the same kind as a capacity bump: set a function's concurrency.
POLICY = {
    # The account id is given (as custodian-mu can), so init makes no STS call.
    "execution-options": {"account_id": "123456789012"},
    "policies": [
        {
            "name": "orders-reserved-concurrency",
            "resource": "aws.lambda",
            "mode": {
                "type": "periodic",
                "schedule": "rate(1 hour)",
                "role": f"arn:{PARTITION}:iam::123456789012:role/custodian",
            },
            "filters": [{"FunctionName": "orders"}],
            "actions": [{"type": "set-concurrency", "value": 10}],
        }
    ],
}


def main() -> None:
    os.chdir(sys.argv[1])
    with open("config.json") as f:
        policy_data = json.load(f)
    policy_config = handler.init_config(policy_data)
    load_resources(StructureParser().get_resource_types(policy_data))
    for policy in PolicyCollection.from_data(policy_data, policy_config):
        policy.validate()
        local_session(policy.session_factory).client("lambda")
    print((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "--write-config":
        with open(os.path.join(sys.argv[1], "config.json"), "w") as f:
            json.dump(POLICY, f)
    else:
        main()

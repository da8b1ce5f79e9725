"""serverless-remediation: alert-driven auto-remediation for AWS serverless services.

One top-level package, so nothing generic lands in site-packages:

- ``serverless_remediation.remediation``: the Lambda code (``functions/remediation`` in the
  repository; in the Lambda asset it is the top-level ``remediation`` package, which is why
  it imports its own modules relatively);
- ``serverless_remediation.stacks``: the CDK app's library (``stacks/``);
- ``serverless_remediation.remediate``: the ``remediate`` CLI and the drill (``remediate/``).

In the repository the three are symbolic links to those folders.
"""

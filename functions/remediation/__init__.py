"""Alert-driven auto-remediation: the code every remediator Lambda shares.

One event flows intake -> playbook -> gate -> guards -> plan -> apply -> verify -> record;
``pipeline.py`` runs that flow, ``actions/`` holds one module per action kind.
"""

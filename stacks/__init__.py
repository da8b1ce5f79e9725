"""The CDK app: config (``config``), pure alarm/playbook catalog (``catalog``), one construct
per concern (``constructs``) and stacks that compose them (``stacks``)."""

from stacks.constructs.alarms import ServiceAlarms
from stacks.constructs.suite import AutoRemediation

__all__ = ["AutoRemediation", "ServiceAlarms"]

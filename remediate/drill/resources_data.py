"""Drill resource kinds for db-failover and the ECS actions: Aurora clusters and ECS services
on the emulator (registered with ``remediate.drill.kinds``; the functional tests build the
same resources with ``create_cluster`` / ``create_service``).

Scenario keys::

    resources:
      db_clusters:
        leads-db: {readers: 2, reader_status: available, engine: aurora-postgresql}
      ecs_services:
        bridge: {cluster: aureus, desired: 2, running: 2, revisions: 2, live_minutes: 10,
                 autoscaling: {min: 1, max: 6}}

``expect.state``: ``db_clusters.NAME.{writer, status, members}``,
``ecs_services.NAME.{desired, running, task_definition, min_capacity, max_capacity}``
(``task_definition`` as ``family:revision``).

Where moto 5.2 falls short of ECS, the drill plays AWS (as ``gaps.py`` does for others):

- a service's running count is what ``MOTO_ECS_SERVICE_RUNNING`` says when it is created
  (then the desired count after an update): ``running`` below ``desired`` makes a rollout
  still in progress;
- task definitions carry no ``registeredAt``: the newest revision is stamped
  ``live_minutes`` (default 10) before now, older ones a day before that;
- ``UpdateService`` with a new task definition starts no deployment: the stand-in gives the
  PRIMARY deployment a new id and the new task definition, as ECS does.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from serverless_remediation.remediate import emulator as emu
from serverless_remediation.remediate.drill import kinds
from serverless_remediation.remediation.clients import Clients
from serverless_remediation.remediation.targets import Target

Spec = dict[str, Any]
ENGINE = "aurora-postgresql"
DIMENSION: Final = "ecs:service:DesiredCount"


# -- Aurora clusters -------------------------------------------------------------------------


def create_cluster(
    clients: Clients,
    name: str,
    *,
    readers: int = 2,
    reader_status: str = "available",
    engine: str = ENGINE,
) -> str:
    """A cluster with a writer (``NAME-1``) and ``readers`` readers; its ARN."""
    rds = clients("rds")
    found = rds.create_db_cluster(
        DBClusterIdentifier=name,
        Engine=engine,
        MasterUsername="drill",
        MasterUserPassword="drill-password-1",
    )["DBCluster"]
    for number in range(1, readers + 2):
        rds.create_db_instance(
            DBInstanceIdentifier=f"{name}-{number}",
            DBClusterIdentifier=name,
            Engine=engine,
            DBInstanceClass="db.r6g.large",
            PromotionTier=number,
        )
    if reader_status != "available":
        _set_reader_status(clients, name, reader_status)
    return str(found["DBClusterArn"])


def _set_reader_status(clients: Clients, name: str, status: str) -> None:
    """moto has no API to make an instance unhealthy: set it on its in-process model."""
    from moto.backends import get_backend

    region = clients("rds").meta.region_name
    for account in get_backend("rds").values():
        backend = account.get(region)
        if backend is None or name not in backend.clusters:
            continue
        for instance in backend.clusters[name].members:
            if not instance.is_cluster_writer:
                instance.status = status


def cluster_state(clients: Clients, name: str) -> dict[str, Any]:
    cluster = clients("rds").describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]
    members = cluster.get("DBClusterMembers", [])
    writers = [m["DBInstanceIdentifier"] for m in members if m.get("IsClusterWriter")]
    return {
        "writer": writers[0] if len(writers) == 1 else None,
        "status": cluster.get("Status"),
        "members": len(members),
    }


# -- ECS services ------------------------------------------------------------------------------


def create_service(
    clients: Clients,
    cluster: str,
    service: str,
    *,
    desired: int = 2,
    running: int | None = None,
    revisions: int = 2,
    autoscaling: dict[str, int] | None = None,
    live_minutes: int = 10,
) -> str:
    """A service running the newest of ``revisions`` task definition revisions (registered
    ``live_minutes`` ago); its ARN."""
    _play_new_deployments()
    ecs = clients("ecs")
    ecs.create_cluster(clusterName=cluster)
    for revision in range(1, revisions + 1):
        ecs.register_task_definition(
            family=service,
            containerDefinitions=[
                {
                    "name": "app",
                    "image": f"public.ecr.aws/drill/{service}:{revision}",
                    "memory": 256,
                }
            ],
        )
    _stamp_revisions(clients, service, revisions, live_minutes)
    saved = os.environ.get("MOTO_ECS_SERVICE_RUNNING")
    os.environ["MOTO_ECS_SERVICE_RUNNING"] = str(desired if running is None else running)
    try:
        found = ecs.create_service(
            cluster=cluster,
            serviceName=service,
            taskDefinition=f"{service}:{revisions}",
            desiredCount=desired,
        )["service"]
    finally:
        if saved is None:
            os.environ.pop("MOTO_ECS_SERVICE_RUNNING", None)
        else:
            os.environ["MOTO_ECS_SERVICE_RUNNING"] = saved
    if autoscaling:
        clients("application-autoscaling").register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=f"service/{cluster}/{service}",
            ScalableDimension=DIMENSION,
            MinCapacity=int(autoscaling.get("min", 1)),
            MaxCapacity=int(autoscaling.get("max", 10)),
        )
    return str(found["serviceArn"])


def _ecs_backend(clients: Clients) -> Any:
    from moto.backends import get_backend

    region = clients("ecs").meta.region_name
    account = clients("sts").get_caller_identity()["Account"]
    return get_backend("ecs")[account][region]


def _stamp_revisions(clients: Clients, family: str, revisions: int, live_minutes: int) -> None:
    """registeredAt, which moto leaves out: the newest ``live_minutes`` ago."""
    newest = datetime.now(UTC) - timedelta(minutes=live_minutes)
    if not emu.in_process(clients):  # a moto in another process keeps no registeredAt
        return
    for revision, definition in _ecs_backend(clients).task_definitions[family].items():
        older = revisions - int(revision)
        definition.registered_at = newest - timedelta(days=older)


_PLAYED: list[bool] = []


def _play_new_deployments() -> None:
    """UpdateService with a new task definition starts a new PRIMARY deployment (moto's keeps
    the old one's id and task definition)."""
    if _PLAYED:
        return
    from moto.core.utils import utcnow
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend.update_service

    def update_service(self: Any, service_properties: dict[str, Any]) -> Any:
        wanted = service_properties.get("task_definition")
        found = original(self, service_properties)
        live = str(found.task_definition or "")
        if wanted and live and found.deployments:
            deployment = found.deployments[0]
            deployment["taskDefinition"] = live
            deployment["id"] = f"{deployment['id']}-{live.rsplit(':', 1)[-1]}"
            deployment["createdAt"] = deployment["updatedAt"] = utcnow()
        return found

    EC2ContainerServiceBackend.update_service = update_service  # type: ignore[method-assign]
    _PLAYED.append(True)


def service_state(clients: Clients, cluster: str, service: str) -> dict[str, Any]:
    found = clients("ecs").describe_services(cluster=cluster, services=[service])["services"][0]
    scaling = clients("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs",
        ResourceIds=[f"service/{cluster}/{service}"],
        ScalableDimension=DIMENSION,
    )["ScalableTargets"]
    return {
        "desired": found["desiredCount"],
        "running": found["runningCount"],
        "task_definition": found["taskDefinition"].rsplit("/", 1)[-1],
        "min_capacity": scaling[0]["MinCapacity"] if scaling else None,
        "max_capacity": scaling[0]["MaxCapacity"] if scaling else None,
    }


# -- the drill's kinds -------------------------------------------------------------------------


def _cluster_targets(target: Target) -> list[tuple[str, Spec]]:
    if target.service == "rds" and target.resource_type == "cluster":
        return [(target.name, {})]
    return []


def _service_targets(target: Target) -> list[tuple[str, Spec]]:
    if target.service == "ecs" and target.resource_type == "service" and target.qualifier:
        return [(target.name, {"cluster": target.qualifier})]
    return []


def _create_cluster(clients: Clients, name: str, spec: Spec) -> None:
    create_cluster(
        clients,
        name,
        readers=int(spec.get("readers", 2)),
        reader_status=str(spec.get("reader_status", "available")),
        engine=str(spec.get("engine", ENGINE)),
    )


def _create_service(clients: Clients, name: str, spec: Spec) -> None:
    create_service(
        clients,
        str(spec.get("cluster", "default")),
        name,
        desired=int(spec.get("desired", 2)),
        running=None if spec.get("running") is None else int(spec["running"]),
        revisions=int(spec.get("revisions", 2)),
        autoscaling=spec.get("autoscaling"),
        live_minutes=int(spec.get("live_minutes", 10)),
    )


def _service_state(clients: Clients, name: str, spec: Spec) -> dict[str, Any]:
    return service_state(clients, str(spec.get("cluster", "default")), name)


DB_CLUSTERS = kinds.register(
    kinds.ResourceKind(
        name="db_clusters",
        spec_keys=("readers", "reader_status", "engine"),
        state_fields=("writer", "status", "members"),
        create=_create_cluster,
        read=lambda clients, name, spec: cluster_state(clients, name),
        targets=_cluster_targets,
    )
)
ECS_SERVICES = kinds.register(
    kinds.ResourceKind(
        name="ecs_services",
        spec_keys=("cluster", "desired", "running", "revisions", "autoscaling", "live_minutes"),
        state_fields=("desired", "running", "task_definition", "min_capacity", "max_capacity"),
        create=_create_service,
        read=_service_state,
        targets=_service_targets,
    )
)

"""Materialize a code location's assets in process, the way the asset and sensor tests do."""

from dagster import materialize


def run(defs, instance, selection, partition_key=None, **kwargs):
    """Materialize `selection` of `defs` (with all its asset checks) into `instance`, resources as
    configured; a failed run is returned, not raised, so a test can look at why."""
    return materialize(
        [*defs.assets, *(defs.asset_checks or [])],
        resources=defs.resources,
        instance=instance,
        selection=selection,
        partition_key=partition_key,
        raise_on_error=False,
        **kwargs,
    )

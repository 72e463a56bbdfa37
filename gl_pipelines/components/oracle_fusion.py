"""Oracle Fusion Cloud ERP REST instances: `type: gl_pipelines.components.oracle_fusion.OracleFusionComponent`.

Everything of an OData v2 instance (roles, `entity_sets:` with key, fields, date column, required columns and
their blocking checks, daily and master-data jobs, change sensor, health) read through the Fusion REST
resource (resources/oracle_fusion.py): `entity_set` names the REST resource (e.g. receivingReceiptTransactions)
and `filter` is a `q=` expression (e.g. "OrganizationCode = 'P1'")."""

from __future__ import annotations

from gl_pipelines.components.odata import ODataComponent, ODataInstance
from gl_pipelines.resources.oracle_fusion import OracleFusionResource, OracleFusionSource, oracle_fusion_from_source


class OracleFusionInstance(OracleFusionSource, ODataInstance):
    """A Fusion REST root's settings plus the instance's owners and the NAMES of its secret variables."""


class OracleFusionComponent(ODataComponent):
    """An Oracle Fusion REST API: one asset per resource, dated ones daily on the site's clock, others whole."""

    kind = "oracle_fusion"
    schema = OracleFusionInstance

    def resource(self) -> OracleFusionResource:
        # Errors and the `source` column name the instance unless the YAML names the source itself.
        named = "source_name" in self.spec.model_fields_set
        spec = self.spec if named else self.spec.model_copy(update={"source_name": "/".join(self.names.prefix)})
        return oracle_fusion_from_source(spec, self.timezone, **self.credentials())

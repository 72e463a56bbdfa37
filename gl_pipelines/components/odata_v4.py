"""OData v4 ERP instances (Dynamics 365, S/4HANA Cloud): `type: gl_pipelines.components.odata_v4.ODataV4Component`.

Everything of an OData v2 instance (roles, `entity_sets:`, jobs, change sensor, health) with the v4 resource
(resources/odata_v4.py) and its options: `token_client_auth`, `scope`, `max_page_size`, `track_changes`."""

from __future__ import annotations

from gl_pipelines.components.odata import ODataComponent, ODataInstance
from gl_pipelines.resources.odata_v4 import ODataV4Resource, ODataV4Source, odata_v4_from_source


class ODataV4Instance(ODataV4Source, ODataInstance):
    """An OData v4 service's settings plus the instance's owners and the NAMES of its secret variables."""


class ODataV4Component(ODataComponent):
    """An OData v4 service: one asset per entity set, dated sets daily on the site's clock, others refreshed whole."""

    kind = "odata_v4"
    schema = ODataV4Instance

    def resource(self) -> ODataV4Resource:
        return odata_v4_from_source(self.spec, self.timezone, **self.credentials())

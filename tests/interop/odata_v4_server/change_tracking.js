// Change tracking for one entity set of SAP's mock server, which has none of its own (it ignores
// `Prefer: odata.track-changes`). Written only through fe-mockserver's documented mock-data hooks, so
// $metadata, $filter, $select, the JSON envelope and the removal itself (HTTP DELETE) stay SAP's code:
//
// - removeEntry: a DELETE of an entity is remembered (its canonical id) before SAP's own removal runs;
// - onAfterRead: a collection read asking `Prefer: odata.track-changes` gets an `@odata.deltaLink`, the same
//   query plus `$deltatoken=<n>` (n = removals seen so far); a read of that link gets the entities removed
//   since n as OData 4.01 deleted entities (`{"@removed": {"reason": "deleted"}, "@id": ...}`) and no rows,
//   as no entity is changed in place here.
//
// tests/interop/odata_v4_mock.py copies this file as <EntitySet>.js next to <EntitySet>.json.
"use strict";

const path = require("path");

const entitySet = path.basename(__filename, ".js");
const removed = [];

function literal(value) {
    return typeof value === "string" ? `'${value.replace(/'/g, "''")}'` : String(value);
}

module.exports = {
    async removeEntry(keyValues, odataRequest) {
        const key = Object.entries(keyValues).map(([name, value]) => `${name}=${literal(value)}`).join(",");
        removed.push(`${entitySet}(${key})`);
        return this.base.removeEntry(keyValues, odataRequest);
    },

    async onAfterRead(data, odataRequest) {
        if (!Array.isArray(data)) {
            return data;
        }
        const params = odataRequest.allParams;
        const token = params.get("$deltatoken");
        const tracked = String(odataRequest.headers["prefer"] || "").includes("odata.track-changes");
        if (token === null && !tracked) {
            return data;
        }
        const link = new URLSearchParams(params);
        for (const name of ["$deltatoken", "$skip", "$top", "$count"]) {
            link.delete(name);
        }
        link.set("$deltatoken", String(removed.length));
        odataRequest.addResponseAnnotation("@odata.deltaLink", `${entitySet}?${link}`);
        odataRequest.addResponseHeader("Preference-Applied", "odata.track-changes");
        if (token === null) {
            return data;
        }
        return removed.slice(Number(token)).map((id) => ({ "@removed": { reason: "deleted" }, "@id": id }));
    }
};

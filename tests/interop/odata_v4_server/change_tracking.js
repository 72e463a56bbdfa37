// Change tracking for one entity set of SAP's mock server, which has none of its own (it ignores
// `Prefer: odata.track-changes`). Written only through fe-mockserver's documented mock-data hooks, so
// $metadata, $filter, $select, the JSON envelope, the update (HTTP PATCH) and the removal (HTTP DELETE)
// stay SAP's code:
//
// - updateEntry / removeEntry: an entity changed or deleted is remembered (its canonical id, in order)
//   before SAP's own update or removal runs;
// - onAfterRead: a collection read asking `Prefer: odata.track-changes` gets an `@odata.deltaLink`, the same
//   query plus `$deltatoken=<n>` (n = changes seen so far); a read of that link gets, of the rows the query
//   selects, those changed since n, and the entities removed since n as OData 4.01 deleted entities
//   (`{"@removed": {"reason": "deleted"}, "@id": ...}`).
//
// tests/interop/odata_v4_mock.py copies this file as <EntitySet>.js next to <EntitySet>.json.
"use strict";

const path = require("path");

const entitySet = path.basename(__filename, ".js");
const changes = []; // {kind: "changed" | "removed", id}
let keyNames = null;

function literal(value) {
    return typeof value === "string" ? `'${value.replace(/'/g, "''")}'` : String(value);
}

function idOf(keyValues) {
    return `${entitySet}(${keyNames.map((name) => `${name}=${literal(keyValues[name])}`).join(",")})`;
}

module.exports = {
    async updateEntry(keyValues, updatedData, patchData, odataRequest) {
        keyNames = Object.keys(keyValues);
        changes.push({ kind: "changed", id: idOf(keyValues) });
        return this.base.updateEntry(keyValues, patchData, odataRequest);
    },

    async removeEntry(keyValues, odataRequest) {
        keyNames = Object.keys(keyValues);
        changes.push({ kind: "removed", id: idOf(keyValues) });
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
        link.set("$deltatoken", String(changes.length));
        odataRequest.addResponseAnnotation("@odata.deltaLink", `${entitySet}?${link}`);
        odataRequest.addResponseHeader("Preference-Applied", "odata.track-changes");
        if (token === null) {
            return data;
        }
        const since = changes.slice(Number(token));
        const changed = new Set(since.filter((change) => change.kind === "changed").map((change) => change.id));
        const rows = keyNames ? data.filter((row) => changed.has(idOf(row))) : [];
        const removed = since.filter((change) => change.kind === "removed");
        return [...rows, ...removed.map((change) => ({ "@removed": { reason: "deleted" }, "@id": change.id }))];
    }
};

// SAP's own OData v4 mock server (@sap-ux/fe-mockserver-core) for the conformance suite: it shares no
// code with our client. It serves each spec service from a CSDL v4 file and a folder of JSON data
// (one <EntitySet>.json per set), so $metadata, $filter, $top/$skip, $count and the JSON shape are
// SAP's behaviour, not ours.
//
// Usage: node server.js SPEC.json   (written by tests/interop/odata_v4_mock.py)
//   {"port": 0, "services": [{"urlPath": "/odata/v4/x", "metadataPath": "...xml", "mockdataPath": "dir"}]}
// Prints "READY <port>" on stdout once it listens.
"use strict";

const fs = require("fs");
const http = require("http");
const FEMockserver = require("@sap-ux/fe-mockserver-core").default;

const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf-8"));

// Quiet by default: the mock server logs every request at info level.
const logger = {
    info() {},
    debug() {},
    warn(message) { process.stderr.write(`WARN ${message}\n`); },
    error(message) { process.stderr.write(`ERROR ${message}\n`); }
};

async function main() {
    const mockserver = new FEMockserver({
        services: spec.services.map((service) => ({ ...service, noETag: true, logger })),
        logger,
        noETag: true
    });
    await mockserver.isReady;
    const router = mockserver.getRouter();
    const server = http.createServer((req, res) => {
        router(req, res, () => {
            res.statusCode = 404;
            res.end("not found");
        });
    });
    // A client's pooled connection may wait longer than node's 5 s default while this single-threaded
    // server filters a large set for another request; closing it then would fail that client's next request.
    server.keepAliveTimeout = 120000;
    server.headersTimeout = 121000;
    server.listen(spec.port, "127.0.0.1", () => {
        process.stdout.write(`READY ${server.address().port}\n`);
    });
    process.on("SIGTERM", () => server.close(() => process.exit(0)));
}

main().catch((error) => {
    process.stderr.write(`${error.stack || error}\n`);
    process.exit(1);
});

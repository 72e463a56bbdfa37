// An independent OPC UA server for the conformance suite: node-opcua, sharing no code with our client.
//
// Usage: node server.js SPEC.json   (the spec is written by tests/interop/node_opcua.py)
// Serves each spec tag as a historized variable in node-opcua's own in-memory historian, so raw
// HistoryRead, its bounds (node-opcua includes a value stamped exactly at EndTime), continuation
// points and the MaxNodesPerHistoryReadData limit are node-opcua's behaviour, not ours.
// Sample k of a tag is stamped start + k * intervalS and worth base + k * step; a status rule
// [n, r, code, hasValue] gives every sample with k % n == r that StatusCode (and no value if !hasValue).
// Prints "READY <port>" on stdout once it listens.
"use strict";

const fs = require("fs");
const path = require("path");
const {
    OPCUAServer,
    OPCUACertificateManager,
    DataType,
    DataValue,
    Variant,
    StatusCode,
    SecurityPolicy,
    MessageSecurityMode,
    makeRoles,
    WellKnownRoles
} = require("node-opcua");

const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf-8"));

function statusFor(tag, k) {
    for (const [n, r, code, hasValue] of tag.statuses || []) {
        if (k % n === r) {
            return { code, hasValue };
        }
    }
    return { code: 0, hasValue: true };
}

function samples(tag) {
    const start = Date.parse(tag.start);
    const out = [];
    for (let k = 0; k < tag.count; k++) {
        const { code, hasValue } = statusFor(tag, k);
        const when = new Date(start + k * tag.intervalS * 1000);
        out.push(
            new DataValue({
                value: hasValue ? new Variant({ dataType: DataType[tag.dataType], value: tag.base + k * tag.step }) : undefined,
                statusCode: StatusCode.makeStatusCode(code >>> 0),
                sourceTimestamp: when,
                serverTimestamp: when
            })
        );
    }
    return out;
}

async function main() {
    const pki = spec.pkiDir;
    const security = spec.security || {};
    const options = {
        port: spec.port,
        hostname: "127.0.0.1",
        alternateHostname: ["127.0.0.1"],
        resourcePath: "/interop",
        buildInfo: { productName: "gl-pipelines interop (node-opcua)" },
        serverCertificateManager: new OPCUACertificateManager({ automaticallyAcceptUnknownCertificate: true, rootFolder: path.join(pki, "server") }),
        userCertificateManager: new OPCUACertificateManager({ automaticallyAcceptUnknownCertificate: true, rootFolder: path.join(pki, "user") }),
        serverCapabilities: {
            maxHistoryContinuationPoints: 0,
            operationLimits: { maxNodesPerHistoryReadData: spec.maxNodesPerHistoryReadData || 0 }
        },
        securityPolicies: security.policies ? security.policies.map((p) => SecurityPolicy[p]) : [SecurityPolicy.None],
        securityModes: security.modes ? security.modes.map((m) => MessageSecurityMode[m]) : [MessageSecurityMode.None],
        allowAnonymous: security.allowAnonymous !== false
    };
    if (security.users) {
        options.userManager = {
            isValidUser: (user, password) => security.users[user] !== undefined && security.users[user] === password,
            getUserRoles: () => makeRoles([WellKnownRoles.AuthenticatedUser, WellKnownRoles.Observer])
        };
    }
    if (security.certificateFile) {
        options.certificateFile = security.certificateFile;
        options.privateKeyFile = security.privateKeyFile;
    }
    const server = new OPCUAServer(options);
    await server.initialize();
    const addressSpace = server.engine.addressSpace;
    const namespace = addressSpace.getOwnNamespace();
    const folder = namespace.addFolder(addressSpace.rootFolder.objects, { browseName: "Interop" });
    for (const tag of spec.tags) {
        const variable = namespace.addVariable({
            componentOf: folder,
            browseName: tag.name,
            nodeId: `s=${tag.name}`,
            dataType: tag.dataType,
            minimumSamplingInterval: 1000
        });
        addressSpace.installHistoricalDataNode(variable, { maxOnlineValues: tag.count + 10 });
        for (const dataValue of samples(tag)) {
            await variable.varHistorian.push(dataValue);
        }
    }
    await server.start();
    process.stdout.write(`READY ${server.endpoints[0].port}\n`);
    const stop = async () => {
        await server.shutdown(0);
        process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
    process.stdin.on("end", stop); // the test process went away
    process.stdin.resume();
}

main().catch((err) => {
    process.stderr.write(`interop server failed: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
});

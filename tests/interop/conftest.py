"""The independent OPC UA server (node-opcua) for the whole session: one start costs ~10-15 s."""

import pytest

from tests.interop.node_opcua import conformance_tags, node_missing_reason, node_opcua_server

SERVER_LIMIT = 4  # MaxNodesPerHistoryReadData, below the 6 conformance tags
PASSWORD = "nodeopcua-Pw-7c1e"  # must never appear in any message
SECURITY = {  # anonymous and unsecured for the conformance tests, Basic256Sha256 + a user for the security ones
    "policies": ["None", "Basic256Sha256"],
    "modes": ["None", "Sign", "SignAndEncrypt"],
    "users": {"operator": PASSWORD},
}


@pytest.fixture(scope="session")
def node_server(tmp_path_factory):
    reason = node_missing_reason()
    if reason:
        pytest.skip(reason)
    with node_opcua_server(
        conformance_tags(),
        max_nodes_per_history_read=SERVER_LIMIT,
        security=SECURITY,
        work_dir=tmp_path_factory.mktemp("node-opcua"),
    ) as server:
        yield server

"""The demo plant's MQTT instance as a component in the defs folder, and the collector reading the same file."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, Definitions, load_from_defs_folder

import gl_pipelines
from gl_pipelines.components.shared import shared_definitions
from gl_pipelines.mqtt.config import DEMO_MQTT_CONFIG, load_mqtt_source

# Resolving the merged definitions rebuilds check definitions inside dagster with a beta parameter.
pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")


def test_demo_instance_loads_as_a_component_and_as_the_collectors_config(tmp_path):
    defs = Definitions.merge(
        load_from_defs_folder(path_within_project=Path(gl_pipelines.__file__).parent),
        shared_definitions(tmp_path / "w.duckdb"),
    )
    readings = defs.resolve_assets_def(AssetKey(["demo_plant", "mqtt", "readings"]))
    assert readings.group_names_by_key[readings.key] == "demo_plant"
    assert {spec.name for spec in readings.check_specs} == {
        "demo_plant__mqtt_readings_expectations",
        "demo_plant__mqtt_readings_completeness",
    }
    assert defs.resolve_sensor_def("demo_plant__mqtt_hours").job_name == "demo_plant__mqtt_readings_job"
    source = load_mqtt_source(DEMO_MQTT_CONFIG)
    assert source.name == "demo_plant__mqtt" and source.client_id == "gl-mqtt-collector-demo_plant-mqtt"
